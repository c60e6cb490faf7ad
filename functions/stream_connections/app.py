"""StreamConnections: the WebSocket API's routes. $connect (after StreamAuthorizer) accepts;
`subscribe` subscribes the connection to a run of its user's; anything else is answered with
an error message. Answers go to the connection through the management API."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketMessageEventModel,
    APIGatewayWebSocketMessageEventRequestContext,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from threadline import runtime
from threadline.streams.messages import StreamError

logger = Logger()
tracer = Tracer()


class Authorizer(BaseModel):
    user_id: str = Field(min_length=1)


class AuthorizedContext(APIGatewayWebSocketMessageEventRequestContext):
    authorizer: Authorizer


class MessageEvent(APIGatewayWebSocketMessageEventModel):
    request_context: AuthorizedContext = Field(alias="requestContext")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event["requestContext"]["routeKey"] == "$connect":
        return {"statusCode": 200}
    message = parse(event=event, model=MessageEvent)
    connection_id = message.request_context.connection_id
    if message.request_context.route_key == "subscribe":
        user_id = message.request_context.authorizer.user_id
        logger.append_keys(user_id=user_id, connection_id=connection_id)
        body = message.body if isinstance(message.body, str) else None
        runtime.current().subscriber().subscribe(user_id, connection_id, body)
    else:
        runtime.current().broadcast().to_connection(
            connection_id,
            [StreamError(code="unknown_action", message='the one action is "subscribe"')],
        )
    return {"statusCode": 200}
