"""RelayText: relays a watched run's answer text while someone listens (invoked
asynchronously by a subscription or by PushUpdates when the run starts a response)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from threadline import runtime

logger = Logger()
tracer = Tracer()


class RelayRequest(BaseModel):
    thread_id: str = Field(min_length=1)
    run_id: str = Field(min_length=1)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@event_parser(model=RelayRequest)
def handler(request: RelayRequest, context: LambdaContext) -> dict[str, str]:
    logger.append_keys(run_id=request.run_id, thread_id=request.thread_id)
    outcome = runtime.current().text_relay().relay(request.thread_id, request.run_id)
    logger.info("relay ended", extra={"outcome": outcome.value})
    return {"outcome": outcome.value}
