"""A Standard execution's history holds 25,000 events: however the waits are configured and
however long a run may last, its checks fit. The run is walked through `while_running` as the
state machine walks it (each check one more poll), the history's events counted as Step
Functions counts them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from threadline.runs.polling import HISTORY_EVENTS_LIMIT, while_running
from threadline.runs.state import RunState, TimelineEntry
from threadline.settings import Settings, WaitMode

START = datetime(2030, 1, 1, tzinfo=UTC)
DAY = 86_400
# Step Functions' events: the start (ExecutionStarted, Begin, StartRun's task), each poll
# (RouteOnStatus, the Wait, CheckRun's task) or webhook wait that times out (RouteOnStatus,
# WaitForWebhook's callback task, CheckRun's task), a tool round (RouteOnStatus,
# ProcessToolCalls' task), the end (RouteOnStatus, CancelRun, FinishRun, RouteOnOutcome, the
# Fail state, ExecutionFailed).
START_EVENTS = 1 + 2 + 5
POLL_EVENTS = 2 + 2 + 5
WEBHOOK_WAIT_EVENTS = 2 + 6 + 5
TOOL_ROUND_EVENTS = 2 + 5
END_EVENTS = 2 + 5 + 5 + 2 + 1 + 1


def events_of_a_run(
    wait_mode: WaitMode, *, tool_round_every: int | None = None, max_tool_rounds: int = 32
) -> int:
    """The history's events of a run that lasts until its deadline, at the tightest waits the
    template allows, asking for tools every `tool_round_every` checks up to its limit."""
    settings = Settings(
        table_name="table",
        bucket_name="bucket",
        max_tool_rounds=max_tool_rounds,
        run_timeout_seconds=DAY,
        poll_initial_seconds=0,
        poll_max_seconds=1,
        webhook_wait_seconds=1,
        webhook_wait_max_seconds=1,
        express_tier_seconds=0,
    )
    state = RunState(
        run_id="run_1",
        thread_id="thr_1",
        user_id="alice",
        started_at=START,
        deadline=START + timedelta(seconds=DAY),
        wait_mode=wait_mode,
    )
    now = START
    events = START_EVENTS
    state = state.model_copy(update=while_running(state, settings, now))
    while now < START + timedelta(seconds=DAY):
        wait = state.webhook_wait_seconds if wait_mode == "push" else state.wait_seconds
        now += timedelta(seconds=wait)
        events += WEBHOOK_WAIT_EVENTS if wait_mode == "push" else POLL_EVENTS
        state = state.model_copy(update={"polls": state.polls + 1})
        asks = tool_round_every and state.polls % tool_round_every == 0
        if asks and state.tool_rounds < settings.max_tool_rounds:
            events += TOOL_ROUND_EVENTS
            entry = TimelineEntry(step="tool_round", tier="standard", at=now, checks=state.polls)
            state = state.model_copy(
                update={
                    "tool_rounds": state.tool_rounds + 1,
                    "timeline": [*state.timeline, entry],
                    "polls": 0,
                }
            )
        state = state.model_copy(update=while_running(state, settings, now, after_check=True))
    return events + END_EVENTS


@pytest.mark.parametrize("wait_mode", ["poll", "push"])
@pytest.mark.parametrize(("tool_round_every", "max_tool_rounds"), [(None, 32), (3, 32), (None, 1)])
def test_a_day_long_run_at_the_tightest_waits_fits_its_history(
    wait_mode: WaitMode, tool_round_every: int | None, max_tool_rounds: int
) -> None:
    """At one-second waits a day is 86,400 checks: 777,600 events. The waits stretch, and
    the whole run stays inside the limit, with room for retries. With one tool round allowed
    there is room for over 1,751 checks without a round, where 1.5 ** checks overflows."""
    events = events_of_a_run(
        wait_mode, tool_round_every=tool_round_every, max_tool_rounds=max_tool_rounds
    )
    assert events <= HISTORY_EVENTS_LIMIT - 1_000, events
    assert events > HISTORY_EVENTS_LIMIT / 2  # the checks are spread, not given up


def test_a_short_run_keeps_its_configured_waits() -> None:
    """The stretch binds only where the history would not hold the checks: a five-minute run
    at the test's zero-second waits still checks at once."""
    settings = Settings(table_name="table", bucket_name="bucket", poll_initial_seconds=0)
    state = RunState(
        run_id="run_1",
        thread_id="thr_1",
        user_id="alice",
        started_at=START,
        deadline=START + timedelta(seconds=300),
    )
    assert while_running(state, settings, START)["wait_seconds"] == 0
