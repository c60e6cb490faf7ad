"""POST /webhooks/openai: OpenAI's signed webhooks wake the runs waiting in push mode.

Authenticated by its Standard Webhooks signature (no JWT). Answers fast: OpenAI retries
anything but a 2xx for up to 72 hours, so unknown responses are acknowledged, and a redelivered
event (same webhook-id) is answered from the idempotency record without acting twice.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import (
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from openai import InvalidWebhookSignatureError
from pydantic import BaseModel

from threadline import runtime
from threadline.errors import ConfigurationError
from threadline.idempotency import persistence
from threadline.settings import load_settings

logger = Logger()
tracer = Tracer()
app = APIGatewayHttpResolver()
idempotency = IdempotencyConfig(event_key_jmespath="webhook_id", expires_after_seconds=4 * 86400)


class WebhookEvent(BaseModel):
    webhook_id: str
    event_type: str
    response_id: str


@cache
def webhook_secret() -> str:
    name = load_settings().webhook_secret_name
    if not name:
        raise ConfigurationError("push mode needs WEBHOOK_SECRET_NAME")
    secret = parameters.get_secret(name)
    if not isinstance(secret, str):
        raise ConfigurationError(f"secret {name} does not hold a webhook secret string")
    return secret.strip()


def handle_event(delivery: WebhookEvent) -> dict[str, str]:
    """Wake the run waiting for the response (push mode), and count the response's tokens:
    one no run was waiting for may be one whose create reply was lost, known only from this
    event (counting is once per response, whoever comes first: this or FinishRun)."""
    outcome, resumed = runtime.push_waits().on_event(delivery.event_type, delivery.response_id)
    steps = runtime.run_steps()
    if resumed is not None:  # the read that resumed the run has the response's usage
        counted = steps.count_settled(resumed)
    else:
        counted = outcome == "recorded" and steps.count_remote(delivery.response_id)
    logger.info(
        "webhook handled",
        extra={
            "type": delivery.event_type,
            "response_id": delivery.response_id,
            "outcome": outcome,
            "counted": counted,
        },
    )
    return {"outcome": outcome}


@app.post("/webhooks/openai")
def receive() -> Response:
    request = app.current_event
    body = request.decoded_body or ""
    headers = {name.lower(): value for name, value in (request.headers or {}).items()}
    client = runtime.backend_client()
    try:
        event = client.webhooks.unwrap(body, headers, secret=webhook_secret())
    except (InvalidWebhookSignatureError, ValueError) as error:
        # Never log the body or the headers: they carry the signature material.
        logger.warning("webhook rejected", extra={"reason": type(error).__name__})
        return Response(400, "application/json", '{"error":{"code":"invalid_signature"}}')
    handle_once = idempotent_function(
        handle_event,
        data_keyword_argument="delivery",
        persistence_store=persistence(),
        config=idempotency,
        key_prefix="openai_webhook",
    )
    outcome = handle_once(
        delivery=WebhookEvent(
            webhook_id=headers["webhook-id"],
            event_type=event.type,
            response_id=getattr(event.data, "id", ""),
        )
    )
    return Response(200, "application/json", {"received": True, **outcome})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    return app.resolve(event, context)
