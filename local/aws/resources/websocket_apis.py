"""AWS::ApiGatewayV2 WebSocket APIs (the API, its authorizers, integrations, routes and
stages): recorded for the local WebSocket API server (local/aws/websocket_api.py); nothing
is created in moto."""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

from local.aws.intrinsics import ProvisionedResource
from local.aws.records import WebSocketApiSpec, WebSocketAuthorizer
from local.aws.resources.context import ProvisionContext, UnsupportedResource

# arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function arn}/invocations
_LAMBDA_URI = re.compile(
    r"^arn:[^:]+:apigateway:[^:]+:lambda:path/[^/]+/functions/(.+)/invocations$"
)


def _new_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(10))


def provision_websocket_api(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    if properties.get("ProtocolType") != "WEBSOCKET":
        raise UnsupportedResource(logical_id, "an ApiGatewayV2 API other than a WebSocket one")
    api_id = _new_id()
    ctx.stack.websocket_apis[logical_id] = WebSocketApiSpec(
        logical_id=logical_id,
        api_id=api_id,
        route_selection_expression=properties["RouteSelectionExpression"],
    )
    endpoint = f"wss://{api_id}.execute-api.{ctx.region}.amazonaws.com"
    return ProvisionedResource(ref=api_id, attributes={"ApiEndpoint": endpoint})


def provision_authorizer(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    if properties.get("AuthorizerType") != "REQUEST":
        raise UnsupportedResource(logical_id, "a WebSocket authorizer other than REQUEST")
    authorizer_id = _new_id()
    _api(ctx, properties["ApiId"]).authorizers[authorizer_id] = WebSocketAuthorizer(
        function_logical_id=function_of_uri(ctx, logical_id, properties["AuthorizerUri"]),
        identity_source=tuple(properties.get("IdentitySource", [])),
    )
    return ProvisionedResource(ref=authorizer_id)


def provision_integration(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    if properties.get("IntegrationType") != "AWS_PROXY":
        raise UnsupportedResource(logical_id, "an integration other than AWS_PROXY")
    integration_id = _new_id()
    _api(ctx, properties["ApiId"]).integrations[integration_id] = function_of_uri(
        ctx, logical_id, properties["IntegrationUri"]
    )
    return ProvisionedResource(ref=integration_id)


def provision_route(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    api = _api(ctx, properties["ApiId"])
    integration_id = str(properties.get("Target", "")).removeprefix("integrations/")
    if integration_id not in api.integrations:
        raise ValueError(f"{logical_id}: Target {properties.get('Target')!r} is no integration")
    authorizer_id = None
    if properties.get("AuthorizationType", "NONE") == "CUSTOM":
        authorizer_id = properties["AuthorizerId"]
        if authorizer_id not in api.authorizers:
            raise ValueError(f"{logical_id}: AuthorizerId {authorizer_id!r} is no authorizer")
    elif properties.get("AuthorizationType", "NONE") != "NONE":
        raise UnsupportedResource(logical_id, "route authorization other than CUSTOM or NONE")
    api.routes[properties["RouteKey"]] = (integration_id, authorizer_id)
    return ProvisionedResource(ref=_new_id())


def provision_websocket_stage(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    _api(ctx, properties["ApiId"]).stages.append(properties["StageName"])
    return ProvisionedResource(ref=properties["StageName"])


def _api(ctx: ProvisionContext, api_id: str) -> WebSocketApiSpec:
    for spec in ctx.stack.websocket_apis.values():
        if spec.api_id == api_id:
            return spec
    raise ValueError(f"ApiId {api_id!r} is not a WebSocket API of this stack")


def function_of_uri(ctx: ProvisionContext, logical_id: str, uri: str) -> str:
    """The logical id of the stack's function an API Gateway integration URI invokes."""
    found = _LAMBDA_URI.match(uri)
    for spec in ctx.stack.functions.values():
        if found and found.group(1) == spec.arn:
            return spec.logical_id
    raise ValueError(f"{logical_id}: {uri!r} invokes no function of the stack")
