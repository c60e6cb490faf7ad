"""The run-length model walks the product's own waiting rules: what it counts for a run of a
given length follows from the template's defaults."""

from __future__ import annotations

from bench.measurements import LambdaUsage, ModeResult
from bench.run_lengths import Design, walk


def design(**parameters: str) -> Design:
    return Design("threadline", parameters, ModeResult("threadline", "", [], LambdaUsage()))


def test_a_short_run_is_checked_every_second_in_express_and_costs_no_transition() -> None:
    default = design()
    counted = walk(default.settings, default.wait_mode, 5, 0)
    assert counted.express_executions == 1
    assert counted.express_seconds == 5
    assert counted.status_calls == 5
    assert counted.transitions == 0
    assert counted.detected_by == "express"
    assert "HandOffRunFunction" not in counted.invocations


def test_an_hour_long_run_is_handed_off_and_woken_by_its_webhook() -> None:
    default = design()
    counted = walk(default.settings, default.wait_mode, 3600, 0)
    assert counted.express_seconds == 180
    assert counted.invocations["HandOffRunFunction"] == 1
    assert counted.detected_by == "webhook"
    # After the hand-off at 180 s, waits of 120, 240, 480, 900, 900 s end without the webhook
    # (checks at 300, 540, 1020, 1920, 2820 s); the next one is woken at 3600 s.
    assert counted.invocations["CheckRunFunction"] - 180 == 5
    assert counted.status_calls < 190


def test_without_webhooks_the_standard_tier_polls_at_its_longest_interval() -> None:
    polling = design(RunWaitMode="poll")
    counted = walk(polling.settings, polling.wait_mode, 3600, 1)
    assert counted.detected_by == "poll"
    assert counted.last_interval_s == 15
    assert counted.transitions > 3 * (3600 - 180) / 15 * 0.9
