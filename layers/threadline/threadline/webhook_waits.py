"""Push mode's meeting point between a waiting execution and OpenAI's webhook.

One item per awaited response: PK `RESPONSE#{response_id}`, SK `WAIT`. The execution's
AwaitWebhook task writes its task token there; the webhook writes the event it got. They may
come in either order (a webhook can beat the token), so each writer then tries to *claim* the
item, which succeeds only once both halves are present and nobody claimed it before: whichever
writes second finishes the wait, exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from threadline import table as keys
from threadline.dynamo import condition_held, is_conditional_failure
from threadline.run_state import RunState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

# A wait record outlives any run deadline; an event for an unknown response expires quietly.
WAIT_RETENTION = timedelta(days=2)


class ClaimedWait(BaseModel):
    task_token: str
    state: RunState
    event_type: str


class WebhookWaits:
    def __init__(self, table: Table, *, now: Callable[[], datetime] = keys.utc_now) -> None:
        self._table = table
        self._now = now

    def _key(self, response_id: str) -> dict[str, str]:
        return {"PK": f"RESPONSE#{response_id}", "SK": "WAIT"}

    def _set(self, response_id: str, assignments: dict[str, Any]) -> None:
        values = {f":{name}": value for name, value in assignments.items()}
        values[":expires"] = int((self._now() + WAIT_RETENTION).timestamp())
        self._table.update_item(
            Key=self._key(response_id),
            UpdateExpression="SET "
            + ", ".join(f"{name} = :{name}" for name in assignments)
            + ", expires_at = :expires",
            ExpressionAttributeValues=values,
        )

    def register_wait(self, response_id: str, task_token: str, state: RunState) -> None:
        self._set(response_id, {"task_token": task_token, "run_state": state.model_dump_json()})

    def record_event(self, response_id: str, event_type: str) -> None:
        self._set(response_id, {"event_type": event_type})

    def release(self, response_id: str, task_token: str) -> None:
        """Give a claimed wait back (its resume failed), so a retry of either half can claim
        it again; only while it still holds the token the claim was made with."""
        condition_held(
            self._table.update_item,
            Key=self._key(response_id),
            UpdateExpression="REMOVE claimed_at",
            ConditionExpression="task_token = :token",
            ExpressionAttributeValues={":token": task_token},
        )

    def claim(self, response_id: str) -> ClaimedWait | None:
        """The wait to finish, if both halves are here and nobody claimed it yet."""
        try:
            item = self._table.update_item(
                Key=self._key(response_id),
                UpdateExpression="SET claimed_at = :now",
                ConditionExpression=(
                    "attribute_exists(task_token) AND attribute_exists(event_type) "
                    "AND attribute_not_exists(claimed_at)"
                ),
                ExpressionAttributeValues={":now": keys.iso(self._now())},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if is_conditional_failure(error):
                return None
            raise
        return ClaimedWait(
            task_token=str(item["task_token"]),
            state=RunState.model_validate_json(str(item["run_state"])),
            event_type=str(item["event_type"]),
        )
