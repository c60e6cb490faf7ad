"""CancelRun: cancel a remote run that passed its deadline."""

from threadline.run_steps import RunSteps
from threadline.state_task import run_state_task

handler = run_state_task(RunSteps.cancel_run)
