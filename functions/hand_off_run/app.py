"""HandOffRun: continue a run in its Standard execution - one whose Express stretch is over,
or whose step needs longer than the Express execution has."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import runtime
from threadline.runs.state import RunState, StartRunInput

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    hand_off = runtime.current().run_hand_off()
    # A run with no remote run yet arrives as the execution's input (its StartRun was handed
    # on); a started one as its run state.
    if event.get("handle") is None:
        request = StartRunInput.model_validate(event)
        logger.append_keys(run_id=request.run_id, thread_id=request.thread_id)
        return hand_off.hand_off_start(request).model_dump(mode="json", exclude_none=True)
    state = RunState.model_validate(event)
    logger.append_keys(run_id=state.run_id, thread_id=state.thread_id, user_id=state.user_id)
    return hand_off.hand_off(state).to_output()
