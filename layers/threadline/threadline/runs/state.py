"""The JSON document the state machine passes from task to task.

Every task returns the whole state; `next` tells the router (RouteOnStatus) where to go.
What users wrote or were given stays in DynamoDB and OpenAI, not here: the message, the
answer, the tool calls' arguments and outputs are on the run's record (the state names the
calls by id). The state is kept in a Standard execution's history for 90 days and is
limited to 256 KB; it carries ids, statuses, counts, usage and times.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from threadline.backends.base import GeneratedFile, RunContext, RunHandle, RunView
from threadline.models import RunStatus, Usage
from threadline.settings import WaitMode

Next = Literal[
    "wait", "wait_for_webhook", "run_tools", "await_approval", "cancel", "hand_off", "finish"
]
# Which state machine drives the run: the Express one polls every second for the run's first
# stretch, then hands the run to the Standard one (see threadline.runs.tiers).
Tier = Literal["express", "standard"]
Step = Literal["started", "tool_round", "awaiting_approval", "handed_off", "cancelled", "finished"]
# ProcessToolCalls' 60 s timeout and its quick retries (tests/test_first_deploy.py).
TOOL_ROUND_HEADROOM = timedelta(seconds=70)


class StartRunInput(BaseModel):
    """The execution's input, as the API starts it. A field it does not know is ignored, as
    every state the tasks pass is: during a deploy a newer API can start a run that an older
    StartRun handles."""

    run_id: str = Field(min_length=1)
    thread_id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)
    # The API records the message with the run and leaves it out of the input, which a
    # Standard execution's history keeps for 90 days; StartRun reads it from the record.
    message: str | None = Field(default=None, min_length=1)
    assistant: str = "data_analyst"
    # A run may ask for a shorter deadline than the deployment's RunTimeoutSeconds, not longer.
    timeout_seconds: int | None = Field(default=None, ge=1)
    tier: Tier = "standard"


class TimelineEntry(BaseModel):
    """A step of the run that changed its course (not every status check: those are counted).

    Express executions keep no history, so the run's own record is where its course is kept.
    """

    step: Step
    tier: Tier
    at: datetime
    checks: int = Field(default=0, description="Status checks since the previous entry.")
    woken_by_webhook: int = Field(
        default=0, description="How many of those checks OpenAI's webhook prompted (push mode)."
    )


class CaughtError(BaseModel):
    """What a Catch with ResultPath $.error adds: the error name and its cause."""

    Error: str
    Cause: str | None = None

    def describe(self) -> str:
        """A Lambda error's Cause is the runtime's JSON error payload; keep its message only."""
        message = self.Cause or ""
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(message).get("errorMessage", message)
        return f"{self.Error}: {message}" if message else self.Error


class RunState(BaseModel):
    run_id: str
    thread_id: str
    user_id: str
    assistant: str = "data_analyst"
    handle: RunHandle | None = None
    context: RunContext = Field(default_factory=RunContext)
    started_at: datetime | None = None
    deadline: datetime | None = None
    status: RunStatus = RunStatus.QUEUED
    tier: Tier = "standard"
    wait_mode: WaitMode = "poll"  # how the Standard tier waits, chosen when the run starts
    next: Next = "wait"
    wait_seconds: int = 0
    # Push mode: how long WaitForWebhook sleeps before checking the run itself.
    webhook_wait_seconds: int = 0  # 0 until its first wait
    polls: int = 0
    webhooks: int = 0  # of the polls, those a webhook prompted
    tool_rounds: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    # The calls the remote run waits on (the run's record has them with their arguments).
    pending_call_ids: list[str] = Field(default_factory=list)
    # When a check first found the remote run asking for them (an Assistants run waiting for
    # tool outputs expires ten minutes after).
    tools_requested_at: datetime | None = None
    # Set while calls wait for a person (AwaitApproval): since when, which, and for how long.
    approval_requested_at: datetime | None = None
    approval_call_ids: list[str] = Field(default_factory=list)
    approval_wait_seconds: int = 0
    usage: Usage = Field(default_factory=Usage)
    # The usage of the current remote response is final (it settled): FinishRun may count it.
    usage_settled: bool = False
    generated_files: list[GeneratedFile] = Field(default_factory=list)
    reason: str | None = None
    error: CaughtError | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)

    def outcome(self) -> tuple[RunStatus, str | None]:
        """How the run ends from here: a caught error fails it, as does ending unfinished."""
        if self.error is not None:
            return RunStatus.FAILED, self.error.describe()
        if self.status.is_terminal:
            return self.status, self.reason
        return RunStatus.FAILED, f"run ended while {self.status.value}"

    def with_usage_of(self, view: RunView) -> RunState:
        """The state with the usage a look at the remote run reported."""
        return self.model_copy(update={"usage": view.usage, "usage_settled": view.settled})

    def settled_usage(self) -> dict[str, Usage]:
        """The final usage of each remote object of the run known to have settled, by id."""
        if self.handle is None:
            return {}
        settled = dict(self.handle.finished_usage)
        if self.usage_settled:
            settled[self.handle.run_remote_id] = self.usage - self.handle.carried_usage
        return settled

    def express_until(self, express_tier_seconds: int) -> datetime:
        """When the Express tier hands the run on (`express_tier_seconds` is at most 180, so
        two minutes of the Express execution's five are left for the last steps)."""
        started = self.started_at or datetime.min.replace(tzinfo=UTC)
        return started + timedelta(seconds=express_tier_seconds)

    def where_tools_run(self, express_tier_seconds: int, now: datetime) -> Next:
        """Where the tools the model asked for run: here, or - in the Express tier's last
        minute - after the hand-off, so that a round and its retries end well inside the
        Express execution's five minutes."""
        late = now + TOOL_ROUND_HEADROOM >= self.express_until(express_tier_seconds)
        return "hand_off" if self.tier == "express" and late else "run_tools"

    def entered(self, step: Step, at: datetime) -> list[TimelineEntry]:
        """The timeline with `step` added, carrying the checks made since the last entry."""
        entry = TimelineEntry(
            step=step, tier=self.tier, at=at, checks=self.polls, woken_by_webhook=self.webhooks
        )
        return [*self.timeline, entry]

    def to_output(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ParkedState(BaseModel):
    """What a waitForTaskToken task passes its function: the run state and the token that
    resumes the execution."""

    state: RunState
    task_token: str


def ended_remotely(view: RunView) -> dict[str, object]:
    """The run-state fields of a run that ended remotely (its answer goes to its record)."""
    return {
        "status": view.status,
        "usage": view.usage,
        "usage_settled": view.settled,
        "next": "finish",
        "generated_files": view.generated_files,
        "reason": view.error,
    }
