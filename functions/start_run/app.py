"""StartRun: take the thread's run lock, post the user's message, start the remote run."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import runtime
from threadline.runs.state import RunState, StartRunInput
from threadline.store.idempotency import once

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@event_parser(model=StartRunInput)
def handler(request: StartRunInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(run_id=request.run_id, thread_id=request.thread_id, user_id=request.user_id)
    steps = runtime.current().run_steps()
    # Once per run: a retried invocation must not start a second remote run.
    start = once(
        steps.start_run,
        name="start_run",
        key_path="run_id",
        result_type=RunState,
        data_keyword="request",
        context=context,
    )
    state = steps.in_tier(start(request=request), request.tier)
    logger.info("run started", extra={"remote_run_id": state.handle and state.handle.run_remote_id})
    return state.to_output()
