"""In-memory stand-ins for the run logic's dependencies: the OpenAI port and the stores.

Each fake implements only what `RunSteps`, `WebhookWaits` and `RunStarter` call, with the
contract of the real class it names (conditional writes refused the way DynamoDB refuses
them, remote objects behaving as both OpenAI backends report them). No moto, no HTTP.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel

from threadline.assistant_config import AssistantConfig
from threadline.backends.base import (
    FileIndex,
    GeneratedFile,
    RunContext,
    RunHandle,
    RunOwner,
    RunView,
)
from threadline.errors import (
    BackendRequestError,
    NotFoundError,
    ThreadBusyError,
    TransientBackendError,
    short_reason,
)
from threadline.files.records import FileRecord
from threadline.models import RunStatus, ToolCall, ToolOutput, Usage
from threadline.runs.lost import LostRuns
from threadline.runs.records import (
    ANSWER_LIMIT_BYTES,
    PendingToolCalls,
    RunOutcome,
    RunRecord,
    ToolCallRecord,
    utf8_prefix,
)
from threadline.runs.starting import RunLauncher
from threadline.runs.state import CaughtError, RunState, StartRunInput
from threadline.runs.steps import RunSteps
from threadline.runs.tiers import RunHandOff
from threadline.runs.webhook_waits import ClaimedWait, WaitItem
from threadline.settings import Settings
from threadline.threads.records import Thread
from threadline.tools import ToolRegistry, tool
from threadline.usage import DailyUsage, UsageLedger, day_of

Api = Literal["responses", "assistants"]


def condition_failed(operation: str = "UpdateItem") -> ClientError:
    """The error DynamoDB raises for a refused condition (what the real stores let through
    where they do not turn it into False)."""
    return ClientError(
        {"Error": {"Code": "ConditionalCheckFailedException", "Message": "refused"}}, operation
    )


class FakeClock:
    """`now` for every fake and for RunSteps; moves only when a test moves it."""

    def __init__(self, start: datetime = datetime(2030, 5, 6, 12, 0, tzinfo=UTC)) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


# -- the OpenAI port --------------------------------------------------------------------------


@dataclass
class Reply:
    """What the model does in one remote response (Responses), or in one stretch of an
    Assistants run until it asks for tools or ends: it is seen going for `polls` looks, then
    ends with `status` (completed with `tool_calls`: it asks for tools)."""

    status: RunStatus = RunStatus.COMPLETED
    output_text: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    polls: int = 0
    poll_after_seconds: float | None = None
    generated_files: list[GeneratedFile] = field(default_factory=list)

    @classmethod
    def say(cls, text: str, *, tokens: int = 10, polls: int = 0) -> Reply:
        return cls(output_text=text, usage=tokens_of(tokens), polls=polls)

    @classmethod
    def call(cls, *calls: tuple[str, str], tokens: int = 10, polls: int = 0) -> Reply:
        """Ask for tools: each call is (name, JSON arguments)."""
        return cls(
            tool_calls=[
                ToolCall(id=f"call_{index}_{name}", name=name, arguments=arguments)
                for index, (name, arguments) in enumerate(calls)
            ],
            usage=tokens_of(tokens),
            polls=polls,
        )

    @classmethod
    def end(cls, status: RunStatus, error: str, *, tokens: int = 10) -> Reply:
        return cls(status=status, error=error, usage=tokens_of(tokens))

    @classmethod
    def forever(cls, *, tokens: int = 10) -> Reply:
        """A model that never finishes (until cancelled; `tokens` is what it spent then)."""
        return cls(usage=tokens_of(tokens), polls=10**9)


def tokens_of(total: int) -> Usage:
    """A usage of `total` tokens, split input-heavy the way a real answer is."""
    return Usage(input_tokens=total - total // 4, output_tokens=total // 4, total_tokens=total)


@dataclass
class Remote:
    """One remote object: a response (Responses) or a run (Assistants)."""

    remote_id: str
    thread_remote_id: str
    owner: RunOwner
    reply: Reply
    # Assistants: the usage of the run's stretches that asked for tools (cumulative usage).
    earlier_usage: Usage = field(default_factory=Usage)
    polls_left: int = 0
    status: str = "in_progress"  # OpenAI's status word ("cancelling" for Assistants)
    previous_id: str | None = None
    outputs: list[ToolOutput] = field(default_factory=list)


class FakeBackend:
    """The `AssistantBackend` port in memory, as either real adapter behaves:

    - "responses" (`ResponsesBackend`): every start and tool round is a new response; one that
      asks for tools is completed, so it is settled, and its usage rides on in
      `RunHandle.finished_usage`; a view's usage is the carried usage plus the response's;
      cancelling one that ended returns it unchanged; `settled_usage` finds a settled
      response of ours by id; `settled_runs` is empty (webhooks count instead).
    - "assistants" (`AssistantsBackend`): one run for the whole Threadline run (a retried start
      finds it again, and stops active runs of other Threadline runs); usage is cumulative and
      reported once the run is terminal, which is also when it is settled; a cancel makes an
      active run "cancelling" (seen going, not settled) and it is cancelled on the next look;
      cancelling one that ended returns it as it is; `settled_runs` lists the thread's recent
      terminal runs of ours.

    Replies come from `script`, in order. `fail_next` makes a method raise before it has any
    effect (a refused or failed request).
    """

    RECENT_RUNS = 5  # AssistantsBackend.settled_runs looks at the thread's newest runs only

    def __init__(self, api: Api = "responses") -> None:
        self.name = api
        self.script: list[Reply] = []
        self.remotes: dict[str, Remote] = {}
        self.failures: dict[str, list[Exception]] = {}
        self.calls: list[str] = []  # every port call, by method name
        self.deleted: list[str] = []
        self.file_content: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._thread_ids = itertools.count(1)

    def fail_next(self, method: str, *errors: Exception) -> None:
        self.failures.setdefault(method, []).extend(errors)

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        pending = self.failures.get(method)
        if pending:
            raise pending.pop(0)

    def _remote(self, remote_id: str) -> Remote:
        if remote_id not in self.remotes:
            raise NotFoundError(f"no remote object {remote_id}")
        return self.remotes[remote_id]

    def _new(self, thread_remote_id: str, owner: RunOwner, previous_id: str | None) -> Remote:
        if not self.script:
            raise AssertionError("the model was asked for a reply the test did not script")
        reply = self.script.pop(0)
        prefix = "resp" if self.name == "responses" else "run"
        remote = Remote(
            remote_id=f"{prefix}_{next(self._ids)}",
            thread_remote_id=thread_remote_id,
            owner=owner,
            reply=reply,
            polls_left=reply.polls,
            previous_id=previous_id,
        )
        self.remotes[remote.remote_id] = remote
        return remote

    def _advance(self, remote: Remote) -> None:
        """What time does to an object between two looks at it (a retrieve, a cancel): the
        model goes on or ends; a cancelling run is cancelled."""
        if remote.status == "cancelling":
            remote.status = "cancelled"
        elif remote.status in ("queued", "in_progress"):
            if remote.polls_left > 0:
                remote.polls_left -= 1
            else:
                remote.status = remote.reply.status.value

    def _run_status(self, remote: Remote) -> RunStatus:
        if remote.status == "cancelling":
            return RunStatus.IN_PROGRESS
        status = RunStatus(remote.status)
        if status is RunStatus.COMPLETED and remote.reply.tool_calls:
            return RunStatus.REQUIRES_ACTION
        return status

    def _settled(self, remote: Remote) -> bool:
        if self.name == "responses":
            return remote.status in ("completed", "failed", "cancelled", "incomplete")
        return self._run_status(remote).is_terminal

    def _own_usage(self, remote: Remote) -> Usage:
        """The usage the object itself reports (none while it is going)."""
        if self.name == "responses":
            return remote.reply.usage if self._settled(remote) else Usage()
        if not self._settled(remote):
            return Usage()
        return remote.earlier_usage + remote.reply.usage

    def _view(self, remote: Remote, handle: RunHandle, *, polled: bool) -> RunView:
        status = self._run_status(remote)
        terminal = status.is_terminal
        carried = handle.carried_usage if self.name == "responses" else Usage()
        return RunView(
            status=status,
            tool_calls=list(remote.reply.tool_calls) if status is RunStatus.REQUIRES_ACTION else [],
            output_text=(remote.reply.output_text or None)
            if terminal and (self.name == "responses" or status is RunStatus.COMPLETED)
            else None,
            usage=carried + self._own_usage(remote),
            error=remote.reply.error if terminal else None,
            poll_after_seconds=remote.reply.poll_after_seconds if polled else None,
            generated_files=list(remote.reply.generated_files) if terminal else [],
            settled=self._settled(remote),
        )

    # -- threads and runs ------------------------------------------------------------------

    def create_thread(self, thread_id: str) -> str:
        self._enter("create_thread")
        return thread_id if self.name == "responses" else f"thread_{next(self._thread_ids)}"

    def delete_thread(self, remote_id: str) -> None:
        self._enter("delete_thread")

    def start_run(
        self,
        thread: Thread,
        message: str,
        assistant: AssistantConfig,
        tools: ToolRegistry,
        context: RunContext,
        *,
        owner: RunOwner,
    ) -> RunHandle:
        self._enter("start_run")
        if self.name == "assistants":
            found = self._settle_active_runs(thread.remote_id, owner.run_id)
            if found is not None:
                return RunHandle(thread_remote_id=thread.remote_id, run_remote_id=found.remote_id)
        remote = self._new(thread.remote_id, owner, previous_id=thread.head_response_id)
        return RunHandle(thread_remote_id=thread.remote_id, run_remote_id=remote.remote_id)

    def _settle_active_runs(self, thread_remote_id: str, run_id: str) -> Remote | None:
        ours = None
        for remote in self._recent(thread_remote_id):
            if remote.owner.run_id == run_id:
                ours = ours or remote
            elif not self._run_status(remote).is_terminal and remote.status != "cancelling":
                remote.status = "cancelling"
        return ours

    def _recent(self, thread_remote_id: str) -> list[Remote]:
        mine = [r for r in self.remotes.values() if r.thread_remote_id == thread_remote_id]
        recent = mine[::-1][: self.RECENT_RUNS]
        for remote in recent:  # a cancel takes effect whoever looks; a model's pace does not
            if remote.status == "cancelling":
                remote.status = "cancelled"
        return recent

    def get_run(self, handle: RunHandle) -> RunView:
        self._enter("get_run")
        remote = self._remote(handle.run_remote_id)
        self._advance(remote)
        return self._view(remote, handle, polled=True)

    def submit_tool_outputs(
        self,
        handle: RunHandle,
        outputs: list[ToolOutput],
        assistant: AssistantConfig,
        tools: ToolRegistry,
        context: RunContext,
        *,
        owner: RunOwner,
        answered_usage: Usage,
    ) -> RunHandle:
        self._enter("submit_tool_outputs")
        remote = self._remote(handle.run_remote_id)
        if self.name == "responses":
            # The next response continues from this one (a chain); this one's usage is final.
            answered = self._new(handle.thread_remote_id, owner, previous_id=remote.remote_id)
            answered.outputs = list(outputs)
            return RunHandle(
                thread_remote_id=handle.thread_remote_id,
                run_remote_id=answered.remote_id,
                finished_usage={**handle.finished_usage, remote.remote_id: answered_usage},
            )
        awaited = {call.id for call in remote.reply.tool_calls}
        if self._run_status(remote) is not RunStatus.REQUIRES_ACTION:
            # OpenAI refuses; the adapter returns the handle (a lost submission moved it on).
            return handle
        if not awaited <= {output.call_id for output in outputs}:
            raise BackendRequestError("submit tool outputs: not the awaited calls")
        if not self.script:
            raise AssertionError("the model was asked for a reply the test did not script")
        remote.earlier_usage += remote.reply.usage
        remote.outputs.extend(outputs)
        remote.reply = self.script.pop(0)
        remote.polls_left = remote.reply.polls
        remote.status = "queued"
        return handle  # the same run goes on

    def cancel_run(self, handle: RunHandle) -> RunView:
        self._enter("cancel_run")
        remote = self._remote(handle.run_remote_id)
        self._advance(remote)
        moving = remote.status in ("queued", "in_progress")
        if self.name == "responses":
            if moving:
                remote.status = "cancelled"
        elif moving or (remote.status == "completed" and remote.reply.tool_calls):
            remote.status = "cancelling"  # a run asking for tools can be cancelled too
        return self._view(remote, handle, polled=False)

    def settled_usage(self, remote_id: str) -> tuple[RunOwner, Usage] | None:
        self._enter("settled_usage")
        if self.name != "responses" or remote_id not in self.remotes:
            return None
        remote = self.remotes[remote_id]
        self._advance(remote)
        if not self._settled(remote):
            return None
        return remote.owner, remote.reply.usage

    def settled_runs(self, thread_remote_id: str) -> dict[str, Usage]:
        self._enter("settled_runs")
        if self.name == "responses":
            return {}
        return {
            remote.remote_id: self._own_usage(remote)
            for remote in self._recent(thread_remote_id)
            if self._settled(remote)
        }

    def delete_run_object(self, remote_id: str) -> None:
        self._enter("delete_run_object")
        if self.name == "responses":
            self.remotes.pop(remote_id, None)
            self.deleted.append(remote_id)

    # -- files: only what FinishRun's copy of generated files uses --------------------------

    def download_generated_file(self, file: GeneratedFile) -> bytes:
        self._enter("download_generated_file")
        return self.file_content[file.file_id]

    def delete_file(self, file_id: str) -> None:
        self._enter("delete_file")
        self.deleted.append(file_id)

    def upload_file(
        self, filename: str, content: bytes, *, upload_id: str, not_before: datetime
    ) -> str:
        raise NotImplementedError("not faked")

    def files_made_for(self, filename: str, *, upload_id: str, not_before: datetime) -> list[str]:
        raise NotImplementedError("not faked")

    def vector_store_made_for(self, thread: Thread) -> str | None:
        raise NotImplementedError("not faked")

    def thread_vector_store(self, thread: Thread, filename: str) -> str | None:
        raise NotImplementedError("not faked")

    def attach_file(self, thread: Thread, file_id: str, filename: str) -> FileIndex | None:
        raise NotImplementedError("not faked")

    def file_index(self, vector_store_id: str, file_id: str) -> FileIndex:
        raise NotImplementedError("not faked")

    def delete_vector_store(self, vector_store_id: str) -> None:
        raise NotImplementedError("not faked")


# -- the stores -------------------------------------------------------------------------------


@dataclass
class FakeUpdate:
    """A write a store hands to another's transaction (`acquire_update`, `finish_update`): the
    transaction checks every condition first, then applies all of them or none."""

    holds: Callable[[], bool]
    apply: Callable[[], None]


def as_update(update: dict[str, Any]) -> FakeUpdate:
    fake = update.get("fake")
    if not isinstance(fake, FakeUpdate):
        raise TypeError("a fake store's transaction takes the fakes' updates only")
    return fake


class FakeThreadStore:
    """`ThreadStore`'s reads over a dict of threads."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.threads: dict[tuple[str, str], Thread] = {}
        self._now = now

    def add(self, thread: Thread) -> Thread:
        self.threads[(thread.user_id, thread.thread_id)] = thread
        return thread

    def get(self, user_id: str, thread_id: str) -> Thread:
        """`ThreadStore.get`: NotFoundError if absent, someone else's, or being purged."""
        thread = self.threads.get((user_id, thread_id))
        if thread is None or thread.purging_since is not None:
            raise NotFoundError(f"thread {thread_id} not found")
        return thread.model_copy()

    def expired_locks(self, now: datetime, *, limit: int) -> list[tuple[str, str]]:
        """`ThreadStore.expired_locks`: locked threads whose lease ended, longest ago first."""
        locked = [t for t in self.threads.values() if t.active_run_id and t.lock_expires_at]
        expired = [t for t in locked if (t.lock_expires_at or 0) < now.timestamp()]
        expired.sort(key=lambda thread: thread.lock_expires_at or 0)
        return [(thread.user_id, thread.thread_id) for thread in expired[:limit]]


