"""Streaming's parts: the update log, subscriptions, posting to connections, the text relay,
and the WebSocket API's token check."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from threadline.errors import ConfigurationError
from threadline.runtime.parts import Parts

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

    from threadline.settings import StreamSettings, TokenSettings
    from threadline.streams.broadcast import Broadcast
    from threadline.streams.log import RelayLease, Subscriptions, UpdateLog
    from threadline.streams.relay import TextRelay
    from threadline.streams.subscribing import StartRelay, Subscriber
    from threadline.streams.tokens import TokenVerifier
    from threadline.streams.updates import UpdatePusher


class StreamParts(Parts):
    def stream_settings(self) -> StreamSettings:
        from threadline.settings import StreamSettings, load

        return self._part("stream_settings", lambda: load(StreamSettings))

    def token_settings(self) -> TokenSettings:
        from threadline.settings import TokenSettings, load

        return self._part("token_settings", lambda: load(TokenSettings))

    def management_client(self) -> ApiGatewayManagementApiClient:
        def build() -> ApiGatewayManagementApiClient:
            import boto3

            return boto3.client(
                "apigatewaymanagementapi", endpoint_url=self.stream_settings().stream_endpoint
            )

        return self._part("management_client", build)

    def update_log(self) -> UpdateLog:
        def build() -> UpdateLog:
            from threadline.streams.log import UpdateLog

            return UpdateLog(self.table())

        return self._part("update_log", build)

    def subscriptions(self) -> Subscriptions:
        def build() -> Subscriptions:
            from threadline.streams.log import Subscriptions

            return Subscriptions(self.table())

        return self._part("subscriptions", build)

    def relay_lease(self) -> RelayLease:
        def build() -> RelayLease:
            from threadline.streams.log import RelayLease

            return RelayLease(self.table())

        return self._part("relay_lease", build)

    def broadcast(self) -> Broadcast:
        def build() -> Broadcast:
            from threadline.streams.broadcast import Broadcast

            return Broadcast(self.management_client(), self.subscriptions())

        return self._part("broadcast", build)

    def start_relay(self) -> StartRelay | None:
        """Starts RelayText for a run (an asynchronous invocation); None on the Assistants
        backend, whose background runs cannot be streamed again."""
        if self.settings().openai_backend != "responses":
            return None
        function_name = self.stream_settings().relay_function_name
        if not function_name:
            raise ConfigurationError("starting text relays needs RELAY_FUNCTION_NAME")

        def start(thread_id: str, run_id: str) -> None:
            self.lambda_client().invoke(
                FunctionName=function_name,
                InvocationType="Event",
                Payload=json.dumps({"thread_id": thread_id, "run_id": run_id}).encode(),
            )

        return start

    def update_pusher(self) -> UpdatePusher:
        def build() -> UpdatePusher:
            from threadline.streams.updates import UpdatePusher

            return UpdatePusher(self.update_log(), self.broadcast(), start_relay=self.start_relay())

        return self._part("update_pusher", build)

    def subscriber(self) -> Subscriber:
        def build() -> Subscriber:
            from threadline.streams.subscribing import Subscriber

            return Subscriber(
                self.run_store(),
                self.update_log(),
                self.subscriptions(),
                self.broadcast(),
                start_relay=self.start_relay(),
            )

        return self._part("subscriber", build)

    def text_relay(self) -> TextRelay:
        def build() -> TextRelay:
            from threadline.backends.responses import ResponsesBackend
            from threadline.streams.relay import TextRelay

            backend = self.backend()
            if not isinstance(backend, ResponsesBackend):
                raise ConfigurationError("text relays need OPENAI_BACKEND responses")
            return TextRelay(
                self.run_store(), self.update_log(), self.relay_lease(), self.broadcast(), backend
            )

        return self._part("text_relay", build)

    def token_verifier(self) -> TokenVerifier:
        def build() -> TokenVerifier:
            from threadline.streams.tokens import TokenVerifier, fetch_json

            settings = self.token_settings()
            return TokenVerifier(
                settings.jwt_issuer, settings.audiences, fetch_json(settings.keys_url)
            )

        return self._part("token_verifier", build)
