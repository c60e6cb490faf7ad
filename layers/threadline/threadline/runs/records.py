"""Run records: one per run, under its thread, from request to outcome."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from threadline import clock
from threadline.callbacks.state import CallbackState
from threadline.errors import NotFoundError, short_reason
from threadline.files.generated import StoredFile
from threadline.models import RunStatus, ToolCall, Usage
from threadline.runs.state import TimelineEntry
from threadline.store import table
from threadline.store.dynamo import (
    condition_held,
    delete_by_prefix,
    items_with_prefix,
    query_page,
    to_item,
    updated_if_held,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_dynamodb.type_defs import QueryInputTableQueryTypeDef

RUN_RETENTION = timedelta(days=90)
# What a run item keeps of what the model produced, in UTF-8 bytes (an item holds 400 KB, and
# its message up to 128 KB): the answer's first ANSWER_LIMIT_BYTES, and the arguments of the
# tool calls a round waits on, all of them or the run fails (a tool cannot run on a part).
ANSWER_LIMIT_BYTES = 96_000
TOOL_CALLS_LIMIT_BYTES = 64_000
# The records of the calls its rounds made, in the JSON bytes of the records kept: every round
# adds to them (up to MaxToolRounds, 100 at most, of any number of calls), so past this the
# rest are counted, not kept.
TOOL_CALL_RECORDS_LIMIT_BYTES = 64_000


ApprovalOutcome = Literal["approved", "denied", "timed_out"]


class ToolCallRecord(BaseModel):
    call_id: str
    name: str
    is_error: bool
    duration_ms: float
    summary: dict[str, Any] = Field(default_factory=dict)
    # For a tool that needs approval: what the person decided (timed_out: no one answered).
    approval: ApprovalOutcome | None = None


class ApprovalRequest(BaseModel):
    """A call waiting for a person (see runs.approvals), and what they decided."""

    call_id: str
    tool: str
    arguments: str = Field(description="The model's JSON arguments, as it sent them.")
    requested_at: datetime
    decision: Literal["approved", "denied"] | None = None
    reason: str | None = None
    decided_at: datetime | None = None

    @property
    def approved(self) -> bool:
        return self.decision == "approved"

    @property
    def outcome(self) -> ApprovalOutcome:
        return self.decision or "timed_out"


class PendingToolCalls(BaseModel):
    """The calls a remote run (`remote_run_id`) waits on, as the check that saw it asking
    recorded them: the state machine passes only their ids."""

    remote_run_id: str
    calls: list[ToolCall]


def records_that_fit(
    kept: list[ToolCallRecord], records: list[ToolCallRecord]
) -> list[ToolCallRecord]:
    """The first of `records` that fit beside those `kept` within TOOL_CALL_RECORDS_LIMIT_BYTES."""
    size = sum(len(record.model_dump_json().encode()) for record in kept)
    fitting: list[ToolCallRecord] = []
    for record in records:
        size += len(record.model_dump_json().encode())
        if size > TOOL_CALL_RECORDS_LIMIT_BYTES:
            break
        fitting.append(record)
    return fitting


def utf8_prefix(text: str, limit_bytes: int) -> str:
    """The longest start of `text` whose UTF-8 form fits in `limit_bytes` (whole characters)."""
    return text.encode()[:limit_bytes].decode("utf-8", errors="ignore")


class RunRecord(BaseModel):
    run_id: str
    thread_id: str
    user_id: str
    assistant: str
    message: str | None = None  # what the user asked; the thread's history lists it
    status: RunStatus = RunStatus.QUEUED
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    execution_arn: str | None = None
    # Set for a run that waited in its thread's queue (threads.run_queue) until it started.
    queued_at: datetime | None = None
    # The run that interrupts this one (`if_busy=interrupt`): it is cancelled, then that starts.
    interrupted_by: str | None = None
    # When a caller claimed the start of this queued run (`RunLauncher`), and whether
    # FinishLostRuns started it again after a start that never came.
    launch_claimed_at: datetime | None = None
    relaunched: bool = False
    remote_run_id: str | None = None
    # Every remote object the run made that outlives it on its own (Responses: each response
    # of its chain), so deleting the thread deletes them too.
    remote_object_ids: list[str] = Field(default_factory=list)
    output_text: str | None = None
    output_truncated: bool = False  # the answer was longer than ANSWER_LIMIT_BYTES
    # Until FinishRun: the answer the remote run ended with, and the tool calls it waits on.
    answer: str | None = None
    pending_tool_calls: PendingToolCalls | None = None
    usage: Usage = Field(default_factory=Usage)
    tool_rounds: int = 0
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    tool_calls_omitted: int = 0  # calls made once the records kept were full
    duration_seconds: float | None = None
    reason: str | None = None
    generated_files: list[StoredFile] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    callback: CallbackState | None = None  # the run's callback URL, and its delivery
    # Tool calls that waited for a person, by call id; those the current (or last) wait is
    # for; and the waiting task's token.
    approvals: dict[str, ApprovalRequest] = Field(default_factory=dict)
    awaiting_calls: list[str] = Field(default_factory=list)
    approval_token: str | None = None
    # Someone subscribed to the run's updates (threadline.streams): its changes are streamed.
    watched: bool = False

    @property
    def pending_approvals(self) -> list[ApprovalRequest]:
        """The calls the run waits for a decision on (none unless it is waiting)."""
        if self.status is not RunStatus.REQUIRES_APPROVAL:
            return []
        waiting = [self.approvals.get(call_id) for call_id in self.awaiting_calls]
        return [request for request in waiting if request and request.decision is None]

    @property
    def awaiting_decided(self) -> bool:
        """Every call of the current wait is decided."""
        return bool(self.awaiting_calls) and all(
            call_id in self.approvals and self.approvals[call_id].decision
            for call_id in self.awaiting_calls
        )


class Message(BaseModel):
    id: str
    role: str
    text: str


class MessagePage(BaseModel):
    messages: list[Message]
    next_run_id: str | None = None  # where the next page starts (exclusive)


def history_of(records: list[RunRecord]) -> list[Message]:
    """What the thread's runs said, in the records' order: each run's message while it is
    going or once it completed, and the answer of a completed run. A run that ended otherwise
    is not part of the thread's history (the next run continues from the last completed)."""
    messages: list[Message] = []
    for record in records:
        completed = record.status is RunStatus.COMPLETED
        if record.message is None or (record.status.is_terminal and not completed):
            continue
        question = Message(id=f"{record.run_id}-user", role="user", text=record.message)
        answer = Message(
            id=f"{record.run_id}-assistant", role="assistant", text=record.output_text or ""
        )
        messages.extend([question, answer] if completed else [question])
    return messages


