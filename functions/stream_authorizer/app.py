"""StreamAuthorizer: the WebSocket API's $connect check - the same JWT the HTTP API takes,
from the `token` query parameter (a browser cannot set headers on a WebSocket). The user
becomes the connection's authorizer context, which every later message carries. A token that
is not valid is denied (403) by policy, not by an error: a client with an expired token is no
fault of the function's (API Gateway answers 401 itself when there is no token)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponseWebSocket,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import runtime

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def handler(event: APIGatewayAuthorizerRequestEvent, context: LambdaContext) -> dict[str, Any]:
    token = (event.query_string_parameters or {}).get("token", "")
    user_id = runtime.current().token_verifier().subject(token) if token else None
    policy = APIGatewayAuthorizerResponseWebSocket.from_route_arn(
        event.method_arn,
        principal_id=user_id or "anonymous",
        context={"user_id": user_id} if user_id else None,
    )
    if user_id is None:
        logger.info("connection refused")
        policy.deny_all_routes()
    else:
        policy.allow_all_routes()
    return policy.asdict()
