"""DeliverCallbacks: the callback queue, where a rule on the event bus puts the events of
ended runs, and of runs waiting for approval, that have a callback URL. Each is sent
(`CallbackDeliveries`); one the receiver did not take is left in the queue, hidden until its
next try is due (exponential backoff), and reported as a batch item failure; after a day it
is given up. Either way the run's record shows how an ended run's delivery went.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field, ValidationError

from threadline import runtime
from threadline.events.changes import RunEventDetail

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
# A try takes at most: resolving the name, 3 s to connect, 10 s to the status line.
TRY_BUDGET_MS = 15_000


class RunEnded(BaseModel):
    """The EventBridge event the callback rule passes on (what matters of it; not Powertools'
    EventBridgeModel, which needs `account`: moto's SQS targets leave it out)."""

    detail_type: str = Field(alias="detail-type")
    detail: RunEventDetail


class CallbackNotDelivered(Exception):
    """The receiver did not take it: it stays in the queue until its next try."""


@tracer.capture_method
def deliver(record: SQSRecord, lambda_context: LambdaContext) -> None:
    try:
        event = RunEnded.model_validate_json(record.body)
    except ValidationError:
        logger.warning("dropped a message that is no run event")
        return
    if lambda_context.get_remaining_time_in_millis() < TRY_BUDGET_MS:
        # Not tried: back in the queue at once, for the next invocation.
        raise_to_retry_in(record, 0, f"run {event.detail.run_id}: no time left to try")
    queued_at = datetime.fromtimestamp(int(record.attributes.sent_timestamp) / 1000, UTC)
    retry_in = (
        runtime.current()
        .callback_deliveries()
        .deliver(
            event.detail,
            queued_at=queued_at,
            attempt=int(record.attributes.approximate_receive_count),
        )
    )
    logger.info(
        "callback attempted",
        extra={"run_id": event.detail.run_id, "retry_in": retry_in},
    )
    if retry_in is None:
        metrics.add_metric("CallbacksSettled", MetricUnit.Count, 1)
        return
    metrics.add_metric("CallbacksRetried", MetricUnit.Count, 1)
    raise_to_retry_in(record, retry_in, f"run {event.detail.run_id}: next try in {retry_in} s")


def raise_to_retry_in(record: SQSRecord, seconds: int, why: str) -> NoReturn:
    """Hide the message for `seconds`, and report it failed (it stays in the queue)."""
    parts = runtime.current()
    parts.sqs_client().change_message_visibility(
        QueueUrl=parts.callback_settings().callback_queue_url,
        ReceiptHandle=record.receipt_handle,
        VisibilityTimeout=seconds,
    )
    raise CallbackNotDelivered(why)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event,
        record_handler=deliver,
        processor=processor,
        context=context,
    )
