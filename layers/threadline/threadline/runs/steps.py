"""What each state of the run state machine does, with its dependencies passed in.

The handlers in `functions/` parse the event, call one of these and return the new state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from threadline.assistant_config import AssistantConfig, load_assistant
from threadline.backends.base import AssistantBackend, RunHandle, RunOwner, RunView
from threadline.clock import utc_now
from threadline.errors import NotFoundError, ThreadlineError
from threadline.files.generated import store_generated_files
from threadline.files.records import FileStore, run_context
from threadline.models import RunStatus, ToolCall
from threadline.runs.approvals import (
    calls_needing_approval,
    denial_output,
    mcp_approval_answer,
)
from threadline.runs.polling import while_running
from threadline.runs.records import (
    TOOL_CALLS_LIMIT_BYTES,
    PendingToolCalls,
    RunOutcome,
    RunRecord,
    RunStore,
    ToolCallRecord,
    records_that_fit,
)
from threadline.runs.state import CaughtError, RunState, StartRunInput, Tier, ended_remotely
from threadline.runs.tool_files import RunFileSaver
from threadline.runs.usage_counting import RunUsage
from threadline.settings import Settings, WaitMode
from threadline.threads.records import ThreadStore
from threadline.threads.run_lock import RunLock, run_lock_lease
from threadline.tools import ToolContext, ToolRegistry, run_tool_calls
from threadline.usage import UsageLedger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from threadline.runs.approvals import RunApprovals
    from threadline.runs.starting import RunLauncher
    from threadline.runs.webhook_waits import WebhookWaitStore
    from threadline.threads.run_queue import RunQueue


INTERRUPTED = "interrupted"  # the reason of a run another one interrupted (if_busy=interrupt)
# An Assistants run waiting for tool outputs expires ten minutes after it asked: it waits for a
# person until nine minutes after, leaving a minute for the round.
ASSISTANTS_APPROVAL_SECONDS = 540
CANCELLED_WHILE_WAITING = "cancelled while waiting for approval"


def interruption(record: RunRecord) -> str:
    """Why a run marked `interrupted_by` was cancelled: another run, or its owner's cancel
    while it waited for approval (then it is marked by itself)."""
    return CANCELLED_WHILE_WAITING if record.interrupted_by == record.run_id else INTERRUPTED


@dataclass(frozen=True)
class RunSteps:
    """Remote dependencies are providers, each built on its first use: a step pays only for
    what it touches on a cold start (CheckRun builds the table only when the run asks for
    tools or ends, never S3; FinishRun connects to OpenAI only when a run made files)."""

    settings: Settings
    backend: Callable[[], AssistantBackend]
    tools_for: Callable[[AssistantConfig], ToolRegistry]
    threads: Callable[[], ThreadStore]
    lock: Callable[[], RunLock]
    runs: Callable[[], RunStore]
    usage: Callable[[], UsageLedger]
    files: Callable[[], FileStore]
    s3: Callable[[], S3Client]
    waits: Callable[[], WebhookWaitStore]
    queue: Callable[[], RunQueue]
    launcher: Callable[[], RunLauncher]
    approvals: Callable[[], RunApprovals]
    # Whether OpenAI's webhooks reach this deployment (a webhook secret is configured).
    webhooks_configured: Callable[[], bool] = field(default=lambda: False)
    now: Callable[[], datetime] = field(default=utc_now)

    # -- StartRun ----------------------------------------------------------------------------

    def start_run(self, request: StartRunInput) -> RunState:
        assistant = load_assistant(request.assistant)
        thread = self.threads().get(request.user_id, request.thread_id)
        now = self.now()
        message = request.message or self._recorded_message(request)
        self.runs().put_new(
            RunRecord(
                run_id=request.run_id,
                thread_id=request.thread_id,
                user_id=request.user_id,
                assistant=assistant.name,
                message=message,
                created_at=now,
            )
        )
        self.lock().acquire(
            request.user_id,
            request.thread_id,
            request.run_id,
            lease=run_lock_lease(self.settings.run_timeout_seconds),
        )
        timeout = min(
            request.timeout_seconds or self.settings.run_timeout_seconds,
            self.settings.run_timeout_seconds,
        )
        context = run_context(thread, self.files())
        wait_mode = self._wait_mode()
        handle = self.backend().start_run(
            thread,
            message,
            assistant,
            self.tools_for(assistant),
            context,
            owner=RunOwner.model_validate(request, from_attributes=True),
        )
        started = self.runs().mark_started(
            request.thread_id,
            request.run_id,
            remote_run_id=handle.run_remote_id,
        )
        self._hold(handle, request.run_id, wait_mode)
        if started.interrupted_by:  # interrupted while it was starting: it stops at once
            self._stop_remote(handle)
        self.counting.count_earlier_runs(thread, now)
        state = RunState(
            run_id=request.run_id,
            thread_id=request.thread_id,
            user_id=request.user_id,
            assistant=assistant.name,
            handle=handle,
            context=context,
            started_at=now,
            deadline=now + timedelta(seconds=timeout),
            status=RunStatus.QUEUED,
            tier=request.tier,
            wait_mode=wait_mode,
        )
        state = state.model_copy(update={"timeline": state.entered("started", now)})
        return state.model_copy(update=self.while_running(state))

    def in_tier(self, state: RunState, tier: Tier) -> RunState:
        """A started run's state for the tier now driving it: a run the Express tier started
        but handed on before it had the answer (StartRun timed out there) goes on in Standard
        from the start's recorded result."""
        if state.tier == tier:
            return state
        handed = state.entered("handed_off", self.now())
        moved = state.model_copy(update={"tier": tier, "timeline": handed, "polls": 0})
        return moved.model_copy(update=self.while_running(moved))

    def _recorded_message(self, request: StartRunInput) -> str:
        """The message the API recorded with the run (it is not in the execution's input)."""
        message = self.runs().get(request.thread_id, request.run_id).message
        if message is None:
            raise ValueError(f"run {request.run_id} has no message to start with")
        return message

    def _wait_mode(self) -> WaitMode:
        mode = self.settings.run_wait_mode
        if mode == "auto":
            pushable = self.settings.openai_backend == "responses" and self.webhooks_configured()
            return "push" if pushable else "poll"
        return mode

    def _hold(self, handle: RunHandle, run_id: str, wait_mode: WaitMode) -> None:
        """In push mode every response's webhook comes: the run holds the response it just
        recorded, so that the webhook leaves its counting to the run (see runs.webhook_waits).
        Held only once the run's record lists it, so a retried step's response is not lost."""
        if wait_mode == "push":
            self.waits().hold(handle.run_remote_id, run_id)

    @property
    def counting(self) -> RunUsage:
        """How the run's tokens are counted (builds nothing until it counts)."""
        return RunUsage(backend=self.backend, usage=self.usage, waits=self.waits, now=self.now)

    def while_running(
        self, state: RunState, poll_hint: float | None = None, *, after_check: bool = False
    ) -> dict[str, Any]:
        return while_running(state, self.settings, self.now(), poll_hint, after_check=after_check)

    # -- CheckRun ----------------------------------------------------------------------------

    def check_run(self, state: RunState) -> RunState:
        """Read the remote run and decide what comes next. What it produced (its answer, the
        tool calls it asks for) goes to the run's record, not into the state."""
        handle, deadline = _started(state)
        view = self.backend().get_run(handle)
        polls = state.polls + 1
        update: dict[str, object] = {
            "status": view.status,
            "usage": view.usage,
            "usage_settled": view.settled,
            "polls": polls,
        }
        if view.status is RunStatus.REQUIRES_ACTION:
            update.update(self._asked_for_tools(state, handle, view.tool_calls))
        elif view.status.is_terminal:
            self._keep_answer(state, view)
            update.update(ended_remotely(view))
        elif self.now() >= deadline:
            update.update(next="cancel")
        else:
            update.update(self.while_running(state, view.poll_after_seconds, after_check=True))
        return state.model_copy(update=update)

    def _asked_for_tools(
        self, state: RunState, handle: RunHandle, calls: list[ToolCall]
    ) -> dict[str, object]:
        """Keep the calls on the run's record for the round; the run-state fields that send
        the run to it. A run past its rounds, or whose calls are too large to keep (a tool
        cannot run on part of its arguments), fails instead."""
        if state.tool_rounds >= self.settings.max_tool_rounds:
            cause = f"the model asked for tools {state.tool_rounds + 1} times in one run"
            return {"error": CaughtError(Error="ToolRoundLimit", Cause=cause), "next": "finish"}
        size = sum(len(call.arguments.encode()) for call in calls)
        if size > TOOL_CALLS_LIMIT_BYTES:
            # Finished as failed; FinishRun stops the remote run, which waits on the calls.
            limit = TOOL_CALLS_LIMIT_BYTES // 1000
            cause = f"{size // 1000} KB of arguments, over the {limit} KB a run keeps"
            return {"error": CaughtError(Error="ToolCallsTooLarge", Cause=cause), "next": "finish"}
        pending = PendingToolCalls(remote_run_id=handle.run_remote_id, calls=calls)
        self.runs().record_tool_calls(state.thread_id, state.run_id, pending)
        return {
            "next": state.where_tools_run(self.settings.express_tier_seconds, self.now()),
            "pending_call_ids": [call.id for call in calls],
            "tools_requested_at": state.tools_requested_at or self.now(),
        }

    def _keep_answer(self, state: RunState, view: RunView) -> None:
        if view.status is RunStatus.COMPLETED and view.output_text:
            self.runs().record_answer(state.thread_id, state.run_id, view.output_text)

    def _pending_calls(self, state: RunState, record: RunRecord) -> list[ToolCall]:
        """The calls the state's round answers, from the run's record."""
        pending = record.pending_tool_calls
        handle, _deadline = _started(state)
        if pending is None or pending.remote_run_id != handle.run_remote_id:
            raise ValueError(f"run {state.run_id} has no tool calls recorded for its round")
        by_id = {call.id: call for call in pending.calls}
        return [by_id[call_id] for call_id in state.pending_call_ids]

    # -- ProcessToolCalls --------------------------------------------------------------------

    def process_tool_calls(self, state: RunState) -> RunState:
        handle, deadline = _started(state)
        record = self.runs().get(state.thread_id, state.run_id)
        if record.interrupted_by:
            # Its calls stay unanswered; only a completed run moves the thread's head.
            self._stop_remote(handle)
            return state.model_copy(
                update={
                    "status": RunStatus.CANCELLED,
                    "reason": interruption(record),
                    "next": "finish",
                }
            )
        assistant = load_assistant(state.assistant)
        tools = self.tools_for(assistant)
        pending = self._pending_calls(state, record)
        if state.approval_requested_at is None:
            gated = calls_needing_approval(tools, pending)
            if gated:
                return self._ask_approval(state, gated)
        else:  # the calls the wait was for, whatever the tools say since
            gated = [c for c in pending if c.id in state.approval_call_ids]
        decided = self.approvals().decisions(state, gated) if gated else {}
        approved = {call_id for call_id, request in decided.items() if request.approved}
        runnable = [call for call in pending if call not in gated]
        runnable += [call for call in gated if call.id in approved and call.kind == "function"]
        ran = run_tool_calls(
            tools,
            runnable,
            caller=ToolContext(
                user_id=state.user_id,
                thread_id=state.thread_id,
                run_id=state.run_id,
                assistant=state.assistant,
                files=RunFileSaver(
                    s3=self.s3,
                    bucket=self.settings.bucket_name,
                    runs=self.runs(),
                    user_id=state.user_id,
                    thread_id=state.thread_id,
                    run_id=state.run_id,
                ),
            ),
            timeout_seconds=self.settings.tool_timeout_seconds,
        )
        by_call = {output.call_id: output for output in ran}
        for call in gated:
            if call.kind == "mcp_approval":  # OpenAI runs it, once told it may
                by_call[call.id] = mcp_approval_answer(call, decided.get(call.id))
            elif call.id not in approved:
                wait = state.approval_wait_seconds
                by_call[call.id] = denial_output(call, decided.get(call.id), wait)
        outputs = [by_call[call.id] for call in pending]
        handle = self.backend().submit_tool_outputs(
            handle,
            outputs,
            assistant,
            tools,
            state.context,
            owner=RunOwner.model_validate(state, from_attributes=True),
            answered_usage=state.usage - handle.carried_usage,
        )
        records = [
            ToolCallRecord(
                call_id=output.call_id,
                name=output.name,
                is_error=output.is_error,
                duration_ms=output.duration_ms,
                summary=output.summary,
                approval=decided[output.call_id].outcome if output.call_id in decided else None,
            )
            for output in outputs
        ]
        kept = records_that_fit(record.tool_calls, records)
        recorded = self.runs().add_tool_round(
            state.thread_id,
            state.run_id,
            kept,
            remote_run_id=handle.run_remote_id,
            omitted=len(records) - len(kept),
        )
        self._hold(handle, state.run_id, state.wait_mode)
        if recorded.interrupted_by:  # interrupted while its tools ran: the new response stops
            self._stop_remote(handle)
        now = self.now()
        # Waiting for a person does not count against the run's deadline.
        waited = now - state.approval_requested_at if state.approval_requested_at else timedelta()
        state = state.model_copy(
            update={
                "handle": handle,
                "deadline": deadline + waited,
                "pending_call_ids": [],
                "tools_requested_at": None,
                "approval_requested_at": None,
                "approval_call_ids": [],
                "tool_rounds": state.tool_rounds + 1,
                "tool_calls": state.tool_calls + len(outputs),
                "tool_errors": state.tool_errors + sum(output.is_error for output in outputs),
                "status": RunStatus.IN_PROGRESS,
                "timeline": state.entered("tool_round", now),
                "polls": 0,
                "webhooks": 0,
            }
        )
        return state.model_copy(update=self.while_running(state))

    def _ask_approval(self, state: RunState, gated: list[ToolCall]) -> RunState:
        """Calls that need a person wait in the Standard tier (AwaitApproval): an Express
        execution cannot wait for a task token, so it hands the run on first. An Assistants
        run waiting for tool outputs expires after ten minutes, which bounds its wait."""
        if state.tier == "express":
            return state.model_copy(update={"next": "hand_off"})
        now = self.now()
        wait = self.settings.approval_timeout_seconds
        if self.settings.openai_backend == "assistants":
            asked = (now - (state.tools_requested_at or now)).total_seconds()
            wait = max(1, min(wait, ASSISTANTS_APPROVAL_SECONDS - int(asked)))
        return state.model_copy(
            update={
                "next": "await_approval",
                "status": RunStatus.REQUIRES_APPROVAL,
                "approval_requested_at": now,
                "approval_call_ids": [call.id for call in gated],
                "approval_wait_seconds": wait,
                "timeline": state.entered("awaiting_approval", now),
                "polls": 0,
                "webhooks": 0,
            }
        )

    # -- AwaitApproval -----------------------------------------------------------------------

    def await_approval(self, state: RunState, task_token: str) -> None:
        """Ask for the decisions the run's gated calls wait for, and park the token."""
        record = self.runs().get(state.thread_id, state.run_id)
        calls = [c for c in self._pending_calls(state, record) if c.id in state.approval_call_ids]
        self.approvals().wait(state, calls, task_token)

    # -- CancelRun ---------------------------------------------------------------------------

    def cancel_run(self, state: RunState) -> RunState:
        """Cancel a run past its deadline; a run that ended before the cancel reached it is
        recorded as it ended."""
        handle, _deadline = _started(state)
        view = self.backend().cancel_run(handle)
        if view.status.is_terminal and view.status is not RunStatus.CANCELLED:
            self._keep_answer(state, view)
            return state.model_copy(update=ended_remotely(view))
        return state.model_copy(
            update={
                "status": RunStatus.TIMED_OUT,
                "usage": view.usage,
                "usage_settled": view.settled,
                "next": "finish",
                "reason": "run passed its deadline and was cancelled",
                "timeline": state.entered("cancelled", self.now()),
                "polls": 0,
                "webhooks": 0,
            }
        )

    # -- FinishRun ---------------------------------------------------------------------------

    def finish_run(self, state: RunState) -> tuple[RunState, RunOutcome, bool]:
        """Record the outcome and release the thread; True if this call recorded it first."""
        state = self._stop_abandoned(state)
        record = self._record_of(state)
        status, reason = state.outcome()
        if status is not RunStatus.COMPLETED and record is not None and record.interrupted_by:
            status, reason = RunStatus.CANCELLED, interruption(record)
        now = self.now()
        started = state.started_at or now
        outcome = RunOutcome(
            status=status,
            finished_at=now,
            duration_seconds=round((now - started).total_seconds(), 3),
            usage=state.usage,
            output_text=record.answer if record and status is RunStatus.COMPLETED else None,
            output_truncated=bool(record and record.output_truncated),
            reason=reason,
            timeline=state.entered("finished", now),
            # The files the run's tools saved, and those the model made.
            generated_files=(record.generated_files if record else [])
            + (
                store_generated_files(
                    user_id=state.user_id,
                    thread_id=state.thread_id,
                    run_id=state.run_id,
                    files=state.generated_files,
                    backend=self.backend(),
                    s3_client=self.s3(),
                    bucket=self.settings.bucket_name,
                )
                if state.generated_files
                else []
            ),
        )
        first = self.counting.count_finished(
            state,
            self.runs().finish_update(state.thread_id, state.run_id, outcome),
            made=record.remote_object_ids if record else [],
            now=now,
        )
        self.end_turn(
            state.user_id,
            state.thread_id,
            state.run_id,
            # Only a completed run moves the thread on: its last response answered everything.
            head_response_id=state.handle.run_remote_id
            if status is RunStatus.COMPLETED and state.handle
            else None,
        )
        finished = state.model_copy(
            update={
                "status": status,
                # The execution's Fail state takes it as its cause, which must be a string.
                "reason": reason or f"the run ended {status.value}",
                "next": "finish",
                "error": None,
                "timeline": outcome.timeline,
            }
        )
        return finished, outcome, first

    def end_turn(
        self, user_id: str, thread_id: str, run_id: str, *, head_response_id: str | None = None
    ) -> None:
        """Free the run's thread, or hand it to the run queued next and start that one. A
        retry after a failure in between finishes the job (threads.run_queue)."""
        next_run = self.queue().end_turn(
            user_id, thread_id, run_id, head_response_id=head_response_id
        )
        if next_run is not None:
            self.launcher().launch(next_run)

    def _stop_remote(self, handle: RunHandle) -> None:
        """Cancel a remote run this run no longer wants, best effort: the run's next check
        sees it stopped, and FinishRun stops an abandoned one again."""
        with contextlib.suppress(ThreadlineError):
            self.backend().cancel_run(handle)

    def _record_of(self, state: RunState) -> RunRecord | None:
        """The run's record: the remote objects its steps made, whether it was interrupted
        (None if the run failed before its record was written)."""
        try:
            return self.runs().get(state.thread_id, state.run_id)
        except NotFoundError:
            return None

    def _stop_abandoned(self, state: RunState) -> RunState:
        """A run that ends here while its remote run still goes (a step failed for good) stops
        it there too, so it spends no more tokens and blocks nothing, and takes the usage the
        remote run reports. Best effort: the outcome is recorded whatever OpenAI answers."""
        if state.handle is None or state.status.is_terminal:
            return state
        backend = self.backend()
        with contextlib.suppress(ThreadlineError):
            view = backend.cancel_run(state.handle)
            if view.settled:
                return state.with_usage_of(view)
        # The cancel failed, or the run is still stopping (an Assistants run is "cancelling"
        # first): look once more. A later run of the thread counts one that never settles.
        with contextlib.suppress(ThreadlineError):
            return state.with_usage_of(backend.get_run(state.handle))
        return state


def _started(state: RunState) -> tuple[RunHandle, datetime]:
    if state.handle is None or state.deadline is None:
        raise ValueError(f"run {state.run_id} has not been started")
    return state.handle, state.deadline
