"""CheckRun: read the remote run's status and decide what comes next."""

from threadline.runs.state_task import run_state_task
from threadline.runs.steps import RunSteps

handler = run_state_task(RunSteps.check_run)
