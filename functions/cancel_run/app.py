"""CancelRun: cancel a remote run that passed its deadline."""

from threadline.runs.state_task import run_state_task
from threadline.runs.steps import RunSteps

handler = run_state_task(RunSteps.cancel_run)
