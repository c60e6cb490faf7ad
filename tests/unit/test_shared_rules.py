"""Rules several modules share, each defined once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from threadline.errors import REASON_LIMIT, short_reason
from threadline.threads.run_lock import LOCK_LEASE_MARGIN, run_lock_lease
from threadline.usage import budget_resets_at, day_of


def test_a_recorded_reason_keeps_the_limit() -> None:
    assert short_reason("timeout: took too long") == "timeout: took too long"
    assert short_reason("x" * (REASON_LIMIT + 1)) == "x" * REASON_LIMIT


def test_the_budget_resets_at_the_next_utc_midnight() -> None:
    assert budget_resets_at("2026-11-24") == datetime(2026, 11, 25, tzinfo=UTC)
    assert budget_resets_at("2026-12-31") == datetime(2027, 1, 1, tzinfo=UTC)
    late = datetime(2026, 11, 24, 23, 59, 59, tzinfo=UTC)
    assert budget_resets_at(day_of(late)) - late == timedelta(seconds=1)


def test_a_run_lock_outlives_the_run_timeout_by_the_margin() -> None:
    assert run_lock_lease(300) == timedelta(seconds=300) + LOCK_LEASE_MARGIN
