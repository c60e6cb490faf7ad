"""AWS::Serverless::HttpApi and functions' HttpApi events: recorded (authorizers, routes) for
a local HTTP server; nothing is created in moto."""

from __future__ import annotations

import secrets
import string
from typing import Any

from local.aws.intrinsics import ProvisionedResource
from local.aws.records import HttpApiSpec, HttpRoute, JwtAuthorizer
from local.aws.resources.context import ProvisionContext, UnsupportedResource

# The API SAM creates for HttpApi events that name no ApiId.
IMPLICIT_API = "ServerlessHttpApi"
_DEFAULT_IDENTITY_SOURCE = "$request.header.Authorization"
# An access log format must carry one of these.
_REQUEST_IDS = ("$context.requestId", "$context.extendedRequestId")


def provision_http_api(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    if "AccessLogSettings" in properties:
        _check_access_logs(ctx, logical_id, properties["AccessLogSettings"])
    api_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(10))
    auth = properties.get("Auth", {})
    spec = HttpApiSpec(
        logical_id=logical_id,
        api_id=api_id,
        endpoint=f"https://{api_id}.execute-api.{ctx.region}.amazonaws.com",
        authorizers={
            name: _jwt_authorizer(logical_id, name, config)
            for name, config in auth.get("Authorizers", {}).items()
        },
        default_authorizer=auth.get("DefaultAuthorizer"),
    )
    ctx.stack.http_apis[logical_id] = spec
    return ProvisionedResource(ref=api_id, attributes={"ApiEndpoint": spec.endpoint})


def _check_access_logs(
    ctx: ProvisionContext, api_logical_id: str, settings: dict[str, Any]
) -> None:
    """Refuse a format API Gateway refuses (no request id) and a destination that is no log
    group provisioned here (the access logs would go nowhere). None are written locally."""
    log_format = settings.get("Format", "")
    if not any(variable in log_format for variable in _REQUEST_IDS):
        raise ValueError(
            f"{api_logical_id}: the access log format needs $context.requestId or "
            "$context.extendedRequestId"
        )
    destination = settings.get("DestinationArn", "")
    # arn:aws:logs:{region}:{account}:log-group:{name}, with `:*` from GetAtt Arn.
    name = destination.partition(":log-group:")[2].removesuffix(":*")
    groups = (
        ctx.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"] if name else []
    )
    if not any(group["logGroupName"] == name for group in groups):
        raise ValueError(
            f"{api_logical_id}: access log destination {destination!r} is no log group"
        )


def _jwt_authorizer(api_logical_id: str, name: str, config: dict[str, Any]) -> JwtAuthorizer:
    if "JwtConfiguration" not in config:
        raise UnsupportedResource(api_logical_id, f"HttpApi authorizer {name} (only JWT)")
    jwt = config["JwtConfiguration"]
    audience = jwt.get("audience", [])
    return JwtAuthorizer(
        name=name,
        issuer=jwt["issuer"],
        audience=(audience,) if isinstance(audience, str) else tuple(audience),
        identity_source=config.get("IdentitySource", _DEFAULT_IDENTITY_SOURCE),
    )


def route_for_event(
    ctx: ProvisionContext, function_logical_id: str, properties: dict[str, Any]
) -> HttpRoute:
    """The route an HttpApi event declares; the API's default authorizer applies unless the
    event names another one or `NONE`."""
    api = _api_with_id(ctx, properties.get("ApiId"))
    authorizer = properties.get("Auth", {}).get("Authorizer", api.default_authorizer)
    return HttpRoute(
        method=properties.get("Method", "ANY").upper(),
        path=properties.get("Path", "$default"),
        function_logical_id=function_logical_id,
        api_logical_id=api.logical_id,
        authorizer=None if authorizer == "NONE" else authorizer,
    )


def _api_with_id(ctx: ProvisionContext, api_id: str | None) -> HttpApiSpec:
    if api_id is None:
        if IMPLICIT_API not in ctx.stack.http_apis:
            properties = ctx.resolver.resolve(ctx.globals_section.get("HttpApi", {}))
            ctx.record(IMPLICIT_API, provision_http_api(ctx, IMPLICIT_API, properties))
        return ctx.stack.http_apis[IMPLICIT_API]
    for spec in ctx.stack.http_apis.values():
        if spec.api_id == api_id:
            return spec
    raise ValueError(f"ApiId {api_id!r} is not an AWS::Serverless::HttpApi of this stack")


def provision_api_gateway_account(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    """The account's API Gateway settings: the role access logs are written with."""
    ctx.client("apigateway").update_account(
        patchOperations=[
            {
                "op": "replace",
                "path": "/cloudwatchRoleArn",
                "value": properties["CloudWatchRoleArn"],
            }
        ]
    )
    return ProvisionedResource(ref=f"{ctx.stack.stack_name}-{logical_id}")