class FakeRunLock:
    """`RunLock` over a `FakeThreadStore`'s threads."""

    def __init__(self, threads: FakeThreadStore, now: Callable[[], datetime]) -> None:
        self.threads = threads.threads
        self._store = threads
        self._now = now

    def acquire_update(
        self, user_id: str, thread_id: str, run_id: str, lease: timedelta
    ) -> dict[str, Any]:
        """`RunLock.acquire_update`: taken if free or already this run's (an expired lease
        too is left to FinishLostRuns); never on a missing or purging thread."""
        now = self._now()
        key = (user_id, thread_id)

        def holds() -> bool:
            thread = self.threads.get(key)
            return (
                thread is not None
                and thread.purging_since is None
                and thread.active_run_id in (None, run_id)
            )

        def apply() -> None:
            self.threads[key] = self.threads[key].model_copy(
                update={
                    "active_run_id": run_id,
                    "lock_expires_at": int((now + lease).timestamp()),
                    "last_activity": now,
                }
            )

        return {"fake": FakeUpdate(holds, apply)}

    def acquire(self, user_id: str, thread_id: str, run_id: str, *, lease: timedelta) -> None:
        update = as_update(self.acquire_update(user_id, thread_id, run_id, lease))
        if not update.holds():
            self.raise_conflict(user_id, thread_id)
        update.apply()

    def raise_conflict(self, user_id: str, thread_id: str) -> None:
        thread = self._store.get(user_id, thread_id)
        raise ThreadBusyError(thread_id, thread.active_run_id)

    def release(
        self, user_id: str, thread_id: str, run_id: str, *, head_response_id: str | None = None
    ) -> bool:
        """`RunLock.release`: only while this run holds it (False otherwise);
        a given head moves the thread's head."""
        thread = self.threads.get((user_id, thread_id))
        if thread is None or thread.active_run_id != run_id:
            return False
        update: dict[str, Any] = {
            "active_run_id": None,
            "lock_expires_at": None,
            "last_activity": self._now(),
        }
        if head_response_id:
            update["head_response_id"] = head_response_id
        self.threads[(user_id, thread_id)] = thread.model_copy(update=update)
        return True


