"""Posting messages to WebSocket connections through API Gateway's management API."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from pydantic import BaseModel

from threadline.streams.log import Subscriptions

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

logger = logging.getLogger(__name__)


class Broadcast:
    def __init__(
        self, management: ApiGatewayManagementApiClient, subscriptions: Subscriptions
    ) -> None:
        self._management = management
        self._subscriptions = subscriptions

    def listening(self, run_id: str) -> bool:
        return bool(self._subscriptions.of(run_id))

    def to_run(self, run_id: str, messages: Sequence[BaseModel]) -> int:
        """Post the messages to every connection subscribed to the run, in order; forget the
        connections that are gone. How many are still subscribed."""
        listening = 0
        for connection_id in self._subscriptions.of(run_id):
            if self.to_connection(connection_id, messages):
                listening += 1
            else:
                self._subscriptions.remove(run_id, connection_id)
        return listening

    def to_connection(self, connection_id: str, messages: Sequence[BaseModel]) -> bool:
        """Post the messages to one connection, in order; False if it is gone. A post refused
        otherwise (throttled, too large) is logged and the rest still go: the client finds
        the gap by its numbers and asks for what it missed."""
        for message in messages:
            try:
                self._management.post_to_connection(
                    ConnectionId=connection_id, Data=message.model_dump_json().encode()
                )
            except self._management.exceptions.GoneException:
                return False
            except ClientError as error:
                logger.warning(
                    "post refused",
                    extra={"connection_id": connection_id, "error": error.response["Error"]},
                )
        return True
