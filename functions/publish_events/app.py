"""PublishEvents: the table's stream, turned into Threadline's events on its EventBridge bus.

Each stream record is one write; `ChangeEvents` finds the events it makes (a run's status set,
an upload settled, a day over the token budget) and they are put on the bus. The stream's
filter criteria pass only writes that may make one, so most writes never invoke this.

Partial batch responses (`InOrderPerItem`): a record whose events EventBridge refused is
reported, with the later records of the same item unpublished (an item's events keep their
order); the other items' records after it are published again - a subscriber may see an event
twice, with the same `event_id`. A record that fails
every retry loses its item's later changes in the batch with it (EventFailuresQueue says
where), never another item's.
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
def publish_change(record: DynamoDBRecord) -> None:
    change = record.dynamodb
    if change is None:
        return
    # A record without an image has it as {}.
    events = (
        runtime.current().change_events().of(change.old_image or None, change.new_image or None)
    )
    if not events:
        return
    runtime.current().event_publisher().publish(events)
    for event in events:
        logger.info(
            "event published", extra={"detail_type": event.detail_type, "id": event.detail.event_id}
        )
    metrics.add_metric("EventsPublished", MetricUnit.Count, len(events))


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return handle_in_order(event, context, publish_change)
