"""ProcessToolCalls: run the requested tools concurrently and hand all outputs back.

Once per tool round (an Assistants run keeps its id across rounds, so the round number is in
the key): a retried invocation must not submit the same outputs twice.
"""

from threadline.runs.state_task import run_state_task
from threadline.runs.steps import RunSteps

handler = run_state_task(RunSteps.process_tool_calls, once_per="[run_id, tool_rounds]")
