"""The Lambda handler shape shared by the state machine's run-state tasks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import runtime
from threadline.runs.state import RunState
from threadline.store.idempotency import once

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]
PartT = TypeVar("PartT")


def run_state_task(
    step: Callable[[PartT, RunState], RunState],
    *,
    once_per: str | None = None,
    part: Callable[[runtime.Runtime], PartT] = runtime.Runtime.run_steps,  # type: ignore[assignment]
) -> Handler:
    """A handler that parses the run state, applies one step (a method of a runtime's part,
    `RunSteps` unless told) to it and returns the result.

    With `once_per` (a JMESPath into the state), a retried invocation with the same key gets
    the first result back instead of repeating the step (records keyed by the step's name).
    """
    logger = Logger()
    tracer = Tracer()

    @logger.inject_lambda_context(log_event=False)
    @tracer.capture_lambda_handler
    @event_parser(model=RunState)
    def handler(state: RunState, context: LambdaContext) -> dict[str, Any]:
        logger.append_keys(run_id=state.run_id, thread_id=state.thread_id, user_id=state.user_id)
        if once_per is None:
            return step(part(runtime.current()), state).to_output()
        apply_once = once(
            lambda state: step(part(runtime.current()), state),
            name=step.__name__,
            key_path=once_per,
            result_type=RunState,
            data_keyword="state",
            context=context,
        )
        return apply_once(state=state).to_output()

    return handler
