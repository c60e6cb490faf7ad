"""Which table changes make events: a status set (not written again), an upload settled, a
day crossing the budget - and the template's stream filter passes every one of them."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from moto.events.models import EventPattern

from tests.conftest import template
from threadline.events.changes import ChangeEvents
from threadline.files.records import FileStatus
from threadline.models import RunStatus

EVENTS = ChangeEvents(include_text=False, daily_token_budget=1000)


def run_item(status: RunStatus, **extra: Any) -> dict[str, Any]:
    return {
        "PK": "THREAD#t1",
        "SK": "RUN#r1",
        "run_id": "r1",
        "thread_id": "t1",
        "user_id": "u1",
        "assistant": "data_analyst",
        "message": "What is secret?",
        "output_text": "This.",
        "status": status.value,
        "created_at": "2026-11-29T10:00:00.000000Z",
        "started_at": "2026-11-29T10:00:02.000000Z",
        **extra,
    }


def file_item(status: FileStatus) -> dict[str, Any]:
    return {
        "PK": "THREAD#t1",
        "SK": "FILE#f1",
        "upload_id": "f1",
        "thread_id": "t1",
        "user_id": "u1",
        "filename": "a.csv",
        "content_type": "text/csv",
        "s3_key": "uploads/u1/t1/f1/a.csv",
        "bytes": 10,
        "status": status.value,
        "created_at": "2026-11-29T10:00:00.000000Z",
    }


def day_item(total: int) -> dict[str, Any]:
    return {"PK": "USER#u1", "SK": "USAGE#2026-11-29", "total_tokens": total}


def kinds(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    return [event.detail_type for event in EVENTS.of(old, new)]


def test_a_run_reports_its_start_and_end_once_and_nothing_in_between() -> None:
    queued, going = run_item(RunStatus.QUEUED), run_item(RunStatus.IN_PROGRESS)
    done = run_item(RunStatus.COMPLETED, finished_at="2026-11-29T10:00:05.000000Z")
    assert kinds(None, queued) == []
    assert kinds(queued, going) == ["Run Started"]
    assert kinds(going, {**going, "tool_rounds": 1}) == []
    assert kinds(going, done) == ["Run Completed"]
    assert kinds(done, {**done, "timeline": []}) == []  # a retried finish writes it again
    assert kinds(done, None) == []  # deleted by cleanup

    (event,) = EVENTS.of(going, done)
    assert event.detail.event_id == "r1.completed"
    assert event.detail.model_dump()["queued_seconds"] == 2.0
    assert "secret" not in event.detail.model_dump_json()


def test_run_events_carry_the_text_only_when_the_deployment_says_so() -> None:
    with_text = ChangeEvents(include_text=True, daily_token_budget=0)
    (event,) = with_text.of(run_item(RunStatus.IN_PROGRESS), run_item(RunStatus.FAILED))
    assert event.detail.model_dump()["message"] == "What is secret?"
    assert event.detail.model_dump()["output_text"] == "This."


def test_an_upload_reports_once_it_settles_and_not_when_its_indexing_ends() -> None:
    pending, indexing = file_item(FileStatus.PENDING), file_item(FileStatus.INDEXING)
    assert kinds(None, pending) == []
    assert kinds(pending, indexing) == ["Upload Ingested"]
    assert kinds(indexing, file_item(FileStatus.INGESTED)) == []
    assert kinds(indexing, file_item(FileStatus.FAILED)) == ["Upload Failed"]
    assert kinds(pending, file_item(FileStatus.REJECTED)) == ["Upload Rejected"]
    (event,) = EVENTS.of(pending, file_item(FileStatus.INGESTED))
    assert event.detail.event_id == "f1.ingested"


def test_a_day_reports_the_budget_once_when_it_crosses_it() -> None:
    assert kinds(None, day_item(999)) == []
    assert kinds(day_item(999), day_item(1000)) == ["Budget Exceeded"]
    assert kinds(None, day_item(5000)) == ["Budget Exceeded"]
    assert kinds(day_item(1000), day_item(1500)) == []
    no_budget = ChangeEvents(include_text=False, daily_token_budget=0)
    assert no_budget.of(day_item(0), day_item(10**9)) == []


def stream_record(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    serialise = TypeSerializer().serialize
    change: dict[str, Any] = {
        "Keys": {"PK": serialise(new["PK"]), "SK": serialise(new["SK"])},
        "NewImage": {name: serialise(value) for name, value in new.items()},
    }
    if old is not None:
        change["OldImage"] = {name: serialise(value) for name, value in old.items()}
    return {"eventName": "MODIFY" if old else "INSERT", "dynamodb": change}


def filters(budget: int) -> list[EventPattern]:
    """PublishEvents' stream filters as deployed with DailyTokenBudget `budget`."""
    event = template()["Resources"]["PublishEventsFunction"]["Properties"]["Events"]
    patterns = []
    for entry in event["TableChanges"]["Properties"]["FilterCriteria"]["Filters"]:
        # [HasDailyTokenBudget, the filter, AWS::NoValue]
        chosen = (entry["Fn::If"][1] if budget else None) if "Fn::If" in entry else entry
        if chosen is not None:
            patterns.append(EventPattern.load(chosen["Pattern"]))
    assert len(patterns) <= 5, "Lambda's default quota: five filters per event source"
    return patterns


CHANGES = [
    *itertools.product([None, *map(run_item, RunStatus)], map(run_item, RunStatus)),
    *itertools.product([None, *map(file_item, FileStatus)], map(file_item, FileStatus)),
    (day_item(999), day_item(1000)),
    (None, day_item(1000)),
]


@pytest.mark.parametrize("budget", [0, 1000])
def test_the_stream_filter_passes_every_change_that_makes_an_event(budget: int) -> None:
    events = ChangeEvents(include_text=False, daily_token_budget=budget)
    patterns = filters(budget)
    passed = 0
    for old, new in CHANGES:
        record = json.loads(json.dumps(stream_record(old, new), default=str))
        if events.of(old, new):
            assert any(p.matches_event(record) for p in patterns), (old, new)
            passed += 1
    assert passed >= 10  # the starts and ends of runs, settled uploads (and a crossed budget)


def test_the_stream_filter_keeps_the_writes_that_make_no_event_away() -> None:
    patterns = filters(1000)
    quiet = [
        (run_item(RunStatus.IN_PROGRESS), run_item(RunStatus.IN_PROGRESS)),
        (run_item(RunStatus.COMPLETED), run_item(RunStatus.COMPLETED)),
        (None, run_item(RunStatus.QUEUED)),
        (None, file_item(FileStatus.PENDING)),
        (None, {"PK": "THREAD#t1", "SK": "REMOTE#resp_1", "total_tokens": 5}),
    ]
    for old, new in quiet:
        record = json.loads(json.dumps(stream_record(old, new), default=str))
        assert not any(p.matches_event(record) for p in patterns), (old, new)


def test_long_texts_are_cut_so_the_event_fits_an_eventbridge_entry() -> None:
    with_text = ChangeEvents(include_text=True, daily_token_budget=0)
    long_answer = "é" * 100_000  # 200 KB in UTF-8
    (event,) = with_text.of(
        run_item(RunStatus.IN_PROGRESS),
        run_item(RunStatus.COMPLETED, output_text=long_answer, message="q" * 300_000),
    )
    detail = event.detail.model_dump_json(exclude_none=True)
    assert len(detail.encode()) < 256 * 1024
    dumped = event.detail.model_dump()
    assert dumped["text_truncated"] is True
    assert long_answer.startswith(dumped["output_text"])
    assert len(dumped["output_text"].encode()) <= 64 * 1024
