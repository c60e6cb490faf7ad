"""A run's finishing transaction against moto's DynamoDB: the outcome, the finished run and
each of its responses' tokens, once, whoever counted some of them first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from threadline.models import RunStatus, Usage
from threadline.runs.records import RunOutcome, RunRecord, RunStore
from threadline.usage import MAX_COUNTED_WITH_RUN, UsageLedger

AT = datetime(2030, 5, 6, 12, 0, tzinfo=UTC)
USER = "user-1"
THREAD = "thr_1"


def tokens(total: int) -> Usage:
    return Usage(input_tokens=total - 1, output_tokens=1, total_tokens=total)


@pytest.fixture
def runs(table: Any) -> RunStore:
    store = RunStore(table, now=lambda: AT)
    record = RunRecord(
        run_id="run_1",
        thread_id=THREAD,
        user_id=USER,
        assistant="data_analyst",
        message="hello",
        created_at=AT,
    )
    assert store.put_new(record)
    return store


@pytest.fixture
def ledger(table: Any) -> UsageLedger:
    return UsageLedger(table, now=lambda: AT)


def finishing(runs: RunStore) -> dict[str, Any]:
    outcome = RunOutcome(
        status=RunStatus.COMPLETED, finished_at=AT, duration_seconds=1.0, usage=Usage()
    )
    return runs.finish_update(THREAD, "run_1", outcome)


def test_the_run_and_its_tokens_are_counted_once_with_its_outcome(
    runs: RunStore, ledger: UsageLedger
) -> None:
    settled = {"resp_a": tokens(10), "resp_b": tokens(5)}
    assert ledger.count_finished_run(finishing(runs), USER, THREAD, settled, AT) is True
    assert ledger.count_finished_run(finishing(runs), USER, THREAD, settled, AT) is False
    day = ledger.today(USER)
    assert (day.runs, day.total_tokens, day.input_tokens) == (1, 15, 13)
    assert runs.get(THREAD, "run_1").status is RunStatus.COMPLETED
    assert sorted(ledger.counted_objects(THREAD)) == ["resp_a", "resp_b"]


def test_a_response_its_webhook_counted_first_is_left_out_and_the_rest_counted(
    runs: RunStore, ledger: UsageLedger
) -> None:
    assert ledger.count_once(USER, THREAD, "resp_b", tokens(5), AT)  # the webhook, first
    settled = {"resp_a": tokens(10), "resp_b": tokens(5), "resp_c": tokens(2)}
    assert ledger.count_finished_run(finishing(runs), USER, THREAD, settled, AT) is True
    day = ledger.today(USER)
    assert (day.runs, day.total_tokens) == (1, 17)
    assert runs.get(THREAD, "run_1").finished_at == AT


def test_a_run_with_more_responses_than_a_transaction_takes_counts_them_all(
    runs: RunStore, ledger: UsageLedger
) -> None:
    count = MAX_COUNTED_WITH_RUN + 7
    settled = {f"resp_{index:03}": tokens(2) for index in range(count)}
    assert ledger.count_finished_run(finishing(runs), USER, THREAD, settled, AT) is True
    assert ledger.count_finished_run(finishing(runs), USER, THREAD, settled, AT) is False
    assert ledger.today(USER).total_tokens == 2 * count
    assert len(ledger.counted_objects(THREAD)) == count
