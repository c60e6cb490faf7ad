"""A scheduled job runs one invocation at a time, by a lease on the table (moto's DynamoDB,
the table as template.yaml declares it): no reserved concurrency needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from threadline.store.job_lease import JobLease, one_at_a_time

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


class Context:
    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return MINUTE_MS


def test_a_handler_run_one_at_a_time_does_nothing_while_another_runs(table: Any) -> None:
    lease = JobLease(table)
    ran: list[str] = []

    @one_at_a_time("cleanup", lambda: lease)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        ran.append(context.aws_request_id)
        if event.get("again"):  # a second invocation arrives while this one runs
            assert handler({}, Context("request-2")) == {"skipped": "another cleanup is running"}
        return {"done": True}

    assert handler({"again": True}, Context("request-1")) == {"done": True}
    assert handler({}, Context("request-3")) == {"done": True}
    assert ran == ["request-1", "request-3"]
