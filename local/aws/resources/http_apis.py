"""AWS::ApiGatewayV2::Api and ::Stage as the SAM transform makes them for an HTTP API (its
routes, integrations and JWT authorizers in the API's OpenAPI Body): recorded for the local
HTTP server, nothing is created in moto; WebSocket APIs are websocket_apis'. Also the
account's API Gateway settings (AWS::ApiGateway::Account)."""

from __future__ import annotations

import secrets
import string
from typing import Any

from local.aws.intrinsics import ProvisionedResource
from local.aws.records import HttpApiSpec, HttpRoute, JwtAuthorizer
from local.aws.resources.context import ProvisionContext, UnsupportedResource
from local.aws.resources.websocket_apis import (
    function_of_uri,
    provision_websocket_api,
    provision_websocket_stage,
)

_DEFAULT_IDENTITY_SOURCE = "$request.header.Authorization"
# An access log format must carry one of these.
_REQUEST_IDS = ("$context.requestId", "$context.extendedRequestId")
_NO_AUTHORIZER = "NONE"


def provision_api(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    if properties.get("ProtocolType") == "WEBSOCKET":
        return provision_websocket_api(ctx, logical_id, properties)
    if "Body" not in properties:
        raise UnsupportedResource(logical_id, "an HTTP API without an OpenAPI Body")
    body = properties["Body"]
    api_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(10))
    schemes = body.get("components", {}).get("securitySchemes", {})
    spec = HttpApiSpec(
        logical_id=logical_id,
        api_id=api_id,
        endpoint=f"https://{api_id}.execute-api.{ctx.region}.amazonaws.com",
        authorizers={name: _jwt_authorizer(logical_id, name, s) for name, s in schemes.items()},
    )
    ctx.stack.http_apis[logical_id] = spec
    for path, operations in body.get("paths", {}).items():
        for method, operation in operations.items():
            ctx.stack.http_routes.append(_route(ctx, spec, path, method, operation))
    return ProvisionedResource(ref=api_id, attributes={"ApiEndpoint": spec.endpoint})


def _route(
    ctx: ProvisionContext, api: HttpApiSpec, path: str, method: str, operation: dict[str, Any]
) -> HttpRoute:
    integration = operation["x-amazon-apigateway-integration"]
    if integration.get("type") != "aws_proxy":
        raise UnsupportedResource(api.logical_id, f"{method} {path}: a non-Lambda integration")
    schemes = [name for requirement in operation.get("security", []) for name in requirement]
    authorizer = next((name for name in schemes if name != _NO_AUTHORIZER), None)
    return HttpRoute(
        method=method.upper().replace("X-AMAZON-APIGATEWAY-ANY-METHOD", "ANY"),
        path=path,
        function_logical_id=function_of_uri(ctx, api.logical_id, integration["uri"]),
        api_logical_id=api.logical_id,
        authorizer=authorizer,
    )


def provision_stage(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    ctx.stack.api_stages[properties["ApiId"]] = properties["StageName"]
    if not any(api.api_id == properties["ApiId"] for api in ctx.stack.http_apis.values()):
        return provision_websocket_stage(ctx, logical_id, properties)
    if "AccessLogSettings" in properties:
        _check_access_logs(ctx, logical_id, properties["AccessLogSettings"])
    return ProvisionedResource(ref=properties["StageName"])


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


def _jwt_authorizer(api_logical_id: str, name: str, scheme: dict[str, Any]) -> JwtAuthorizer:
    authorizer = scheme.get("x-amazon-apigateway-authorizer", {})
    if authorizer.get("type") != "jwt":
        raise UnsupportedResource(api_logical_id, f"HttpApi authorizer {name} (only JWT)")
    jwt = authorizer["jwtConfiguration"]
    audience = jwt.get("audience", [])
    return JwtAuthorizer(
        name=name,
        issuer=jwt["issuer"],
        audience=(audience,) if isinstance(audience, str) else tuple(audience),
        identity_source=authorizer.get("identitySource", _DEFAULT_IDENTITY_SOURCE),
    )


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
