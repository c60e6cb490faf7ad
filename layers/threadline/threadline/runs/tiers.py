"""Handing a run from the Express tier to the Standard one.

A run starts in an Express execution, which checks it every second: a second of Express costs
about as much as one Standard state transition, so short runs finish sooner and for less than
any Standard wait loop could manage. Express executions last at most five minutes and run
at least once, so a run still going after its Express stretch continues in a Standard
execution named by the run (starting it twice starts it once), which waits for OpenAI's
webhook or polls on a growing interval.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from threadline.clock import utc_now
from threadline.runs.polling import while_running
from threadline.runs.records import RunStore
from threadline.runs.state import RunState, StartRunInput
from threadline.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


class RunHandOff:
    def __init__(
        self,
        *,
        settings: Settings,
        runs: RunStore,
        stepfunctions: SFNClient,
        standard_state_machine_arn: str,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._runs = runs
        self._sfn = stepfunctions
        self._machine = standard_state_machine_arn
        self._now = now

    def hand_off_start(self, request: StartRunInput) -> StartRunInput:
        """Start the Standard execution of a run the Express tier could not start quickly
        (its StartRun needed more than a quick retry): it starts the run there. The input it
        starts with."""
        handed = request.model_copy(update={"tier": "standard"})
        self._start(request.thread_id, request.run_id, handed.model_dump_json(exclude_none=True))
        return handed

    def hand_off(self, state: RunState) -> RunState:
        """Start the run's Standard execution from where the Express one is; the state it
        starts with. Repeated (a retry, a second Express execution), it starts nothing new."""
        now = self._now()
        handed = state.model_copy(
            update={
                "tier": "standard",
                "timeline": state.entered("handed_off", now),
                "polls": 0,
                "webhooks": 0,
            }
        )
        # Tools the model asked for near the end of the stretch run in Standard, first.
        waiting = {"next": "run_tools"} if state.pending_call_ids else None
        handed = handed.model_copy(update=waiting or while_running(handed, self._settings, now))
        self._start(state.thread_id, state.run_id, handed.model_dump_json())
        return handed

    def _start(self, thread_id: str, run_id: str, execution_input: str) -> None:
        try:
            arn = self._sfn.start_execution(
                stateMachineArn=self._machine, name=run_id, input=execution_input
            )["executionArn"]
        except self._sfn.exceptions.ExecutionAlreadyExists:
            # Started by an earlier attempt (with its own timeline): that one drives the run.
            arn = self._execution_arn(run_id)
        # Only a pointer for operators: failing here must not fail a run that now goes on.
        with contextlib.suppress(ClientError, BotoCoreError):
            self._runs.set_execution(thread_id, run_id, arn)

    def _execution_arn(self, name: str) -> str:
        return f"{self._machine.replace(':stateMachine:', ':execution:', 1)}:{name}"
