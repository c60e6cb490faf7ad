"""The expected detection delay of a poller, from the intervals between its checks."""

from __future__ import annotations

import pytest

from bench.measurements import LambdaUsage, ModeResult, RunMeasurement


def mode(*runs: tuple[tuple[float, ...], float | None]) -> ModeResult:
    return ModeResult(
        label="poller",
        description="",
        runs=[
            RunMeasurement(
                run_index=index,
                length_s=5,
                status="completed",
                tool_rounds=0,
                status_calls=len(intervals),
                state_transitions=0,
                lambda_invocations=1,
                detection_delay_s=0.5,
                end_to_end_s=5,
                check_intervals_s=intervals,
                check_latency_s=latency,
            )
            for index, (intervals, latency) in enumerate(runs)
        ],
        lambda_usage=LambdaUsage(),
    )


def test_a_steady_one_second_poller_is_half_a_second_late_plus_its_latency() -> None:
    steady = mode(((1.0,) * 5, 0.02), ((1.0,) * 3, 0.04))
    assert steady.expected_detection_delay_s() == pytest.approx(0.5 + 0.03)


def test_uneven_intervals_cost_more_than_their_mean_says() -> None:
    """A finish falls in a long interval more often than in a short one."""
    uneven = mode(((0.5, 1.5), 0.0))
    assert uneven.expected_detection_delay_s() == pytest.approx((0.25 + 2.25) / 4)


def test_a_mode_that_never_checked_has_no_expected_delay() -> None:
    assert mode(((), None)).expected_detection_delay_s() is None
