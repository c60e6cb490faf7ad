"""Push mode: the execution sleeps on a task token until OpenAI's webhook says the response
finished, then the run state moves on without any status polling while the model works."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from botocore.exceptions import ClientError

from threadline.run_state import RunState
from threadline.run_steps import RunSteps
from threadline.webhook_waits import WebhookWaits

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

# The response events OpenAI sends for background responses that reached a terminal state.
FINISHED_EVENTS = frozenset(
    {"response.completed", "response.failed", "response.cancelled", "response.incomplete"}
)
EventOutcome = Literal["resumed", "recorded", "ignored"]


class PushWaits:
    def __init__(self, *, waits: WebhookWaits, steps: RunSteps, stepfunctions: SFNClient) -> None:
        self._waits = waits
        self._steps = steps
        self._sfn = stepfunctions

    def await_response(self, state: RunState, task_token: str) -> bool:
        """Park the execution's token; True if the webhook had already come (resumed now)."""
        if state.handle is None:
            raise ValueError(f"run {state.run_id} has no remote response to wait for")
        response_id = state.handle.run_remote_id
        self._waits.register_wait(response_id, task_token, state)
        return self._resume(response_id) is not None

    def on_event(self, event_type: str, response_id: str) -> tuple[EventOutcome, RunState | None]:
        """Handle one verified webhook event; unknown responses are simply remembered. With
        "resumed" comes the run state the waiting execution was sent on with."""
        if event_type not in FINISHED_EVENTS:
            return "ignored", None
        self._waits.record_event(response_id, event_type)
        resumed = self._resume(response_id)
        return ("resumed", resumed) if resumed else ("recorded", None)

    def _resume(self, response_id: str) -> RunState | None:
        claimed = self._waits.claim(response_id)
        if claimed is None:
            return None
        try:
            # One read of the finished response; the execution goes on from RouteOnStatus.
            state = self._steps.check_run(claimed.state)
            self._send(claimed.task_token, state)
        except Exception:
            self._waits.release(response_id, claimed.task_token)  # a retry can claim it
            raise
        return state

    def _send(self, task_token: str, state: RunState) -> None:
        try:
            self._sfn.send_task_success(taskToken=task_token, output=state.model_dump_json())
        except ClientError as error:
            # The wait already ended (its heartbeat fallback checked the run): nothing to do.
            if error.response["Error"]["Code"] not in ("TaskTimedOut", "InvalidToken"):
                raise
