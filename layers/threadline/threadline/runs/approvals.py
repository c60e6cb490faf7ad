"""A person approves or denies the tool calls that need it, while the run waits at no cost.

When the model asks for a tool marked `requires_approval`, ProcessToolCalls sends the run to
AwaitApproval instead of running anything: a Step Functions task that parks its task token on
the run's record (`status: requires_approval`, the calls and their arguments) and sleeps until
the token is used or ApprovalTimeoutSeconds pass. The run's owner answers every call with
POST .../approvals; the answer that decides the last call wakes the run. Either way
ProcessToolCalls then reads the decisions from the record - the token only wakes the run
early, so a lost wake-up costs time, never a decision - runs the approved calls and gives the
model a denial it can read for the others (an unanswered call is denied). The wait does not
count against the run's deadline, and the thread's lock is held for the wait.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from threadline import clock
from threadline.errors import ConflictError, InvalidRequestError
from threadline.models import RunStatus, ToolCall, ToolOutput
from threadline.runs.records import ApprovalRequest, RunRecord, RunStore
from threadline.store import table
from threadline.store.dynamo import to_item, updated_if_held
from threadline.threads.records import ThreadStore
from threadline.threads.run_lock import RunLock, run_lock_lease
from threadline.tools import ToolRegistry

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_stepfunctions import SFNClient

    from threadline.runs.state import RunState

logger = logging.getLogger(__name__)

MAX_REASON_CHARS = 500
# A call's arguments as the run view shows them to the person deciding.
MAX_ARGUMENTS_CHARS = 4_000
# Approval entries written per update (an update expression holds at most 4 KB).
ENTRIES_PER_UPDATE = 20


class ApprovalDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_id: str = Field(min_length=1, max_length=200)
    approve: bool
    reason: str | None = Field(
        default=None,
        max_length=MAX_REASON_CHARS,
        description="Why; a denied call's reason is what the model reads.",
    )


def calls_needing_approval(tools: ToolRegistry, calls: list[ToolCall]) -> list[ToolCall]:
    """The calls of tools marked `requires_approval`, and the MCP calls OpenAI holds back
    for approval (the assistant's `require_approval` policy)."""
    needing = []
    for call in calls:
        tool = tools.get(call.name)
        if call.kind == "mcp_approval" or (tool is not None and tool.requires_approval):
            needing.append(call)
    return needing


def mcp_approval_answer(call: ToolCall, request: ApprovalRequest | None) -> ToolOutput:
    """The answer OpenAI gets for an MCP call that waited (unanswered: not approved)."""
    approve = request is not None and request.approved
    return ToolOutput(
        call_id=call.id,
        name=call.name,
        output=json.dumps({"approve": approve}),
        is_error=not approve,
        approve=approve,
    )


def denial_output(call: ToolCall, request: ApprovalRequest | None, wait_seconds: int) -> ToolOutput:
    """What the model reads for a call a person denied, or left unanswered."""
    if request is not None and request.decision == "denied":
        message = "a person denied this call" + (f": {request.reason}" if request.reason else "")
    else:
        message = f"no one approved this call within {wait_seconds} s, so it did not run"
    return ToolOutput(
        call_id=call.id,
        name=call.name,
        output=json.dumps({"error": {"type": "denied", "message": message}}),
        is_error=True,
    )


class ApprovalStore:
    """The approvals on run records: `approvals` (every call that waited, by id), the calls
    the current wait is for (`awaiting_calls`) and the waiting task's token."""

    def __init__(self, table_: Table, *, now: Callable[[], datetime] = clock.utc_now) -> None:
        self._table = table_
        self._now = now

    def _key(self, thread_id: str, run_id: str) -> dict[str, str]:
        return {"PK": table.thread_key(thread_id), "SK": table.run_sort_key(run_id)}

    def open(
        self, thread_id: str, run_id: str, requests: list[ApprovalRequest], task_token: str
    ) -> RunRecord | None:
        """Mark the run as waiting for these requests (kept as they are if a retry finds
        them, decisions included) and the waiting task's token; None if the run finished."""
        # A map attribute must exist before its entries can be set; the entries go in a few
        # at a time, as an update expression is limited to 4 KB.
        self._table.update_item(
            Key=self._key(thread_id, run_id),
            UpdateExpression="SET approvals = if_not_exists(approvals, :empty)",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues={":empty": {}},
        )
        for start in range(0, len(requests), ENTRIES_PER_UPDATE):
            chunk = requests[start : start + ENTRIES_PER_UPDATE]
            self._table.update_item(
                Key=self._key(thread_id, run_id),
                UpdateExpression="SET "
                + ", ".join(
                    f"approvals.#c{index} = if_not_exists(approvals.#c{index}, :c{index})"
                    for index in range(len(chunk))
                ),
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={
                    f"#c{index}": request.call_id for index, request in enumerate(chunk)
                },
                ExpressionAttributeValues={
                    f":c{index}": to_item(request.model_dump(mode="json", exclude_none=True))
                    for index, request in enumerate(chunk)
                },
            )
        item = updated_if_held(
            self._table,
            Key=self._key(thread_id, run_id),
            UpdateExpression=(
                "SET #status = :waiting, approval_token = :token, awaiting_calls = :calls"
            ),
            ConditionExpression="attribute_exists(PK) AND attribute_not_exists(finished_at)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":waiting": RunStatus.REQUIRES_APPROVAL.value,
                ":token": task_token,
                ":calls": [request.call_id for request in requests],
            },
        )
        return None if item is None else RunRecord.model_validate(item)

    def decide(
        self, thread_id: str, run_id: str, decisions: list[ApprovalDecision]
    ) -> RunRecord | None:
        """Record the decisions, all or none: None unless the run waits for every call named
        and none is decided yet."""
        now = clock.iso(self._now())
        names: dict[str, str] = {"#status": "status"}
        values: dict[str, Any] = {":waiting": RunStatus.REQUIRES_APPROVAL.value, ":now": now}
        sets, conditions = [], ["#status = :waiting"]
        for index, decision in enumerate(decisions):
            names[f"#c{index}"] = decision.call_id
            values[f":id{index}"] = decision.call_id
            values[f":d{index}"] = "approved" if decision.approve else "denied"
            values[f":r{index}"] = decision.reason or ""
            entry = f"approvals.#c{index}"
            sets += [f"{entry}.decision = :d{index}", f"{entry}.reason = :r{index}"]
            sets.append(f"{entry}.decided_at = :now")
            conditions.append(
                f"contains(awaiting_calls, :id{index}) AND attribute_exists({entry}) "
                f"AND attribute_not_exists({entry}.decision)"
            )
        item = updated_if_held(
            self._table,
            Key=self._key(thread_id, run_id),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return None if item is None else RunRecord.model_validate(item)

    def close(self, thread_id: str, run_id: str) -> RunRecord | None:
        """End the wait: the run goes on, no answer is taken any more; the run as it was
        closed, with every decision it got. None if it was not waiting (closed already)."""
        item = updated_if_held(
            self._table,
            Key=self._key(thread_id, run_id),
            UpdateExpression="SET #status = :going REMOVE approval_token",
            ConditionExpression="#status = :waiting AND attribute_not_exists(finished_at)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":going": RunStatus.IN_PROGRESS.value,
                ":waiting": RunStatus.REQUIRES_APPROVAL.value,
            },
        )
        return None if item is None else RunRecord.model_validate(item)


