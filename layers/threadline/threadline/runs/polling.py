"""How long the state machine waits before it checks a run again."""

from __future__ import annotations

GROWTH = 1.5


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
