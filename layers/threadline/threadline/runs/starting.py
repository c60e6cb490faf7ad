"""Starting a run from the API: lock the thread, record the run, start its execution."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from threadline.assistant_config import load_assistant
from threadline.clock import utc_now
from threadline.errors import ServiceUnavailableError
from threadline.ids import new_id
from threadline.models import RunStatus, Usage
from threadline.runs.records import RunOutcome, RunRecord, RunStore
from threadline.runs.state import StartRunInput
from threadline.threads.records import ThreadStore
from threadline.threads.run_lock import RunLock, run_lock_lease
from threadline.usage import UsageLedger

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


class RunStarter:
    def __init__(
        self,
        *,
        threads: ThreadStore,
        lock: RunLock,
        runs: RunStore,
        stepfunctions: SFNClient,
        state_machine_arn: str,
        express_state_machine_arn: str | None,
        run_timeout_seconds: int,
        usage: UsageLedger,
        daily_token_budget: int,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._threads = threads
        self._lock = lock
        self._runs = runs
        self._sfn = stepfunctions
        self._state_machine_arn = state_machine_arn
        # With the Express tier on, a run starts there (threadline.runs.tiers).
        self._express_state_machine_arn = express_state_machine_arn
        self._lease = run_lock_lease(run_timeout_seconds)
        self._usage = usage
        self._daily_token_budget = daily_token_budget
        self._now = now

    def start(self, user_id: str, thread_id: str, message: str, assistant_name: str) -> RunRecord:
        """Start a run; ThreadBusyError if one is active, NotFoundError if no such thread.

        The lock is taken here, in one transaction with the run record, so a second request
        is refused at once; the execution's StartRun finds the lock already its own.
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
        )
        lock = self._lock.acquire_update(user_id, thread_id, record.run_id, self._lease)
        if not self._runs.put_new(record, with_lock=lock):
            self._lock.raise_conflict(user_id, thread_id)
        execution_input = StartRunInput(
            run_id=record.run_id,
            thread_id=thread_id,
            user_id=user_id,
            message=message,
            assistant=assistant.name,
            tier="express" if self._express_state_machine_arn else "standard",
        )
        try:
            execution = self._sfn.start_execution(
                stateMachineArn=self._express_state_machine_arn or self._state_machine_arn,
                name=record.run_id,
                input=execution_input.model_dump_json(),
            )
        except (ClientError, BotoCoreError) as error:
            self._abandon(record, f"could not start the run's execution: {error}")
            raise ServiceUnavailableError("could not start the run; try again") from error
        self._runs.set_execution(thread_id, record.run_id, execution["executionArn"])
        return record.model_copy(update={"execution_arn": execution["executionArn"]})

    def _abandon(self, record: RunRecord, reason: str) -> None:
        """Undo a start whose execution never began: fail the run, free the thread."""
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
        self._lock.release(record.user_id, record.thread_id, record.run_id)
