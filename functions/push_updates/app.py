"""PushUpdates: the table's stream, turned into the updates of watched runs (status, tool
calls, approvals awaited, the final view), numbered in the run's log and posted to its
subscribers. A change that gives a listened-to run a new response starts its text relay.

Only changes of watched runs invoke it (the mapping's filter). A retried change stores nothing
new and posts the same numbered updates again, which a client drops by number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import runtime
from threadline.store.stream_batches import handle_in_order

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@tracer.capture_method
def push_change(record: DynamoDBRecord) -> None:
    change = record.dynamodb
    if change is None:
        return
    # A record without an image has it as {}.
    posted = (
        runtime.current()
        .update_pusher()
        .push(
            change.old_image or None, change.new_image or None, change=str(change.sequence_number)
        )
    )
    metrics.add_metric("UpdatesPushed", MetricUnit.Count, posted)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return handle_in_order(event, context, push_change)
