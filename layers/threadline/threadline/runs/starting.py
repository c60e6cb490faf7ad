"""Starting a run from the API: lock the thread (or queue the run), record the run, start its
execution."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import BotoCoreError, ClientError

from threadline.assistant_config import load_assistant
from threadline.callbacks.state import CallbackState
from threadline.clock import utc_now
from threadline.errors import ServiceUnavailableError
from threadline.ids import new_id
from threadline.models import RunStatus, Usage
from threadline.runs.records import RunOutcome, RunRecord, RunStore
from threadline.runs.state import StartRunInput
from threadline.threads.records import ThreadStore
from threadline.threads.run_lock import RunLock, run_lock_lease
from threadline.threads.run_queue import RunQueue
from threadline.usage import UsageLedger

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

logger = logging.getLogger(__name__)


class RunLauncher:
    """Starts a recorded run's execution (named by the run): in the Express state machine
    when the Express tier is on, else in the Standard one."""

    def __init__(
        self,
        *,
        runs: RunStore,
        stepfunctions: SFNClient,
        state_machine_arn: str,
        express_state_machine_arn: str | None,
    ) -> None:
        self._runs = runs
        self._sfn = stepfunctions
        self._state_machine_arn = state_machine_arn
        self._express_state_machine_arn = express_state_machine_arn

    def launch(self, record: RunRecord, *, relaunch: bool = False) -> RunRecord:
        """Start the run's execution; the run with its ARN. A queued run's start is claimed
        first, so that of the callers that may start it (FinishRun and its retries,
        FinishLostRuns, a failed start) one does; `relaunch` claims it once more, to start it
        again after a start that never came. ClientError or BotoCoreError if it did not
        start."""
        if record.message is None:
            raise ValueError(f"run {record.run_id} has no message to start with")
        if record.queued_at is not None and not self._runs.claim_launch(
            record.thread_id, record.run_id, relaunch=relaunch
        ):
            return record  # another caller starts it
        execution_input = StartRunInput(
            run_id=record.run_id,
            thread_id=record.thread_id,
            user_id=record.user_id,
            assistant=record.assistant,
            tier="express" if self._express_state_machine_arn else "standard",
        )
        machine = self._express_state_machine_arn or self._state_machine_arn
        try:
            execution_arn = self._sfn.start_execution(
                stateMachineArn=machine,
                name=record.run_id,
                input=execution_input.model_dump_json(exclude_none=True),
            )["executionArn"]
        except self._sfn.exceptions.ExecutionAlreadyExists:
            # Standard executions are named once: an earlier start made it.
            execution_arn = f"{machine.replace(':stateMachine:', ':execution:', 1)}:{record.run_id}"
        self._runs.set_execution(record.thread_id, record.run_id, execution_arn)
        return record.model_copy(update={"execution_arn": execution_arn})


IfBusy = Literal["reject", "enqueue", "interrupt"]


class RunStarter:
    def __init__(
        self,
        *,
        threads: ThreadStore,
        lock: RunLock,
        runs: RunStore,
        queue: RunQueue,
        launcher: RunLauncher,
        run_timeout_seconds: int,
        usage: UsageLedger,
        daily_token_budget: int,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._threads = threads
        self._lock = lock
        self._runs = runs
        self._queue = queue
        self._launcher = launcher
        self._lease = run_lock_lease(run_timeout_seconds)
        self._usage = usage
        self._daily_token_budget = daily_token_budget
        self._now = now

    def start(
        self,
        user_id: str,
        thread_id: str,
        message: str,
        assistant_name: str,
        if_busy: IfBusy = "reject",
        *,
        callback_url: str | None = None,
    ) -> RunRecord:
        """Start a run, or queue it on a busy thread (`if_busy`). ThreadBusyError if the
        thread is busy and the run is not to wait, QueueFullError if its queue is full,
        NotFoundError if no such thread.

        The lock is taken here, in one transaction with the run record, so a second request
        is refused (or queued) at once; the execution's StartRun finds the lock its own.
        """
        assistant = load_assistant(assistant_name)
        self._threads.get(user_id, thread_id)
        self._usage.check_budget(user_id, self._daily_token_budget)
        record = RunRecord(
            run_id=new_id("run"),
            thread_id=thread_id,
            user_id=user_id,
            assistant=assistant.name,
            message=message,
            created_at=self._now(),
            callback=CallbackState(url=callback_url) if callback_url else None,
        )
        for _attempt in range(3):  # the thread may free, or fill, between two writes
            lock = self._lock.acquire_update(user_id, thread_id, record.run_id, self._lease)
            if self._runs.put_new(record, with_lock=lock):
                return self._launch(record)
            if if_busy == "reject":
                self._lock.raise_conflict(user_id, thread_id)
            if self._queue.enqueue(record, interrupting=if_busy == "interrupt"):
                return self._runs.get(thread_id, record.run_id)
        raise ServiceUnavailableError("the thread kept changing; try again")

    def _launch(self, record: RunRecord) -> RunRecord:
        try:
            return self._launcher.launch(record)
        except (ClientError, BotoCoreError) as error:
            self._abandon(record, f"could not start the run's execution: {error}")
            raise ServiceUnavailableError("could not start the run; try again") from error

    def _abandon(self, record: RunRecord, reason: str) -> None:
        """Undo a start whose execution never began: fail the run, and free the thread or
        hand it to the run queued next (started here if it can be)."""
        now = self._now()
        self._runs.finish(
            record.thread_id,
            record.run_id,
            RunOutcome(
                status=RunStatus.FAILED,
                finished_at=now,
                duration_seconds=0.0,
                usage=Usage(),
                reason=reason,
            ),
        )
        next_run = self._queue.end_turn(record.user_id, record.thread_id, record.run_id)
        if next_run is not None:
            try:
                self._launcher.launch(next_run)
            except (ClientError, BotoCoreError):
                # It holds the thread: FinishLostRuns starts it once its lease has ended.
                logger.exception(
                    "the run queued next not started", extra={"run_id": next_run.run_id}
                )
