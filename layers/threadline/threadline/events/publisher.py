"""Publishing Threadline's events to the deployment's EventBridge bus."""

from __future__ import annotations

from typing import TYPE_CHECKING

from threadline.events.changes import SOURCE, ThreadlineEvent

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

PUT_EVENTS_LIMIT = 10  # entries per PutEvents request


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
        for start in range(0, len(events), PUT_EVENTS_LIMIT):
            chunk = events[start : start + PUT_EVENTS_LIMIT]
            reply = self._events.put_events(Entries=[self._entry(event) for event in chunk])
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
