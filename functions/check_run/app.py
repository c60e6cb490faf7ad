"""CheckRun: read the remote run's status and decide what comes next."""

from threadline.run_steps import RunSteps
from threadline.state_task import run_state_task

handler = run_state_task(RunSteps.check_run)
