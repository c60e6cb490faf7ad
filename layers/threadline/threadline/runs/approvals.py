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

import contextlib
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
MAX_ARGUMENTS_CHARS = 16_000


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
    """The approvals on run records: `approvals` (by call id) and the waiting task's token."""

    def __init__(self, table_: Table, *, now: Callable[[], datetime] = clock.utc_now) -> None:
        self._table = table_
        self._now = now

    def _key(self, thread_id: str, run_id: str) -> dict[str, str]:
        return {"PK": table.thread_key(thread_id), "SK": table.run_sort_key(run_id)}

    def open(
        self, thread_id: str, run_id: str, requests: list[ApprovalRequest], task_token: str
    ) -> RunRecord | None:
        """Mark the run as waiting with these requests (kept as they are if a retry finds
        them, decisions included) and the waiting task's token; None if the run finished."""
        names = {f"#c{index}": request.call_id for index, request in enumerate(requests)}
        values = {
            f":c{index}": to_item(request.model_dump(mode="json", exclude_none=True))
            for index, request in enumerate(requests)
        }
        # A map attribute must exist before its entries can be set.
        self._table.update_item(
            Key=self._key(thread_id, run_id),
            UpdateExpression="SET approvals = if_not_exists(approvals, :empty)",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues={":empty": {}},
        )
        entries = ", ".join(
            f"approvals.#c{index} = if_not_exists(approvals.#c{index}, :c{index})"
            for index in range(len(requests))
        )
        item = updated_if_held(
            self._table,
            Key=self._key(thread_id, run_id),
            UpdateExpression=f"SET #status = :waiting, approval_token = :token, {entries}",
            ConditionExpression="attribute_exists(PK) AND attribute_not_exists(finished_at)",
            ExpressionAttributeNames={"#status": "status", **names},
            ExpressionAttributeValues={
                ":waiting": RunStatus.REQUIRES_APPROVAL.value,
                ":token": task_token,
                **values,
            },
        )
        return None if item is None else RunRecord.model_validate(item)

    def decide(
        self, thread_id: str, run_id: str, decisions: list[ApprovalDecision]
    ) -> RunRecord | None:
        """Record the decisions, all or none: None unless the run waits and every call named
        waits for its decision."""
        now = clock.iso(self._now())
        names: dict[str, str] = {"#status": "status"}
        values: dict[str, Any] = {":waiting": RunStatus.REQUIRES_APPROVAL.value}
        sets, conditions = [], ["#status = :waiting"]
        for index, decision in enumerate(decisions):
            names[f"#c{index}"] = decision.call_id
            values[f":d{index}"] = "approved" if decision.approve else "denied"
            values[f":r{index}"] = decision.reason or ""
            entry = f"approvals.#c{index}"
            sets += [f"{entry}.decision = :d{index}", f"{entry}.reason = :r{index}"]
            sets.append(f"{entry}.decided_at = :now")
            conditions.append(
                f"attribute_exists({entry}) AND attribute_not_exists({entry}.decision)"
            )
        item = updated_if_held(
            self._table,
            Key=self._key(thread_id, run_id),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={**values, ":now": now},
        )
        return None if item is None else RunRecord.model_validate(item)

    def close(self, thread_id: str, run_id: str) -> None:
        """The wait is over: the run goes on (unless it finished meanwhile)."""
        with contextlib.suppress(ClientError):
            self._table.update_item(
                Key=self._key(thread_id, run_id),
                UpdateExpression="SET #status = :going REMOVE approval_token",
                ConditionExpression="#status = :waiting AND attribute_not_exists(finished_at)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":going": RunStatus.IN_PROGRESS.value,
                    ":waiting": RunStatus.REQUIRES_APPROVAL.value,
                },
            )


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
        """AwaitApproval: ask for the calls' decisions and park the token; a retry that finds
        every call decided wakes the run at once."""
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
        lease = timedelta(seconds=self._timeout) + run_lock_lease(self._run_timeout)
        self._lock.extend(state.user_id, state.thread_id, state.run_id, lease=lease)
        record = self._store.open(state.thread_id, state.run_id, requests, task_token)
        if record is not None and _all_decided(record.approvals):
            self._wake(task_token)

    def decide(
        self, user_id: str, thread_id: str, run_id: str, decisions: list[ApprovalDecision]
    ) -> RunRecord:
        """The owner's answer (POST .../approvals); the run as it is after it."""
        self._threads.get(user_id, thread_id)  # another user's thread is not found
        run = self._runs.get(thread_id, run_id)
        self._check(run, decisions)
        recorded = self._store.decide(thread_id, run_id, decisions)
        if recorded is None:  # another answer got there first
            self._check(self._runs.get(thread_id, run_id), decisions)
            raise ConflictError("not_awaiting_approval", "the run is no longer waiting")
        if _all_decided(recorded.approvals) and recorded.approval_token:
            self._wake(recorded.approval_token)
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
            raise ConflictError("already_decided", f"already decided: {', '.join(decided)}")
        if run.status is not RunStatus.REQUIRES_APPROVAL:
            raise ConflictError(
                "not_awaiting_approval", f"the run is {run.status.value}, not requires_approval"
            )

    def stop_waiting(self, run: RunRecord) -> None:
        """Wake a waiting run that was interrupted or cancelled: it finishes at once."""
        if run.status is RunStatus.REQUIRES_APPROVAL and run.approval_token:
            self._wake(run.approval_token)

    def _wake(self, task_token: str) -> None:
        """Resume the run early; best effort (its wait ends at the timeout anyway)."""
        try:
            self._sfn().send_task_success(taskToken=task_token, output="{}")
        except (ClientError, BotoCoreError) as error:
            logger.warning("approval wake-up not sent", extra={"error": type(error).__name__})

    def decisions(self, state: RunState, calls: list[ToolCall]) -> Mapping[str, ApprovalRequest]:
        """After the wait: each call's request with its decision; the run goes on."""
        record = self._runs.get(state.thread_id, state.run_id)
        self._store.close(state.thread_id, state.run_id)
        return {call.id: record.approvals[call.id] for call in calls if call.id in record.approvals}


def _all_decided(approvals: Mapping[str, ApprovalRequest]) -> bool:
    return bool(approvals) and all(request.decision for request in approvals.values())
