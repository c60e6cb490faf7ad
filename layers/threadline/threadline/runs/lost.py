"""Finishing runs whose execution was lost.

An execution can end without finishing its run: an Express execution that outlives its five
minutes or dies with its service, an execution someone stopped, a hand-off that never
started the Standard one. Such a run keeps its thread locked until the lock's lease ends
(the run timeout and a margin), and would stay "in progress" for ever. A schedule finds the
threads whose lease ended and finishes their runs as FinishRun would: failed, with a reason,
the remote run stopped, its tokens counted once, the thread released. By then no live
execution can still be driving the run (every wait ends at the run's deadline, and a run
past its deadline is cancelled); one that somehow is finds the run finished, which is
idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel

from threadline.backends.base import RunHandle
from threadline.clock import utc_now
from threadline.errors import NotFoundError
from threadline.runs.records import RunRecord, RunStore
from threadline.runs.state import CaughtError, RunState
from threadline.runs.steps import RunSteps
from threadline.threads.records import Thread, ThreadStore
from threadline.threads.run_lock import RunLock, run_lock_lease

logger = logging.getLogger(__name__)
LOST = CaughtError(
    Error="ExecutionLost", Cause="the run's execution ended without finishing the run"
)


class LostRunsReport(BaseModel):
    finished: int = 0  # runs finished here
    released: int = 0  # threads of runs that had finished, freed (or handed on) here
    started: int = 0  # queued runs handed their thread whose execution never started
    failed: int = 0  # threads whose run could not be finished now (the next sweep tries)


class LostRuns:
    def __init__(
        self,
        *,
        threads: ThreadStore,
        runs: RunStore,
        lock: RunLock,
        steps: RunSteps,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._threads = threads
        self._runs = runs
        self._lock = lock
        self._steps = steps
        self._now = now

    def finish(
        self, *, limit: int = 25, time_left_ms: Callable[[], int] | None = None
    ) -> LostRunsReport:
        """Finish the runs of up to `limit` threads whose lock's lease ended, while more than
        a minute is left (each may wait on OpenAI). One that fails is left for the next
        sweep and does not hold up the others."""
        report = LostRunsReport()
        now = self._now()
        for user_id, thread_id in self._threads.expired_locks(now, limit=limit):
            if time_left_ms is not None and time_left_ms() < 60_000:
                break
            try:
                outcome = self._finish_thread(user_id, thread_id, now)
            except Exception:
                logger.exception("lost run not finished", extra={"thread_id": thread_id})
                report.failed += 1
                continue
            if outcome == "finished":
                report.finished += 1
            elif outcome == "released":
                report.released += 1
            elif outcome == "started":
                report.started += 1
        return report

    def _finish_thread(self, user_id: str, thread_id: str, now: datetime) -> str | None:
        try:
            thread = self._threads.get(user_id, thread_id)
        except NotFoundError:
            return None  # deleted meanwhile
        if thread.active_run_id is None or thread.has_active_run(now):
            return None  # released, or its lease renewed, since the index was read
        try:
            record = self._runs.get(thread_id, thread.active_run_id)
        except NotFoundError:
            record = None
        if record is None or record.status.is_terminal:
            # Finished, but FinishRun died before it had counted every response and freed
            # the thread: both again (each is safe to repeat).
            if record is not None:
                self._steps.counting.count_left_over(record.remote_object_ids)
            self._steps.end_turn(user_id, thread_id, thread.active_run_id)
            return "released"
        if record.queued_at is not None and record.started_at is None and not record.relaunched:
            # Handed the thread from its queue, but its start never came: start it once more.
            lease = run_lock_lease(self._steps.settings.run_timeout_seconds)
            self._lock.acquire(user_id, thread_id, record.run_id, lease=lease)
            started = self._steps.launcher().launch(record, relaunch=True)
            return "started" if started.execution_arn else None
        self._finish_lost(thread, record)
        return "finished"

    def _finish_lost(self, thread: Thread, record: RunRecord) -> None:
        handle = (
            RunHandle(thread_remote_id=thread.remote_id, run_remote_id=record.remote_run_id)
            if record.remote_run_id
            else None
        )
        state = RunState(
            run_id=record.run_id,
            thread_id=record.thread_id,
            user_id=record.user_id,
            assistant=record.assistant,
            handle=handle,
            started_at=record.started_at or record.created_at,
            status=record.status,
            error=LOST,
        )
        # FinishRun's own rules: the remote run is stopped (and its usage taken if that
        # settles it), the outcome recorded once, each response the record lists counted
        # once, the thread released.
        self._steps.finish_run(state)
