"""The daily token budget: its edges, its reset at the next UTC midnight, and a run refused
before anything is written. UsageLedger's own rules over the in-memory ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.unit.fakes import (
    USER,
    EmptyRunQueue,
    FakeClock,
    FakeRunLock,
    FakeRunStore,
    FakeStepFunctions,
    FakeThreadStore,
    FakeUsageLedger,
    tokens_of,
)
from threadline.errors import BudgetExceededError, ServiceUnavailableError, ThreadBusyError
from threadline.models import RunStatus
from threadline.runs.starting import RunLauncher, RunStarter
from threadline.threads.records import Thread
from threadline.usage import budget_resets_at, day_of

BUDGET = 1000
NOON = datetime(2030, 5, 6, 12, 0, tzinfo=UTC)
NEXT_MIDNIGHT = datetime(2030, 5, 7, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOON)


@pytest.fixture
def ledger(clock: FakeClock) -> FakeUsageLedger:
    return FakeUsageLedger(clock)


def spend(ledger: FakeUsageLedger, tokens: int, at: datetime, remote_id: str = "resp_1") -> None:
    assert ledger.count_once(USER, "thr_1", remote_id, tokens_of(tokens), at)


def test_one_token_under_the_budget_may_run(ledger: FakeUsageLedger) -> None:
    spend(ledger, BUDGET - 1, NOON)
    ledger.check_budget(USER, BUDGET)


@pytest.mark.parametrize("used", [BUDGET, BUDGET + 1])
def test_at_or_over_the_budget_is_refused_until_the_next_utc_midnight(
    ledger: FakeUsageLedger, used: int
) -> None:
    spend(ledger, used, NOON)
    with pytest.raises(BudgetExceededError) as refused:
        ledger.check_budget(USER, BUDGET)
    assert (refused.value.used, refused.value.budget) == (used, BUDGET)
    assert refused.value.reset_at == NEXT_MIDNIGHT


def test_no_budget_never_refuses(ledger: FakeUsageLedger) -> None:
    spend(ledger, 10**9, NOON)
    ledger.check_budget(USER, 0)


def test_the_budget_resets_at_utc_midnight_not_before(
    ledger: FakeUsageLedger, clock: FakeClock
) -> None:
    last_second = NEXT_MIDNIGHT - timedelta(seconds=1)
    spend(ledger, BUDGET, last_second)
    clock.current = last_second
    with pytest.raises(BudgetExceededError):
        ledger.check_budget(USER, BUDGET)
    clock.current = NEXT_MIDNIGHT
    ledger.check_budget(USER, BUDGET)
    summary = ledger.summary(USER, daily_token_budget=BUDGET)
    assert summary.remaining_tokens == BUDGET
    assert summary.resets_at == NEXT_MIDNIGHT + timedelta(days=1)
    assert [day.total_tokens for day in summary.recent_days] == [BUDGET]


def test_the_day_is_the_utc_day_whatever_the_callers_zone() -> None:
    late_in_new_york = datetime(2030, 5, 6, 22, 30, tzinfo=timezone(timedelta(hours=-4)))
    assert day_of(late_in_new_york) == "2030-05-07"
    assert budget_resets_at(day_of(late_in_new_york)) == datetime(2030, 5, 8, tzinfo=UTC)
    assert budget_resets_at("2030-12-31") == datetime(2031, 1, 1, tzinfo=UTC)


def test_the_summary_never_reports_negative_remaining_tokens(ledger: FakeUsageLedger) -> None:
    spend(ledger, BUDGET + 50, NOON)
    summary = ledger.summary(USER, daily_token_budget=BUDGET)
    assert summary.remaining_tokens == 0
    assert summary.daily_token_budget == BUDGET
    assert ledger.summary(USER, daily_token_budget=0).remaining_tokens is None


# -- RunStarter: the budget is checked before anything is written ------------------------------


class Starter:
    def __init__(self, clock: FakeClock, ledger: FakeUsageLedger) -> None:
        self.threads = FakeThreadStore(clock)
        self.lock = FakeRunLock(self.threads, clock)
        self.runs = FakeRunStore(clock)
        self.sfn = FakeStepFunctions()
        self.threads.add(
            Thread(
                thread_id="thr_1",
                user_id=USER,
                purpose="chat",
                backend="responses",
                remote_id="thr_1",
                created_at=clock(),
                last_activity=clock(),
            )
        )
        self.starter = RunStarter(
            threads=self.threads,  # type: ignore[arg-type]
            lock=self.lock,  # type: ignore[arg-type]
            runs=self.runs,  # type: ignore[arg-type]
            queue=EmptyRunQueue(self.lock),  # type: ignore[arg-type]
            launcher=RunLauncher(
                runs=self.runs,  # type: ignore[arg-type]
                stepfunctions=self.sfn,  # type: ignore[arg-type]
                state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:run",
                express_state_machine_arn=None,
            ),
            run_timeout_seconds=300,
            usage=ledger,  # type: ignore[arg-type]
            daily_token_budget=BUDGET,
            now=clock,
        )

    def start(self) -> str:
        return self.starter.start(USER, "thr_1", "Hello", "data_analyst").run_id


@pytest.fixture
def starter(clock: FakeClock, ledger: FakeUsageLedger) -> Starter:
    return Starter(clock, ledger)


def test_a_run_within_the_budget_is_recorded_locked_and_started(starter: Starter) -> None:
    run_id = starter.start()
    assert starter.threads.get(USER, "thr_1").active_run_id == run_id
    assert starter.runs.get("thr_1", run_id).execution_arn is not None
    assert [started["name"] for started in starter.sfn.started] == [run_id]


def test_a_run_over_the_budget_is_refused_before_anything_is_written(
    starter: Starter, ledger: FakeUsageLedger
) -> None:
    spend(ledger, BUDGET, NOON)
    with pytest.raises(BudgetExceededError):
        starter.start()
    assert starter.runs.records == {}
    assert starter.threads.get(USER, "thr_1").active_run_id is None
    assert starter.sfn.started == []


def test_a_second_run_on_a_busy_thread_is_refused_and_not_recorded(starter: Starter) -> None:
    first = starter.start()
    with pytest.raises(ThreadBusyError) as refused:
        starter.start()
    assert refused.value.active_run_id == first
    assert len(starter.runs.records) == 1


def test_a_run_whose_execution_could_not_start_is_failed_and_the_thread_freed(
    starter: Starter,
) -> None:
    starter.sfn.fail_with = "ServiceUnavailable"
    with pytest.raises(ServiceUnavailableError):
        starter.start()
    (record,) = starter.runs.records.values()
    assert record.status is RunStatus.FAILED
    assert record.reason is not None
    assert record.reason.startswith("could not start the run's execution")
    assert starter.threads.get(USER, "thr_1").active_run_id is None
    starter.start()  # the thread is usable again
