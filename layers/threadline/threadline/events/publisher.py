"""Publishing Threadline's events to the deployment's EventBridge bus."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from threadline.events.changes import SOURCE, ThreadlineEvent

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

PUT_EVENTS_LIMIT = 10  # entries per PutEvents request
# A PutEvents request's entries total under 256 KB, each sized as EventBridge sizes it: its
# Time 14 bytes, Source, DetailType, Detail and Resources their UTF-8 bytes.
PUT_EVENTS_BYTES = 256 * 1024
TIME_BYTES = 14


class EventsNotPublished(RuntimeError):
    """EventBridge refused some entries (throttled, or failing): the change is published again."""


class EventPublisher:
    def __init__(self, events: EventBridgeClient, bus_name: str) -> None:
        self._events = events
        self._bus_name = bus_name

    def publish(self, events: list[ThreadlineEvent]) -> None:
        """Put the events on the bus; EventsNotPublished if any entry was refused (the caller
        publishes them all again: a subscriber may see the others twice, with the same
        `event_id`)."""
        for batch in _batches([self._entry(event) for event in events]):
            reply = self._events.put_events(Entries=batch)
            if reply.get("FailedEntryCount"):
                codes = sorted(
                    {entry["ErrorCode"] for entry in reply["Entries"] if entry.get("ErrorCode")}
                )
                raise EventsNotPublished(f"EventBridge refused entries: {', '.join(codes)}")

    def _entry(self, event: ThreadlineEvent) -> PutEventsRequestEntryTypeDef:
        entry: PutEventsRequestEntryTypeDef = {
            "EventBusName": self._bus_name,
            "Source": SOURCE,
            "DetailType": event.detail_type,
            "Detail": event.detail.model_dump_json(exclude_none=True),
        }
        if event.time is not None:
            entry["Time"] = event.time
        return entry


def entry_bytes(entry: PutEventsRequestEntryTypeDef) -> int:
    """An entry's size as EventBridge counts it against a request's 256 KB."""
    texts = [
        entry["Source"],
        entry["DetailType"],
        entry.get("Detail", ""),
        *entry.get("Resources", []),
    ]
    return (TIME_BYTES if "Time" in entry else 0) + sum(len(text.encode()) for text in texts)


def _batches(
    entries: list[PutEventsRequestEntryTypeDef],
) -> Iterator[list[PutEventsRequestEntryTypeDef]]:
    """The entries in order, as few requests as their count and size allow (an entry is at
    most about 130 KB: a run event cuts its two texts to 64 KB each)."""
    batch: list[PutEventsRequestEntryTypeDef] = []
    size = 0
    for entry in entries:
        grown = size + entry_bytes(entry)
        if batch and (len(batch) == PUT_EVENTS_LIMIT or grown >= PUT_EVENTS_BYTES):
            yield batch
            batch, grown = [], entry_bytes(entry)
        batch.append(entry)
        size = grown
    if batch:
        yield batch
