"""ProcessToolCalls: run the requested tools concurrently and hand all outputs back.

Once per tool round: a retried invocation must not submit the same outputs twice.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline.idempotency import once
from threadline.run_state import RunState
from threadline.runtime import run_steps

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@event_parser(model=RunState)
def handler(state: RunState, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(run_id=state.run_id, thread_id=state.thread_id, user_id=state.user_id)
    process = once(
        lambda state: run_steps().process_tool_calls(state),
        name="process_tool_calls",
        key_path="[run_id, tool_rounds]",
        result_type=RunState,
        data_keyword="state",
        context=context,
    )
    return process(state=state).to_output()
