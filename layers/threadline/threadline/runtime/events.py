"""Events' parts: the events a table change makes, and the bus they are published to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from threadline.runtime.parts import Parts

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

    from threadline.events.changes import ChangeEvents
    from threadline.events.publisher import EventPublisher
    from threadline.settings import EventSettings


class EventParts(Parts):
    def event_settings(self) -> EventSettings:
        from threadline.settings import load_event_settings

        return self._part("event_settings", load_event_settings)

    def events_client(self) -> EventBridgeClient:
        def build() -> EventBridgeClient:
            import boto3

            return boto3.client("events")

        return self._part("events_client", build)

    def change_events(self) -> ChangeEvents:
        def build() -> ChangeEvents:
            from threadline.events.changes import ChangeEvents

            settings = self.event_settings()
            return ChangeEvents(
                include_text=settings.events_include_text,
                daily_token_budget=settings.daily_token_budget,
            )

        return self._part("change_events", build)

    def event_publisher(self) -> EventPublisher:
        def build() -> EventPublisher:
            from threadline.events.publisher import EventPublisher

            return EventPublisher(self.events_client(), self.event_settings().event_bus_name)

        return self._part("event_publisher", build)
