"""How a run that is still going waits before it is checked again."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from threadline.runs.state import RunState
from threadline.settings import Settings

GROWTH = 1.5


def while_running(
    state: RunState,
    settings: Settings,
    now: datetime,
    poll_hint: float | None = None,
    *,
    after_check: bool = False,
) -> dict[str, Any]:
    """Where a run that is still going goes next (the run-state fields to set): in the Express
    tier a short wait until its stretch is over, then the hand-off; in Standard a wait for the
    webhook (push mode) or a timed wait that grows. `after_check`: a check found it going
    (rather than a turn starting)."""
    if state.tier == "express":
        # The last check starts within the stretch, so what may follow it fits in the rest of
        # the Express execution's five minutes.
        next_check = now + timedelta(seconds=settings.express_poll_seconds)
        if next_check <= state.express_until(settings.express_tier_seconds):
            return {"next": "wait", "wait_seconds": settings.express_poll_seconds}
        return {"next": "hand_off"}
    seconds_to_deadline = (state.deadline - now).total_seconds() if state.deadline else 0.0
    if state.wait_mode == "push":
        # The run's first wait is the shortest; each that ended without its webhook doubles,
        # for the rest of the run (a long run pays for few checks); none sleeps past the
        # deadline (by then the run is cancelled).
        wait = state.webhook_wait_seconds or settings.webhook_wait_seconds
        wait = wait * 2 if after_check else wait
        wait = min(wait, settings.webhook_wait_max_seconds, math.ceil(seconds_to_deadline))
        return {"next": "wait_for_webhook", "webhook_wait_seconds": max(wait, 1)}
    return {
        "next": "wait",
        "wait_seconds": next_wait_seconds(
            state.polls,
            initial=settings.poll_initial_seconds,
            maximum=settings.poll_max_seconds,
            poll_hint=poll_hint,
            seconds_to_deadline=seconds_to_deadline,
        ),
    }


def next_wait_seconds(
    polls_so_far: int,
    *,
    initial: float,
    maximum: float,
    poll_hint: float | None,
    seconds_to_deadline: float,
) -> int:
    """Grow the interval geometrically up to `maximum`, never poll sooner than the server
    asks (its `openai-poll-after-ms`), and never sleep past the run's deadline.

    Wait states take whole seconds, so the result is rounded to the nearest one.
    """
    wait = min(maximum, initial * GROWTH**polls_so_far)
    if poll_hint is not None:
        wait = max(wait, min(poll_hint, maximum))
    wait = min(wait, max(seconds_to_deadline, 0.0))
    return round(wait)
