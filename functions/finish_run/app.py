"""FinishRun: record the outcome, usage and metrics, and release the thread. Idempotent."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import runtime
from threadline.errors import reason_code
from threadline.runs.metrics import publish_run_metrics
from threadline.runs.state import RunState

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=RunState)
def handler(state: RunState, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(run_id=state.run_id, thread_id=state.thread_id, user_id=state.user_id)
    steps = runtime.current().run_steps()
    finished, outcome, first = steps.finish_run(state)
    if first:
        publish_run_metrics(metrics, steps.settings, finished, outcome)
    logger.info(
        "run finished",
        extra={
            "status": outcome.status.value,
            "reason": reason_code(outcome.reason),
            "duration_seconds": outcome.duration_seconds,
            "total_tokens": outcome.usage.total_tokens,
            "tool_calls": finished.tool_calls,
            "first_finish": first,
        },
    )
    return finished.to_output()
