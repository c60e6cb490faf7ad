"""Webhook waits (push mode): the execution sleeps on a task token until OpenAI's webhook says
the response finished, then the run state moves on without any status polling while the model
works.

The run, its waiting execution and the webhook meet on one item per response: PK
`RESPONSE#{response_id}`, SK `WAIT`.
- The step that made the response *holds* it there (`run_id`) once the run's record lists it:
  the run counts that response's tokens when it finishes, so its webhook need not read the
  response again. A response nobody holds (its create reply was lost, so no run knows it) is
  counted by its webhook.
- The WaitForWebhook task writes its task token; the webhook writes the event it got. They may
  come in either order (a webhook can beat the token), so whichever writes second *claims* the
  item, which succeeds only once both halves are present and nobody claimed it before: the wait
  ends exactly once.
- A run that finishes without knowing a held response's final usage (it was still going, or a
  retried step made it) lets go of it: if its webhook has not come, the webhook counts it;
  if it came (and left it to the run), the run counts it now. Each write returns the item, so
  exactly one side sees the other's half.
Every write is idempotent, so a redelivered webhook changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel

from threadline import clock
from threadline.runs.state import RunState
from threadline.store.dynamo import condition_held, updated_if_held

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_stepfunctions import SFNClient

    from threadline.runs.steps import RunSteps

# A wait record outlives any run deadline; an event for an unknown response expires quietly.
WAIT_RETENTION = timedelta(days=2)
# The response events OpenAI sends for background responses that reached a terminal state.
FINISHED_EVENTS = frozenset(
    {"response.completed", "response.failed", "response.cancelled", "response.incomplete"}
)
EventOutcome = Literal["resumed", "recorded", "ignored"]


class EventHandled(BaseModel):
    outcome: EventOutcome
    counted: bool = False  # this event counted the response's tokens (nobody held it)


class WebhookWaits:
    """Both halves of a wait: the WaitForWebhook task's and the webhook's."""

    def __init__(
        self, *, store: WebhookWaitStore, steps: RunSteps, stepfunctions: SFNClient
    ) -> None:
        self._store = store
        self._steps = steps
        self._sfn = stepfunctions

    def wait_for_webhook(self, state: RunState, task_token: str) -> bool:
        """Park the execution's token; True if the webhook had already come (resumed now)."""
        if state.handle is None:
            raise ValueError(f"run {state.run_id} has no remote response to wait for")
        response_id = state.handle.run_remote_id
        item = self._store.register_wait(response_id, task_token, state)
        return item.event_type is not None and self._resume(response_id) is not None

    def on_event(self, event_type: str, response_id: str) -> EventHandled:
        """Handle one verified webhook event: wake the run waiting for the response, and count
        the tokens of a response no run holds (see the module's docstring)."""
        if event_type not in FINISHED_EVENTS:
            return EventHandled(outcome="ignored")
        item = self._store.record_event(response_id, event_type)
        resumed = self._resume(response_id) if item.awaited else None
        counted = item.run_id is None and self._steps.counting.count_remote(response_id)
        return EventHandled(outcome="recorded" if resumed is None else "resumed", counted=counted)

    def _resume(self, response_id: str) -> RunState | None:
        claimed = self._store.claim(response_id)
        if claimed is None:
            return None
        try:
            # One read of the finished response; the execution goes on from RouteOnStatus.
            state = self._steps.check_run(claimed.state)
            state = state.model_copy(update={"webhooks": state.webhooks + 1})
            self._send(claimed.task_token, state)
        except Exception:
            self._store.release(response_id, claimed.task_token)  # a retry can claim it
            raise
        return state

    def _send(self, task_token: str, state: RunState) -> None:
        try:
            self._sfn.send_task_success(taskToken=task_token, output=state.model_dump_json())
        except ClientError as error:
            # The wait already ended (its heartbeat fallback checked the run): nothing to do.
            if error.response["Error"]["Code"] not in ("TaskTimedOut", "InvalidToken"):
                raise


class WaitItem(BaseModel):
    """What a write to a response's item found there afterwards."""

    run_id: str | None = None
    event_type: str | None = None
    has_token: bool = False
    claimed: bool = False

    @property
    def awaited(self) -> bool:
        """An execution waits for this response and nobody has woken it yet."""
        return self.has_token and not self.claimed


class ClaimedWait(BaseModel):
    task_token: str
    state: RunState
    event_type: str


class WebhookWaitStore:
    """The response items in the table."""

    def __init__(self, table: Table, *, now: Callable[[], datetime] = clock.utc_now) -> None:
        self._table = table
        self._now = now

    def _key(self, response_id: str) -> dict[str, str]:
        return {"PK": f"RESPONSE#{response_id}", "SK": "WAIT"}

    def _set(self, response_id: str, assignments: dict[str, Any]) -> WaitItem:
        values = {f":{name}": value for name, value in assignments.items()}
        values[":expires"] = int((self._now() + WAIT_RETENTION).timestamp())
        item = self._table.update_item(
            Key=self._key(response_id),
            UpdateExpression="SET "
            + ", ".join(f"{name} = :{name}" for name in assignments)
            + ", expires_at = :expires",
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return _wait_item(item)

    def hold(self, response_id: str, run_id: str) -> None:
        """The run counts this response's tokens when it finishes (see `let_go`)."""
        self._set(response_id, {"run_id": run_id})

    def let_go(self, response_id: str) -> bool:
        """The run will not count a response it holds after all: True if its webhook has not
        come, so the webhook counts it; False if it came (or nobody held the response), so
        the caller counts it."""
        item = updated_if_held(
            self._table,
            Key=self._key(response_id),
            UpdateExpression="REMOVE run_id",
            ConditionExpression="attribute_exists(run_id)",
        )
        return item is not None and "event_type" not in item

    def register_wait(self, response_id: str, task_token: str, state: RunState) -> WaitItem:
        return self._set(
            response_id, {"task_token": task_token, "run_state": state.model_dump_json()}
        )

    def record_event(self, response_id: str, event_type: str) -> WaitItem:
        return self._set(response_id, {"event_type": event_type})

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
        item = updated_if_held(
            self._table,
            Key=self._key(response_id),
            UpdateExpression="SET claimed_at = :now",
            ConditionExpression=(
                "attribute_exists(task_token) AND attribute_exists(event_type) "
                "AND attribute_not_exists(claimed_at)"
            ),
            ExpressionAttributeValues={":now": clock.iso(self._now())},
        )
        if item is None:
            return None
        return ClaimedWait(
            task_token=str(item["task_token"]),
            state=RunState.model_validate_json(str(item["run_state"])),
            event_type=str(item["event_type"]),
        )


def _wait_item(item: dict[str, Any]) -> WaitItem:
    return WaitItem(
        run_id=str(item["run_id"]) if "run_id" in item else None,
        event_type=str(item["event_type"]) if "event_type" in item else None,
        has_token="task_token" in item,
        claimed="claimed_at" in item,
    )
