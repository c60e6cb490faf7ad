"""AwaitApproval: the run's gated tool calls wait for a person; park the execution's task token.

The execution then sleeps at no cost until the run's owner has answered every call (POST
.../approvals sends the token) or ApprovalTimeoutSeconds pass.
"""

from __future__ import annotations

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
def handler(request: ParkedState, context: LambdaContext) -> None:
    state = request.state
    logger.append_keys(run_id=state.run_id, thread_id=state.thread_id, user_id=state.user_id)
    runtime.current().run_steps().await_approval(state, request.task_token)
    logger.info("waiting for approval")
