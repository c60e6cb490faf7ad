"""POST /webhooks/openai: OpenAI's signed webhooks wake the runs waiting in push mode.

Authenticated by its Standard Webhooks signature (no JWT). Answers fast: OpenAI retries
anything but a 2xx for up to 72 hours, so a signed event Threadline does not act on (another
type, an unknown response, a shape it does not know) is acknowledged. A redelivered event
(same webhook-id) changes nothing: every write it makes is conditional or idempotent (see
threadline.runs.webhook_waits), so no idempotency record is kept for it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from openai import InvalidWebhookSignatureError
from pydantic import BaseModel, Field, StrictStr, ValidationError

from threadline import runtime

logger = Logger()
tracer = Tracer()
app = APIGatewayHttpResolver()


class WebhookEvent(BaseModel):
    webhook_id: str
    event_type: str
    response_id: str


class ResponseEventData(BaseModel):
    id: StrictStr = Field(min_length=1)


class ResponseEvent(BaseModel):
    """What Threadline reads of a signed event: its type and the response it is about."""

    type: StrictStr
    data: ResponseEventData


class TypedEvent(BaseModel):
    """Just the type of an event of another shape, for the log."""

    type: StrictStr | None = Field(default=None, max_length=100)


def handle_event(delivery: WebhookEvent) -> dict[str, str]:
    """Wake the run waiting for the response (push mode), and count the tokens of a response
    no run holds: one whose create reply was lost is known only from this event."""
    handled = runtime.current().webhook_waits().on_event(delivery.event_type, delivery.response_id)
    logger.info(
        "webhook handled",
        extra={
            "type": delivery.event_type,
            "response_id": delivery.response_id,
            "webhook_id": delivery.webhook_id,
            "outcome": handled.outcome,
            "counted": handled.counted,
        },
    )
    return {"outcome": handled.outcome}


@app.post("/webhooks/openai")
def receive() -> Response:
    request = app.current_event
    body = request.decoded_body or ""
    headers = {name.lower(): value for name, value in (request.headers or {}).items()}
    client = runtime.current().backend_client()
    try:
        client.webhooks.verify_signature(body, headers, secret=runtime.current().webhook_secret())
    except (InvalidWebhookSignatureError, ValueError) as error:
        # Never log the body or the headers: they carry the signature material.
        logger.warning("webhook rejected", extra={"reason": type(error).__name__})
        return refusal("invalid_signature", "the webhook signature does not verify")
    try:
        event = ResponseEvent.model_validate_json(body)
    except ValidationError:
        return acknowledge_unknown_shape(headers["webhook-id"], body)
    outcome = handle_event(
        WebhookEvent(
            webhook_id=headers["webhook-id"],
            event_type=event.type,
            response_id=event.data.id,
        )
    )
    return Response(200, "application/json", {"received": True, **outcome})


@app.exception_handler(UnicodeDecodeError)
def undecodable_body(error: UnicodeDecodeError) -> Response:
    # API Gateway passes a body that is not UTF-8 base64-encoded; OpenAI signs JSON text.
    return refusal("invalid_body", "the body is not UTF-8 text")


def refusal(code: str, message: str) -> Response:
    """A 400 in the API's one error shape."""
    body = {"error": {"code": code, "message": message, "details": None}}
    return Response(400, "application/json", body)


def acknowledge_unknown_shape(webhook_id: str, body: str) -> Response:
    """Answer 200 to a signed event of a shape Threadline does not act on: anything else has
    OpenAI retry it for 72 hours. Logged by type and webhook id only, never its content."""
    try:
        event_type = TypedEvent.model_validate_json(body).type
    except ValidationError:
        event_type = None
    logger.info("webhook ignored", extra={"type": event_type, "webhook_id": webhook_id})
    return Response(200, "application/json", {"received": True, "outcome": "ignored"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
