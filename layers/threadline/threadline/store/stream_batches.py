"""Handling a batch of the table stream's records in each item's order.

The stream orders each item's changes, and so must what is made of them: a record whose
handling failed is reported (a partial batch response), and so are the later records of the
same item in the batch, unhandled. Lambda retries the batch from the first reported record,
so the other items' records after it are handled again (a consumer makes that harmless).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext


class EarlierRecordFailed(Exception):
    """Not handled: a record of the same item before it in the batch failed."""


class InOrderPerItem:
    def __init__(self, handle: Callable[[DynamoDBRecord], None]) -> None:
        self._handle = handle
        self.failed_items: set[str] = set()

    def __call__(self, record: DynamoDBRecord) -> None:
        change = record.dynamodb
        item = json.dumps(change.keys if change else None, sort_keys=True, default=str)
        if item in self.failed_items:
            raise EarlierRecordFailed(change.sequence_number if change else "")
        try:
            self._handle(record)
        except Exception:
            self.failed_items.add(item)
            raise


def handle_in_order(
    event: dict[str, Any], context: LambdaContext, handle: Callable[[DynamoDBRecord], None]
) -> PartialItemFailureResponse:
    """A stream batch's partial batch response. A batch whose every record failed is reported
    as such too, not raised: a function error would make Lambda bisect the batch, and the
    halves could be handled out of order."""
    processor = BatchProcessor(
        event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
    )
    return process_partial_response(
        event=event, record_handler=InOrderPerItem(handle), processor=processor, context=context
    )
