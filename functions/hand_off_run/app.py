"""HandOffRun: continue a run whose Express stretch is over in its Standard execution."""

from threadline.runs.state_task import run_state_task
from threadline.runs.tiers import RunHandOff
from threadline.runtime import Runtime

handler = run_state_task(RunHandOff.hand_off, part=Runtime.run_hand_off)
