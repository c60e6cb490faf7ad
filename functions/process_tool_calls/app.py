"""ProcessToolCalls: run the requested tools concurrently and hand all outputs back."""

from threadline.run_steps import RunSteps
from threadline.state_task import run_state_task

handler = run_state_task(RunSteps.process_tool_calls)
