"""ProcessToolCalls: run the requested tools concurrently and hand all outputs back.

Once per tool round (an Assistants run keeps its id across rounds, so the round number is in
the key), per tier and per side of an approval wait: a retried invocation must not submit the
same outputs twice, while the Express call that hands gated calls on, the Standard call that
asks for their approval and the call after the wait are three different steps.
"""

from threadline.runs.state_task import run_state_task
from threadline.runs.steps import RunSteps

handler = run_state_task(
    RunSteps.process_tool_calls, once_per="[run_id, tool_rounds, tier, approval_requested_at]"
)
