"""WaitForWebhook (push mode): park the execution's task token until OpenAI's webhook comes.

The execution then sleeps at no cost; the webhook (or this task, if the webhook came first)
sends the task its next run state.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import runtime
from threadline.runs.state import ParkedState

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@event_parser(model=ParkedState)
def handler(request: ParkedState, context: LambdaContext) -> dict[str, Any]:
    state = request.state
    logger.append_keys(run_id=state.run_id, thread_id=state.thread_id, user_id=state.user_id)
    resumed = runtime.current().webhook_waits().wait_for_webhook(state, request.task_token)
    logger.info("waiting for webhook", extra={"webhook_already_came": resumed})
    return {"webhook_already_came": resumed}
