"""A scheduled job runs one invocation at a time, by a lease on the table (moto's DynamoDB,
the table as template.yaml declares it): no reserved concurrency needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from threadline.store.job_lease import JobLease

MINUTE_MS = 60_000


class Clock:
    def __init__(self) -> None:
        self.moment = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment


def test_a_second_invocation_finds_the_job_held_and_the_next_one_takes_it(table: Any) -> None:
    lease = JobLease(table)
    with lease.held("cleanup", "request-1", for_ms=MINUTE_MS) as first:
        with lease.held("cleanup", "request-2", for_ms=MINUTE_MS) as second:
            assert (first, second) == (True, False)
        with lease.held("sweep_uploads", "request-3", for_ms=MINUTE_MS) as other_job:
            assert other_job
    with lease.held("cleanup", "request-4", for_ms=MINUTE_MS) as after:
        assert after


def test_a_holder_that_died_keeps_the_job_only_until_its_time_ran_out(table: Any) -> None:
    clock = Clock()
    lease = JobLease(table, now=clock)
    dying = lease.held("cleanup", "request-1", for_ms=MINUTE_MS)
    assert dying.__enter__()  # and never exits: its environment died
    with lease.held("cleanup", "request-2", for_ms=MINUTE_MS) as meanwhile:
        assert not meanwhile
    clock.moment += timedelta(minutes=2)
    with lease.held("cleanup", "request-2", for_ms=MINUTE_MS) as later:
        assert later