class FakeRunStore:
    """`RunStore`'s writes of a run's life over a dict of records."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.records: dict[tuple[str, str], RunRecord] = {}
        self._now = now

    def get(self, thread_id: str, run_id: str) -> RunRecord:
        record = self.records.get((thread_id, run_id))
        if record is None:
            raise NotFoundError(f"run {run_id} not found")
        return record

    def put_new(self, record: RunRecord, *, with_lock: dict[str, Any] | None = None) -> bool:
        """`RunStore.put_new`: False if the run exists; with a lock update, both or neither."""
        key = (record.thread_id, record.run_id)
        lock = as_update(with_lock) if with_lock is not None else None
        if key in self.records or (lock is not None and not lock.holds()):
            return False
        if lock is not None:
            lock.apply()
        self.records[key] = record
        return True

    def set_execution(self, thread_id: str, run_id: str, execution_arn: str) -> None:
        self._update(thread_id, run_id, execution_arn=execution_arn)

    def mark_started(self, thread_id: str, run_id: str, *, remote_run_id: str) -> RunRecord:
        """`RunStore.mark_started`: refused (ClientError) once the run has finished."""
        record = self.get(thread_id, run_id)
        if record.finished_at is not None:
            raise condition_failed()
        self._update(
            thread_id,
            run_id,
            status=RunStatus.IN_PROGRESS,
            remote_run_id=remote_run_id,
            started_at=self._now(),
            remote_object_ids=[*record.remote_object_ids, remote_run_id],
        )
        return self.get(thread_id, run_id)

    def record_answer(self, thread_id: str, run_id: str, text: str) -> None:
        record = self.get(thread_id, run_id)
        if record.finished_at is None:
            kept = utf8_prefix(text, ANSWER_LIMIT_BYTES)
            self._update(thread_id, run_id, answer=kept, output_truncated=kept != text)

    def record_tool_calls(self, thread_id: str, run_id: str, pending: PendingToolCalls) -> None:
        if self.get(thread_id, run_id).finished_at is None:
            self._update(thread_id, run_id, pending_tool_calls=pending)

    def add_tool_round(
        self,
        thread_id: str,
        run_id: str,
        calls: list[ToolCallRecord],
        remote_run_id: str,
        *,
        omitted: int = 0,
    ) -> RunRecord:
        record = self.get(thread_id, run_id)
        self._update(
            thread_id,
            run_id,
            tool_calls=[*record.tool_calls, *calls],
            tool_calls_omitted=record.tool_calls_omitted + omitted,
            tool_rounds=record.tool_rounds + 1,
            remote_run_id=remote_run_id,
            remote_object_ids=[*record.remote_object_ids, remote_run_id],
            pending_tool_calls=None,
        )
        return self.get(thread_id, run_id)

    def finish(self, thread_id: str, run_id: str, outcome: RunOutcome) -> bool:
        """`RunStore.finish`: the outcome, once; False on a retry."""
        update = as_update(self.finish_update(thread_id, run_id, outcome))
        if not update.holds():
            return False
        update.apply()
        return True

    def finish_update(self, thread_id: str, run_id: str, outcome: RunOutcome) -> dict[str, Any]:
        """`RunStore.finish_update`: holds until the run has finished."""

        def holds() -> bool:
            record = self.records.get((thread_id, run_id))
            return record is not None and record.finished_at is None

        def apply() -> None:
            fields = {name: value for name, value in outcome if value is not None}
            if outcome.reason is not None:
                fields["reason"] = short_reason(outcome.reason)
            self._update(thread_id, run_id, **fields, answer=None, pending_tool_calls=None)

        return {"fake": FakeUpdate(holds, apply)}

    def _update(self, thread_id: str, run_id: str, **fields: Any) -> None:
        record = self.get(thread_id, run_id)  # the real updates need the item: NotFound here
        self.records[(thread_id, run_id)] = record.model_copy(update=fields)


class FakeUsageLedger:
    """`UsageLedger`'s counters: tokens per user per UTC day, each remote object once.

    The budget rules are the real ones (`check_budget`, `summary` are UsageLedger's own,
    reading this ledger's `today` and `recent`).
    """

    check_budget = UsageLedger.check_budget
    summary = UsageLedger.summary

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.days: dict[tuple[str, str], DailyUsage] = {}
        self.counted: dict[tuple[str, str], Usage] = {}  # (thread, remote id) -> its tokens
        self._now = now

    def _add(self, user_id: str, at: datetime, **amounts: int) -> None:
        day = day_of(at)
        current = self.days.get((user_id, day), DailyUsage(day=day))
        self.days[(user_id, day)] = current.model_copy(
            update={name: getattr(current, name) + value for name, value in amounts.items()}
        )

    def count_finished_run(
        self,
        finishing: dict[str, Any],
        user_id: str,
        thread_id: str,
        settled: dict[str, Usage],
        at: datetime,
    ) -> bool:
        """`UsageLedger.count_finished_run`: the run's finish, one more run on the day and
        each settled object's tokens not counted yet, all at once; False (nothing) on a retry."""
        finish = as_update(finishing)
        if not finish.holds():
            return False
        finish.apply()
        self._add(user_id, at, runs=1)
        for remote_id, usage in settled.items():
            self.count_once(user_id, thread_id, remote_id, usage, at)
        return True

    def count_once(
        self, user_id: str, thread_id: str, remote_id: str, usage: Usage, at: datetime
    ) -> bool:
        """`UsageLedger.count_once`: False (and nothing added) if already counted."""
        if (thread_id, remote_id) in self.counted:
            return False
        self.counted[(thread_id, remote_id)] = usage
        self._add(
            user_id,
            at,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
        )
        return True

    def count_each(
        self, user_id: str, thread_id: str, usage_by_remote_id: dict[str, Usage], at: datetime
    ) -> None:
        for remote_id, usage in usage_by_remote_id.items():
            self.count_once(user_id, thread_id, remote_id, usage, at)

    def count_uncounted(
        self, user_id: str, thread_id: str, usage_by_remote_id: dict[str, Usage], at: datetime
    ) -> None:
        self.count_each(user_id, thread_id, usage_by_remote_id, at)

    def counted_objects(self, thread_id: str) -> list[str]:
        return [remote_id for (thread, remote_id) in self.counted if thread == thread_id]

    def today(self, user_id: str) -> DailyUsage:
        day = day_of(self._now())
        return self.days.get((user_id, day), DailyUsage(day=day))

    def recent(self, user_id: str, *, days: int) -> list[DailyUsage]:
        first = day_of(self._now() - timedelta(days=days - 1))
        last = day_of(self._now())
        found = [u for (user, day), u in self.days.items() if user == user_id]
        return sorted(
            (u for u in found if first <= u.day <= last), key=lambda u: u.day, reverse=True
        )


class FakeFileStore:
    """`FileStore.current`: the thread's uploads, oldest first (settled as they are given)."""

    def __init__(self) -> None:
        self.records: dict[str, list[FileRecord]] = {}

    def current(self, thread_id: str) -> list[FileRecord]:
        return list(self.records.get(thread_id, []))


@dataclass
class _Wait:
    run_id: str | None = None
    task_token: str | None = None
    run_state: str | None = None  # JSON, as the table keeps it
    event_type: str | None = None
    claimed: bool = False

    def seen(self) -> WaitItem:
        return WaitItem(
            run_id=self.run_id,
            event_type=self.event_type,
            has_token=self.task_token is not None,
            claimed=self.claimed,
        )


class FakeWebhookWaitStore:
    """`WebhookWaitStore`: one item per response; `claim` succeeds once both halves are
    there and nobody holds a claim; `release` only while the item keeps the claim's token;
    `let_go` tells whether the event had come."""

    def __init__(self) -> None:
        self.items: dict[str, _Wait] = {}

    def hold(self, response_id: str, run_id: str) -> None:
        self.items.setdefault(response_id, _Wait()).run_id = run_id

    def let_go(self, response_id: str) -> bool:
        item = self.items.get(response_id)
        if item is None or item.run_id is None:
            return False
        item.run_id = None
        return item.event_type is None

    def register_wait(self, response_id: str, task_token: str, state: RunState) -> WaitItem:
        item = self.items.setdefault(response_id, _Wait())
        item.task_token, item.run_state = task_token, state.model_dump_json()
        return item.seen()

    def record_event(self, response_id: str, event_type: str) -> WaitItem:
        item = self.items.setdefault(response_id, _Wait())
        item.event_type = event_type
        return item.seen()

    def claim(self, response_id: str) -> ClaimedWait | None:
        item = self.items.get(response_id)
        if item is None or item.claimed or item.task_token is None or item.event_type is None:
            return None
        item.claimed = True
        return ClaimedWait(
            task_token=item.task_token,
            state=RunState.model_validate_json(item.run_state or "{}"),
            event_type=item.event_type,
        )

    def release(self, response_id: str, task_token: str) -> None:
        item = self.items.get(response_id)
        if item is not None and item.task_token == task_token:
            item.claimed = False


class EmptyRunQueue:
    """`RunQueue` of threads nobody queues a run on (the tests of queueing run on moto:
    tests/integration/test_run_queue.py): ending a run's turn releases its lock."""

    def __init__(self, lock: FakeRunLock) -> None:
        self._lock = lock

    def end_turn(
        self, user_id: str, thread_id: str, run_id: str, *, head_response_id: str | None = None
    ) -> RunRecord | None:
        self._lock.release(user_id, thread_id, run_id, head_response_id=head_response_id)
        return None

    def position(self, record: RunRecord) -> int | None:
        return None


class FakeStepFunctions:
    """The two Step Functions calls the run logic makes; `fail_with` is the error code the
    next call gets (a ClientError, as boto3 raises)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []  # (task token, output JSON)
        self.started: list[dict[str, str]] = []
        self.fail_with: str | None = None

    def _maybe_fail(self, operation: str) -> None:
        if self.fail_with is not None:
            code, self.fail_with = self.fail_with, None
            raise ClientError({"Error": {"Code": code, "Message": code}}, operation)

    def send_task_success(self, *, taskToken: str, output: str) -> dict[str, Any]:
        self._maybe_fail("SendTaskSuccess")
        self.sent.append((taskToken, output))
        return {}

    class exceptions:  # boto3 names its error classes under `exceptions`
        class ExecutionAlreadyExists(ClientError):
            pass

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        """Standard executions are named once: the same name again is refused, as on AWS
        (unless the input is the same too, which then answers with the running execution)."""
        self._maybe_fail("StartExecution")
        arn = f"{stateMachineArn.replace(':stateMachine:', ':execution:')}:{name}"
        earlier = [started for started in self.started if started["name"] == name]
        if earlier and earlier[0]["input"] != input:
            error = {"Error": {"Code": "ExecutionAlreadyExists", "Message": name}}
            raise self.exceptions.ExecutionAlreadyExists(error, "StartExecution")
        if not earlier:
            self.started.append({"name": name, "input": input})
        return {"executionArn": arn}


# -- a world to run the steps in ----------------------------------------------------------------


class LookupArgs(BaseModel):
    key: str


@tool(description="Look a key up.")
def lookup(args: LookupArgs) -> dict[str, str]:
    return {"key": args.key, "value": args.key.upper()}


@tool(description="Always fails.")
def broken(args: LookupArgs) -> None:
    raise RuntimeError("the tool broke")


def fake_tools(assistant: AssistantConfig) -> ToolRegistry:
    """The tools the scripted model calls: `lookup` answers, `broken` raises."""
    return ToolRegistry([lookup, broken])


def no_approvals() -> Any:
    raise AssertionError("no fake tool needs approval: runs here never wait for a person")


def no_s3() -> Any:
    raise AssertionError("this run made no files: FinishRun must not build an S3 client")


USER = "user-1"
STANDARD_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:run"


@dataclass
class World:
    """RunSteps over the fakes, one thread of USER ready to run on."""

    api: Api = "responses"
    wait_mode: Literal["auto", "poll", "push"] = "poll"
    run_timeout_seconds: int = 300
    express_tier_seconds: int = 180
    clock: FakeClock = field(default_factory=FakeClock)

    def __post_init__(self) -> None:
        self.backend = FakeBackend(self.api)
        self.threads = FakeThreadStore(self.clock)
        self.lock = FakeRunLock(self.threads, self.clock)
        self.runs = FakeRunStore(self.clock)
        self.usage = FakeUsageLedger(self.clock)
        self.files = FakeFileStore()
        self.waits = FakeWebhookWaitStore()
        self.settings = Settings(
            table_name="threadline-test",
            bucket_name="threadline-test-bucket",
            openai_backend=self.api,
            run_wait_mode=self.wait_mode,
            run_timeout_seconds=self.run_timeout_seconds,
            poll_initial_seconds=2,
            poll_max_seconds=15,
            express_tier_seconds=self.express_tier_seconds,
        )
        self.stepfunctions = FakeStepFunctions()
        self.steps = RunSteps(
            settings=self.settings,
            backend=lambda: self.backend,
            tools_for=fake_tools,
            threads=lambda: self.threads,  # type: ignore[arg-type,return-value]
            lock=lambda: self.lock,  # type: ignore[arg-type,return-value]
            runs=lambda: self.runs,  # type: ignore[arg-type,return-value]
            usage=lambda: self.usage,  # type: ignore[arg-type,return-value]
            files=lambda: self.files,  # type: ignore[arg-type,return-value]
            s3=no_s3,
            waits=lambda: self.waits,  # type: ignore[arg-type,return-value]
            queue=lambda: EmptyRunQueue(self.lock),  # type: ignore[arg-type,return-value]
            launcher=lambda: RunLauncher(
                runs=self.runs,  # type: ignore[arg-type]
                stepfunctions=self.stepfunctions,  # type: ignore[arg-type]
                state_machine_arn=STANDARD_MACHINE,
                express_state_machine_arn=None,
            ),
            approvals=no_approvals,
            now=self.clock,
        )
        self.lost_runs = LostRuns(
            threads=self.threads,  # type: ignore[arg-type]
            runs=self.runs,  # type: ignore[arg-type]
            lock=self.lock,  # type: ignore[arg-type]
            steps=self.steps,
            now=self.clock,
        )
        self.hand_off = RunHandOff(
            settings=self.settings,
            runs=self.runs,  # type: ignore[arg-type]
            stepfunctions=self.stepfunctions,  # type: ignore[arg-type]
            standard_state_machine_arn=STANDARD_MACHINE,
            now=self.clock,
        )
        self.thread = self.new_thread("thr_1")

    def new_thread(self, thread_id: str) -> Thread:
        now = self.clock()
        return self.threads.add(
            Thread(
                thread_id=thread_id,
                user_id=USER,
                purpose="chat",
                backend=self.api,
                remote_id=self.backend.create_thread(thread_id),
                created_at=now,
                last_activity=now,
            )
        )

    def request(self, run_id: str = "run_1", **overrides: Any) -> StartRunInput:
        fields = {
            "run_id": run_id,
            "thread_id": self.thread.thread_id,
            "user_id": USER,
            "message": "How are sales?",
            **overrides,
        }
        return StartRunInput.model_validate(fields)

    def start(self, run_id: str = "run_1", **overrides: Any) -> RunState:
        return self.steps.start_run(self.request(run_id, **overrides))

    def current_thread(self) -> Thread:
        return self.threads.get(USER, self.thread.thread_id)

    def record(self, run_id: str = "run_1") -> RunRecord:
        return self.runs.get(self.thread.thread_id, run_id)

    def tokens_today(self) -> int:
        return self.usage.today(USER).total_tokens


# The retries of statemachine/run.asl.json: how many times each task is retried on an error.
RETRIES = {
    "StartRun": 4,
    "CheckRun": 4,
    "ProcessToolCalls": 4,
    "CancelRun": 3,
}
# RouteOnStatus: the task each `next` leads to (anything else: FinishRun).
ROUTES = {
    "wait": "WaitForModel",
    "wait_for_webhook": "WaitForWebhook",
    "run_tools": "ProcessToolCalls",
    "await_approval": "AwaitApproval",  # no fake tool needs approval: never taken here
    "cancel": "CancelRun",
}
# The same in run_express.asl.json: no webhook waits (Express has no task tokens), a hand-off.
EXPRESS_ROUTES = {
    "wait": "WaitForModel",
    "run_tools": "ProcessToolCalls",
    "cancel": "CancelRun",
    "hand_off": "HandOffRun",
}


def caught(error: Exception) -> CaughtError:
    """What a Catch with ResultPath $.error adds for a Lambda that raised `error`."""
    cause = json.dumps({"errorMessage": str(error), "errorType": type(error).__name__})
    return CaughtError(Error=type(error).__name__, Cause=cause)


@dataclass
class Execution:
    """The state machine's path, walked in Python (the routes and retries of run.asl.json):
    a wait moves the clock; a WaitForWebhook, whose webhook never comes here, ends on its
    timeout and goes to CheckRun, as the ASL's States.Timeout catch does."""

    world: World
    entered: list[str] = field(default_factory=list)
    outcome: RunOutcome | None = None

    def _task(self, name: str, step: Callable[[RunState], RunState], state: RunState) -> RunState:
        self.entered.append(name)
        for attempt in itertools.count():
            try:
                return step(state)
            except TransientBackendError:
                if attempt >= RETRIES[name]:
                    raise
                self.entered.append(name)

        raise AssertionError("unreachable")

    def run(self, request: StartRunInput, *, max_states: int = 200) -> RunState:
        steps = self.world.steps
        state = RunState.model_validate(request, from_attributes=True)
        try:
            state = self._task("StartRun", lambda _: steps.start_run(request), state)
        except Exception as error:
            state = state.model_copy(update={"error": caught(error)})
            return self.finish(state)
        while len(self.entered) < max_states:
            routes = EXPRESS_ROUTES if state.tier == "express" else ROUTES
            task = routes.get(state.next, "FinishRun")
            if task == "FinishRun":
                return self.finish(state)
            try:
                state = self._step(task, state)
            except Exception as error:
                state = state.model_copy(update={"error": caught(error)})
                return self.finish(state)
            if task == "CancelRun":
                return self.finish(state)
        raise AssertionError(f"the run did not end within {max_states} states")

    def _step(self, task: str, state: RunState) -> RunState:
        steps = self.world.steps
        if task == "WaitForModel":
            self.entered.append(task)
            self.world.clock.advance(state.wait_seconds)
            return self._task("CheckRun", steps.check_run, state)
        if task == "WaitForWebhook":
            self.entered.append(task)
            self.world.clock.advance(state.webhook_wait_seconds)
            return self._task("CheckRun", steps.check_run, state)
        if task == "ProcessToolCalls":
            return self._task(task, steps.process_tool_calls, state)
        if task == "HandOffRun":
            # The Express execution ends; the Standard one goes on from its input.
            return self._task(task, self.world.hand_off.hand_off, state)
        return self._task(task, steps.cancel_run, state)

    def finish(self, state: RunState) -> RunState:
        self.entered.append("FinishRun")
        finished, self.outcome, _first = self.world.steps.finish_run(state)
        return finished