class RunOutcome(BaseModel):
    status: RunStatus
    finished_at: datetime
    duration_seconds: float
    usage: Usage
    output_text: str | None = None
    output_truncated: bool = False
    reason: str | None = None
    generated_files: list[StoredFile] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)


class RunStore:
    def __init__(self, table: Table, *, now: Callable[[], datetime] = clock.utc_now) -> None:
        self._table = table
        self._now = now

    def _key(self, thread_id: str, run_id: str) -> dict[str, str]:
        return {"PK": table.thread_key(thread_id), "SK": table.run_sort_key(run_id)}

    def _item(self, record: RunRecord) -> dict[str, Any]:
        return {
            **to_item(record.model_dump(mode="json", exclude_none=True)),
            **self._key(record.thread_id, record.run_id),
            "created_at": clock.iso(record.created_at),
            "expires_at": int((record.created_at + RUN_RETENTION).timestamp()),
        }

    def new_item(self, record: RunRecord) -> dict[str, Any]:
        """The put of a new run, refused if it exists: alone or in a transaction."""
        return {
            "TableName": self._table.name,
            "Item": self._item(record),
            "ConditionExpression": "attribute_not_exists(PK)",
        }

    def put_new(self, record: RunRecord, *, with_lock: dict[str, Any] | None = None) -> bool:
        """Write a new run; with a lock update, both or neither. False if it already exists."""
        put = self.new_item(record)
        client = self._table.meta.client
        if with_lock is None:
            return condition_held(client.put_item, **put)
        return condition_held(
            client.transact_write_items, TransactItems=[{"Update": with_lock}, {"Put": put}]
        )

    def get(self, thread_id: str, run_id: str) -> RunRecord:
        item = self._table.get_item(Key=self._key(thread_id, run_id), ConsistentRead=True).get(
            "Item"
        )
        if not item:
            raise NotFoundError(f"run {run_id} not found")
        return RunRecord.model_validate(item)

    def messages(
        self, thread_id: str, *, runs: int, after_run_id: str | None, newest_first: bool
    ) -> MessagePage:
        """The thread's history, `runs` runs at a time (each gives a question and its answer)."""
        query: QueryInputTableQueryTypeDef = {
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": table.thread_key(thread_id),
                ":prefix": table.run_sort_key(""),
            },
            "ScanIndexForward": not newest_first,
            "Limit": runs,
            "ConsistentRead": True,
        }
        start_key = (
            {"PK": table.thread_key(thread_id), "SK": table.run_sort_key(after_run_id)}
            if after_run_id
            else None
        )
        items, next_key = query_page(self._table, query, start_key)
        records = [RunRecord.model_validate(item) for item in items]
        # Newest first: each run's answer comes before its question.
        return MessagePage(
            messages=history_of(records[::-1])[::-1] if newest_first else history_of(records),
            next_run_id=str(next_key["SK"]).removeprefix("RUN#") if next_key else None,
        )

    def record_callback(self, thread_id: str, run_id: str, state: CallbackState) -> bool:
        """Keep how the run's callback delivery went; False (nothing written) once it was
        delivered (a repeated attempt cannot undo that)."""
        return condition_held(
            self._table.update_item,
            Key=self._key(thread_id, run_id),
            UpdateExpression="SET callback = :state",
            ConditionExpression="attribute_exists(callback) AND "
            "attribute_not_exists(callback.delivered_at)",
            ExpressionAttributeValues={
                ":state": to_item(state.model_dump(mode="json", exclude_none=True))
            },
        )

    def set_execution(self, thread_id: str, run_id: str, execution_arn: str) -> None:
        self._table.update_item(
            Key=self._key(thread_id, run_id),
            UpdateExpression="SET execution_arn = :execution",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues={":execution": execution_arn},
        )

    def mark_started(self, thread_id: str, run_id: str, *, remote_run_id: str) -> RunRecord:
        """The run as started (refused once it has finished)."""
        item = self._table.update_item(
            Key=self._key(thread_id, run_id),
            UpdateExpression=(
                "SET #status = :status, remote_run_id = :remote, started_at = :at, "
                "remote_object_ids = list_append(if_not_exists(remote_object_ids, :empty), :ids)"
            ),
            ConditionExpression="attribute_exists(PK) AND attribute_not_exists(finished_at)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":status": RunStatus.IN_PROGRESS.value,
                ":remote": remote_run_id,
                ":at": clock.iso(self._now()),
                ":ids": [remote_run_id],
                ":empty": [],
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return RunRecord.model_validate(item)

    def claim_launch(self, thread_id: str, run_id: str, *, relaunch: bool = False) -> bool:
        """Claim the start of a queued run that has not started: once, and once more to
        start it again after a start that never came (`relaunch`); False if claimed."""
        claimed = (
            "(attribute_not_exists(relaunched) OR relaunched = :no)"
            if relaunch
            else "attribute_not_exists(launch_claimed_at)"
        )
        return condition_held(
            self._table.update_item,
            Key=self._key(thread_id, run_id),
            UpdateExpression="SET launch_claimed_at = :now"
            + (", relaunched = :yes" if relaunch else ""),
            ConditionExpression=(
                f"attribute_exists(PK) AND attribute_not_exists(finished_at) AND "
                f"attribute_not_exists(started_at) AND {claimed}"
            ),
            ExpressionAttributeValues={
                ":now": clock.iso(self._now()),
                **({":yes": True, ":no": False} if relaunch else {}),
            },
        )

    def watch(self, thread_id: str, run_id: str) -> RunRecord | None:
        """Mark the run watched; the run as marked, None if it was watched already (it is
        not written again: the change would stream nothing)."""
        item = updated_if_held(
            self._table,
            Key=self._key(thread_id, run_id),
            UpdateExpression="SET watched = :yes",
            ConditionExpression=(
                "attribute_exists(PK) AND (attribute_not_exists(watched) OR watched = :no)"
            ),
            ExpressionAttributeValues={":yes": True, ":no": False},
        )
        return None if item is None else RunRecord.model_validate(item)

    def request_interrupt(self, thread_id: str, run_id: str, *, by: str) -> RunRecord | None:
        """Mark a going run as interrupted by the run `by`; the run as marked, None if it has
        finished (or was interrupted before)."""
        item = updated_if_held(
            self._table,
            Key=self._key(thread_id, run_id),
            UpdateExpression="SET interrupted_by = :by",
            ConditionExpression=(
                "attribute_exists(PK) AND attribute_not_exists(finished_at) "
                "AND attribute_not_exists(interrupted_by)"
            ),
            ExpressionAttributeValues={":by": by},
        )
        return None if item is None else RunRecord.model_validate(item)

    def record_answer(self, thread_id: str, run_id: str, text: str) -> None:
        """Keep the answer the remote run ended with until FinishRun records it (its first
        ANSWER_LIMIT_BYTES); nothing once the run has finished."""
        kept = utf8_prefix(text, ANSWER_LIMIT_BYTES)
        condition_held(
            self._table.update_item,
            Key=self._key(thread_id, run_id),
            UpdateExpression="SET answer = :answer, output_truncated = :cut",
            ConditionExpression="attribute_exists(PK) AND attribute_not_exists(finished_at)",
            ExpressionAttributeValues={":answer": kept, ":cut": len(kept) < len(text)},
        )

    def record_tool_calls(self, thread_id: str, run_id: str, pending: PendingToolCalls) -> None:
        """Keep the calls the remote run waits on for the round that answers them."""
        condition_held(
            self._table.update_item,
            Key=self._key(thread_id, run_id),
            UpdateExpression="SET pending_tool_calls = :pending",
            ConditionExpression="attribute_exists(PK) AND attribute_not_exists(finished_at)",
            ExpressionAttributeValues={":pending": to_item(pending.model_dump(mode="json"))},
        )

    def add_tool_round(
        self,
        thread_id: str,
        run_id: str,
        calls: list[ToolCallRecord],
        remote_run_id: str,
        *,
        omitted: int = 0,
    ) -> RunRecord:
        """The run with its tool round recorded (the calls it answered no longer pending):
        the records of `calls`, and how many more calls it made than they record."""
        item = self._table.update_item(
            Key=self._key(thread_id, run_id),
            UpdateExpression=(
                "SET tool_calls = list_append(if_not_exists(tool_calls, :empty), :calls), "
                "tool_calls_omitted = if_not_exists(tool_calls_omitted, :zero) + :omitted, "
                "tool_rounds = if_not_exists(tool_rounds, :zero) + :one, "
                "remote_run_id = :remote, "
                "remote_object_ids = list_append(if_not_exists(remote_object_ids, :empty), :ids) "
                "REMOVE pending_tool_calls"
            ),
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues={
                ":calls": to_item([call.model_dump(mode="json") for call in calls]),
                ":omitted": omitted,
                ":empty": [],
                ":zero": 0,
                ":one": 1,
                ":remote": remote_run_id,
                ":ids": [remote_run_id],
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return RunRecord.model_validate(item)

    def add_generated_file(self, thread_id: str, run_id: str, file: StoredFile) -> None:
        """A file a tool saved for the user; saved again (a retried call), it is listed once."""
        run = self.get(thread_id, run_id)
        if any(listed.s3_key == file.s3_key for listed in run.generated_files):
            return
        self._table.update_item(
            Key=self._key(thread_id, run_id),
            UpdateExpression=(
                "SET generated_files = list_append(if_not_exists(generated_files, :empty), :file)"
            ),
            ConditionExpression="attribute_exists(PK) AND attribute_not_exists(finished_at)",
            ExpressionAttributeValues={
                ":file": [to_item(file.model_dump(mode="json"))],
                ":empty": [],
            },
        )

    def finish(self, thread_id: str, run_id: str, outcome: RunOutcome) -> bool:
        """Record the outcome once; False if the run had already finished (a retry)."""
        update = self.finish_update(thread_id, run_id, outcome)
        return condition_held(self._table.meta.client.update_item, **update)

    def finish_update(self, thread_id: str, run_id: str, outcome: RunOutcome) -> dict[str, Any]:
        """The update that records the outcome, refused once the run has finished: for a
        transaction that must happen exactly once with it (see `UsageLedger.count_finished_run`)."""
        fields = to_item(outcome.model_dump(mode="json", exclude_none=True))
        if outcome.reason is not None:
            fields["reason"] = short_reason(outcome.reason)
        fields["finished_at"] = clock.iso(outcome.finished_at)
        sets = ", ".join(f"#{name} = :{name}" for name in fields)
        return {
            "TableName": self._table.name,
            "Key": self._key(thread_id, run_id),
            # What the steps kept for FinishRun goes: the answer is now the output.
            "UpdateExpression": f"SET {sets} REMOVE answer, pending_tool_calls",
            "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(finished_at)",
            "ExpressionAttributeNames": {f"#{name}": name for name in fields},
            "ExpressionAttributeValues": {f":{name}": value for name, value in fields.items()},
        }

    def remote_objects(self, thread_id: str) -> list[str]:
        """The ids of every remote object the thread's runs made (see `remote_object_ids`)."""
        items = items_with_prefix(
            self._table,
            table.thread_key(thread_id),
            table.run_sort_key(""),
            projection="remote_object_ids",
        )
        return [str(remote_id) for item in items for remote_id in item.get("remote_object_ids", [])]

    def delete_all(self, thread_id: str) -> int:
        """Delete every run record of a thread (when the thread goes); return how many."""
        return delete_by_prefix(self._table, table.thread_key(thread_id), table.run_sort_key(""))
