"""Events' and callbacks' parts: the events a table change makes, the bus they are published
to, where callbacks may go and their delivery."""

from __future__ import annotations

from typing import TYPE_CHECKING

from threadline.runtime.parts import Parts

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

    from threadline.callbacks.delivery import CallbackDeliveries
    from threadline.events.changes import ChangeEvents
    from threadline.events.publisher import EventPublisher
    from threadline.settings import CallbackSettings, EventSettings


class EventParts(Parts):
    def event_settings(self) -> EventSettings:
        from threadline.settings import EventSettings, load

        return self._part("event_settings", lambda: load(EventSettings))

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

    def callback_settings(self) -> CallbackSettings:
        from threadline.settings import CallbackSettings, load

        return self._part("callback_settings", lambda: load(CallbackSettings))

    def sqs_client(self) -> SQSClient:
        def build() -> SQSClient:
            import boto3

            return boto3.client("sqs")

        return self._part("sqs_client", build)

    def callback_deliveries(self) -> CallbackDeliveries:
        def build() -> CallbackDeliveries:
            from threadline.api_models import RunResource
            from threadline.callbacks.delivery import CallbackDeliveries
            from threadline.callbacks.http import PinnedPoster
            from threadline.files.generated import download_urls
            from threadline.runs.records import RunRecord
            from threadline.secret_strings import secret_string

            settings = self.callback_settings()

            def view(run: RunRecord) -> object:
                files = download_urls(self.s3_client(), settings.bucket_name, run.generated_files)
                return RunResource.of(run, files).model_dump(mode="json")

            return CallbackDeliveries(
                runs=self.run_store(),
                targets=self.callback_targets(),
                poster=PinnedPoster(),
                secret=lambda: secret_string(
                    settings.callback_secret_name, holding="a callback signing secret"
                ),
                view=view,
                first_retry_seconds=settings.callback_retry_seconds,
            )

        return self._part("callback_deliveries", build)