class RunApprovals:
    def __init__(
        self,
        *,
        store: ApprovalStore,
        runs: RunStore,
        threads: ThreadStore,
        lock: RunLock,
        stepfunctions: Callable[[], SFNClient],
        approval_timeout_seconds: int,
        run_timeout_seconds: int,
        now: Callable[[], datetime] = clock.utc_now,
    ) -> None:
        self._store = store
        self._runs = runs
        self._threads = threads
        self._lock = lock
        self._sfn = stepfunctions
        self._timeout = approval_timeout_seconds
        self._run_timeout = run_timeout_seconds
        self._now = now

    def wait(self, state: RunState, calls: list[ToolCall], task_token: str) -> None:
        """AwaitApproval: ask for the calls' decisions and park the token. A run interrupted
        or cancelled before its wait began, or a retry that finds every call decided, is
        woken at once."""
        now = self._now()
        requests = [
            ApprovalRequest(
                call_id=call.id,
                tool=call.name,
                arguments=call.arguments[:MAX_ARGUMENTS_CHARS],
                requested_at=now,
            )
            for call in calls
        ]
        # The lock outlives the wait, or FinishLostRuns would take the waiting run for lost.
        lease = timedelta(seconds=state.approval_wait_seconds) + run_lock_lease(self._run_timeout)
        self._lock.extend(state.user_id, state.thread_id, state.run_id, lease=lease)
        record = self._store.open(state.thread_id, state.run_id, requests, task_token)
        if record is not None and (record.interrupted_by or record.awaiting_decided):
            self._wake(task_token)

    def decide(
        self, user_id: str, thread_id: str, run_id: str, decisions: list[ApprovalDecision]
    ) -> RunRecord:
        """The owner's answer (POST .../approvals); the run as it is after it."""
        self._threads.get(user_id, thread_id)  # another user's thread is not found
        run = self._runs.get(thread_id, run_id)
        self._check(run, decisions)
        recorded = self._store.decide(thread_id, run_id, decisions)
        if recorded is None:  # another answer, or the end of the wait, got there first
            self._check(self._runs.get(thread_id, run_id), decisions)
            raise ConflictError("not_awaiting_approval", "the run is no longer waiting")
        self._wake_if_decided(recorded)
        return recorded

    def _check(self, run: RunRecord, decisions: list[ApprovalDecision]) -> None:
        named = [decision.call_id for decision in decisions]
        if len(set(named)) != len(named):
            raise InvalidRequestError("duplicate_call", "each call may be decided once")
        unknown = [call_id for call_id in named if call_id not in run.approvals]
        if unknown:
            raise InvalidRequestError(
                "unknown_call", f"the run asks for no approval of {', '.join(unknown)}"
            )
        decided = [call_id for call_id in named if run.approvals[call_id].decision]
        if decided:
            # A repeated answer whose reply was lost: the wake-up it sent may be lost too.
            self._wake_if_decided(run)
            raise ConflictError("already_decided", f"already decided: {', '.join(decided)}")
        if run.status is not RunStatus.REQUIRES_APPROVAL or not set(named) <= set(
            run.awaiting_calls
        ):
            raise ConflictError(
                "not_awaiting_approval", f"the run is {run.status.value}, not waiting for these"
            )

    def _wake_if_decided(self, run: RunRecord) -> None:
        if run.status is RunStatus.REQUIRES_APPROVAL and run.awaiting_decided:
            self.stop_waiting(run)

    def stop_waiting(self, run: RunRecord) -> None:
        """Wake a waiting run: decided, interrupted or cancelled, it goes on at once."""
        if run.status is RunStatus.REQUIRES_APPROVAL and run.approval_token:
            self._wake(run.approval_token)

    def _wake(self, task_token: str) -> None:
        """Resume the run early; best effort (its wait ends at the timeout anyway, and a
        repeated answer sends it again)."""
        try:
            self._sfn().send_task_success(taskToken=task_token, output="{}")
        except (ClientError, BotoCoreError) as error:
            logger.warning("approval wake-up not sent", extra={"error": type(error).__name__})

    def decisions(self, state: RunState, calls: list[ToolCall]) -> Mapping[str, ApprovalRequest]:
        """After the wait: each call's request with its decision, as the wait was closed (an
        answer after that is refused, never taken and then ignored). The thread's lock goes
        back to the run's own lease."""
        record = self._store.close(state.thread_id, state.run_id) or self._runs.get(
            state.thread_id, state.run_id
        )
        self._lock.extend(
            state.user_id,
            state.thread_id,
            state.run_id,
            lease=run_lock_lease(self._run_timeout),
        )
        return {call.id: record.approvals[call.id] for call in calls if call.id in record.approvals}
