"""How a run that is still going waits before it is checked again.

A Standard execution's history holds at most 25,000 events, and a check adds about nine (the
router, the wait, CheckRun's task; thirteen for a webhook wait that times out). However the
intervals are set and however long the run may last, its waits stretch so that the checks
left fit what is left of the history: each wait is at least the time to the deadline over
the checks left (so the deadline comes before they run out).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from threadline.runs.state import RunState
from threadline.settings import Settings

GROWTH = 1.5
# By this many polls any interval has grown to its maximum (and 1.5 ** 1751 overflows a float:
# a run with few tool rounds has room for more checks than that).
GROWN_POLLS = 100
HISTORY_EVENTS_LIMIT = 25_000
# Start, finish, a cancel, retries: the events that are not checks or tool rounds.
HISTORY_EVENTS_RESERVED = 2_000
EVENTS_PER_TOOL_ROUND = 40  # a round, an approval wait, their routers and some retries
EVENTS_PER_CHECK = 13  # a webhook wait that timed out, then the check (a poll is 9)


def history_checks(settings: Settings) -> int:
    """How many checks a Standard execution's history has room for."""
    rounds = settings.max_tool_rounds * EVENTS_PER_TOOL_ROUND
    return (HISTORY_EVENTS_LIMIT - HISTORY_EVENTS_RESERVED - rounds) // EVENTS_PER_CHECK


def checks_made(state: RunState) -> int:
    """The checks the run's Standard execution has made so far."""
    earlier = sum(entry.checks for entry in state.timeline if entry.tier == "standard")
    return earlier + (state.polls if state.tier == "standard" else 0)


def shortest_wait(state: RunState, settings: Settings, seconds_to_deadline: float) -> int:
    """The whole seconds below which the checks left would not fit the history before the
    deadline. Under half a second it is 0: checks at once use up checks, which raises it,
    and from half a second on every wait is at least its share (rounded up)."""
    left = history_checks(settings) - checks_made(state)
    share = seconds_to_deadline / left if left > 1 else seconds_to_deadline
    return math.ceil(share) if share >= 0.5 else 0


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
    floor = shortest_wait(state, settings, seconds_to_deadline)
    if state.wait_mode == "push":
        # The run's first wait is the shortest; each that ended without its webhook doubles,
        # for the rest of the run (a long run pays for few checks); none sleeps past the
        # deadline (by then the run is cancelled).
        wait = state.webhook_wait_seconds or settings.webhook_wait_seconds
        wait = wait * 2 if after_check else wait
        wait = max(min(wait, settings.webhook_wait_max_seconds), floor)
        wait = min(wait, math.ceil(seconds_to_deadline))
        return {"next": "wait_for_webhook", "webhook_wait_seconds": max(wait, 1)}
    return {
        "next": "wait",
        "wait_seconds": next_wait_seconds(
            state.polls,
            initial=max(settings.poll_initial_seconds, floor),
            maximum=max(settings.poll_max_seconds, floor),
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
    wait = min(maximum, initial * GROWTH ** min(polls_so_far, GROWN_POLLS))
    if poll_hint is not None:
        wait = max(wait, min(poll_hint, maximum))
    wait = min(wait, max(seconds_to_deadline, 0.0))
    return round(wait)
