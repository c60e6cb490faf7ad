"""Threadline's events on the local stack: the table's stream, PublishEvents and the event
bus, subscribed to as an operator would (an EventBridge rule with an SQS queue as target).

Each change is published once: a step that dies after its write and is retried publishes
nothing more, and a publisher that dies before its PutEvents publishes on its retry; one that
dies after it publishes again with the same `event_id`, which is what subscribers dedupe on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventsBackend

from local.aws.lambda_runtime import Death
from local.aws.s3_browser import post_presigned
from local.event_log import EventQueue, event_log
from local.openai_server import Step
from local.stack_session import LocalThreadline, local_threadline
from tests.integration.conftest import RunDriver
from tests.integration.lambda_api import Client
from threadline import runtime
from threadline.events.changes import TEXT_LIMIT_BYTES, RunEventDetail, ThreadlineEvent
from threadline.ids import new_id
from threadline.models import RunStatus, Usage

BUDGET = 200  # tokens a day: a few local runs cross it


@pytest.fixture(scope="module")
def product() -> Iterator[LocalThreadline]:
    parameters = {"Backend": "responses", "DailyTokenBudget": str(BUDGET)}
    with local_threadline(parameters=parameters) as session:
        yield session


class Subscriber:
    """Every Threadline event, through a queue subscribed to the bus."""

    def __init__(self, product: LocalThreadline) -> None:
        self.product = product
        self._queue = EventQueue(product.stack, new_id("subscriber"))
        self._kept: list[dict[str, Any]] = []

    def received(self, *, about: str) -> list[dict[str, Any]]:
        """Every event received so far whose detail names `about` (a run, upload or user)."""
        self.product.stack.event_sources.wait_idle(30)
        self._kept.extend(self._queue.take())
        return [event for event in self._kept if about in event["detail"].values()]


@pytest.fixture
def subscriber(product: LocalThreadline) -> Subscriber:
    return Subscriber(product)


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [event["detail-type"] for event in events]


def test_a_run_publishes_its_start_and_its_end_once_without_its_text(
    alice: Client, subscriber: Subscriber
) -> None:
    thread_id = alice.thread()
    alice.script(thread_id, Step.say("Forty-two."))
    run = alice.finished_run(thread_id, "What is the answer?")

    events = subscriber.received(about=run["id"])
    assert kinds(events) == ["Run Started", "Run Completed"]
    completed = events[1]
    assert completed["source"] == "threadline"
    detail = completed["detail"]
    assert detail["version"] == "1"
    assert detail["event_id"] == f"{run['id']}.completed"
    assert detail["user_id"] == alice.user
    assert detail["thread_id"] == thread_id
    assert detail["status"] == "completed"
    assert detail["usage"] == run["usage"]
    assert detail["duration_seconds"] == run["duration_seconds"]
    assert detail["callback"] is False
    text = json.dumps(events)
    assert "What is the answer?" not in text
    assert "Forty-two." not in text


def test_a_failed_run_says_why(alice: Client, subscriber: Subscriber) -> None:
    thread_id = alice.thread()
    alice.script(thread_id, Step.fail("rate_limit_exceeded", "slow down"))
    run = alice.finished_run(thread_id, "Hello?")
    assert run["status"] == "failed"

    events = subscriber.received(about=run["id"])
    assert kinds(events) == ["Run Started", "Run Failed"]
    assert events[1]["detail"]["reason"] == run["reason"]


@pytest.mark.parametrize("when", ["before_work", "after_work"])
def test_steps_retried_after_dying_publish_each_change_once(
    driver: RunDriver, subscriber: Subscriber, when: Death
) -> None:
    product = driver.product
    thread = driver.new_thread()
    assert product.openai is not None
    product.openai.script.extend(
        [Step.call("get_table_schema", {"table_name": "sales"}), Step.say("42")],
        key=thread.remote_id,
    )
    for step in ("StartRunFunction", "ProcessToolCallsFunction", "FinishRunFunction"):
        product.lambda_deaths.plan(product.stack.function(step).name, when)
    _, record = driver.run(thread, "How many?")
    assert record.status == "completed"

    assert kinds(subscriber.received(about=record.run_id)) == ["Run Started", "Run Completed"]


def test_a_publisher_that_dies_publishes_on_its_retry_with_the_same_event_ids(
    alice: Client, subscriber: Subscriber
) -> None:
    product = alice.product
    publisher = product.stack.function("PublishEventsFunction").name
    # The run's start: first the environment dies before publishing, then on the retry after.
    product.lambda_deaths.plan(publisher, "before_work")
    product.lambda_deaths.plan(publisher, "after_work")
    thread_id = alice.thread()
    alice.script(thread_id, Step.say("Done."))
    run = alice.finished_run(thread_id, "Go")

    events = subscriber.received(about=run["id"])
    assert kinds(events) == ["Run Started", "Run Started", "Run Completed"]
    assert len({event["detail"]["event_id"] for event in events}) == 2


def test_uploads_and_the_budget_publish_when_they_settle_and_cross(
    alice: Client, subscriber: Subscriber
) -> None:
    thread_id = alice.thread()
    status, upload, _ = alice.call(
        "POST",
        f"/threads/{thread_id}/files",
        {"filename": "notes.txt", "content_type": "text/plain", "size": 5},
    )
    assert status == 201, upload
    assert post_presigned(upload["url"], upload["fields"], "notes.txt", b"hello") == 204

    uploaded = subscriber.received(about=upload["upload_id"])
    assert kinds(uploaded) == ["Upload Ingested"]
    assert uploaded[0]["detail"]["bytes"] == 5

    alice.script(thread_id, Step.say("An answer."))
    alice.finished_run(thread_id, "One run crosses the budget")
    status, refused, _ = alice.call("POST", f"/threads/{thread_id}/runs", {"message": "More?"})
    assert status == 429, refused
    crossed = [e for e in subscriber.received(about=alice.user) if "day" in e["detail"]]
    assert kinds(crossed) == ["Budget Exceeded"]
    assert crossed[0]["detail"]["daily_token_budget"] == BUDGET
    assert crossed[0]["detail"]["total_tokens"] >= BUDGET


def test_the_local_event_log_keeps_each_event_as_a_json_line(alice: Client, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    with event_log(alice.product.stack, log, poll_seconds=0.01):
        thread_id = alice.thread()
        alice.script(thread_id, Step.say("Logged."))
        run = alice.finished_run(thread_id, "Log it")
        alice.product.stack.event_sources.wait_idle(30)
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["detail-type"] for e in logged if e["detail"].get("run_id") == run["id"]] == [
        "Run Started",
        "Run Completed",
    ]


def stream_record(sequence: int, run_id: str, was: str, now: str) -> dict[str, Any]:
    """A run's status change as the table's stream hands it to PublishEvents."""

    def image(status: str) -> dict[str, Any]:
        return {
            "PK": {"S": "THREAD#thr_x"},
            "SK": {"S": f"RUN#{run_id}"},
            "run_id": {"S": run_id},
            "thread_id": {"S": "thr_x"},
            "user_id": {"S": "carol"},
            "assistant": {"S": "data_analyst"},
            "status": {"S": status},
            "created_at": {"S": "2026-11-29T10:00:00.000000Z"},
        }

    return {
        "eventID": f"e{sequence}",
        "eventName": "MODIFY",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"PK": {"S": "THREAD#thr_x"}, "SK": {"S": f"RUN#{run_id}"}},
            "OldImage": image(was),
            "NewImage": image(now),
            "SequenceNumber": str(sequence),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


def test_a_refused_put_holds_back_its_items_later_records_so_order_holds(
    product: LocalThreadline, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, other_run_id = new_id("run"), new_id("run")
    batch = {
        "Records": [
            stream_record(1, run_id, "queued", "in_progress"),
            stream_record(2, other_run_id, "queued", "in_progress"),
            stream_record(3, run_id, "in_progress", "completed"),
        ]
    }
    refusals = [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}]

    def refuse_once(backend: EventsBackend, entries: list[dict[str, Any]]) -> Any:
        monkeypatch.undo()
        return refusals * len(entries)

    monkeypatch.setattr(EventsBackend, "put_events", refuse_once)
    result = product.stack.invoke("PublishEventsFunction", batch)
    assert result["batchItemFailures"] == [{"itemIdentifier": "1"}, {"itemIdentifier": "3"}]
    assert subscriber.received(about=run_id) == []
    assert kinds(subscriber.received(about=other_run_id)) == ["Run Started"]

    # Lambda retries from the first reported record: the start, then the end.
    assert product.stack.invoke("PublishEventsFunction", batch) == {"batchItemFailures": []}
    assert kinds(subscriber.received(about=run_id)) == ["Run Started", "Run Completed"]


def test_ten_runs_ending_together_with_their_texts_are_all_published(
    subscriber: Subscriber,
) -> None:
    """With EventsIncludeText a run event carries up to 64 KB of each text: ten in one
    PutEvents request are over its 256 KB, which EventBridge refuses whole (the local stack
    too). They go in as many requests as their size needs, every one published."""
    user = new_id("user")
    now = datetime.now(UTC)
    events = [
        ThreadlineEvent(
            detail_type="Run Completed",
            detail=RunEventDetail(
                event_id=f"run_{index}.completed",
                user_id=user,
                run_id=f"run_{index}",
                thread_id="thr_1",
                assistant="data_analyst",
                status=RunStatus.COMPLETED,
                created_at=now,
                usage=Usage(),
                tool_rounds=0,
                callback=False,
                message="問" * (TEXT_LIMIT_BYTES // 3),
                output_text="答" * (TEXT_LIMIT_BYTES // 3),
            ),
        )
        for index in range(10)
    ]
    runtime.current().event_publisher().publish(events)
    received = subscriber.received(about=user)
    assert sorted(event["detail"]["run_id"] for event in received) == [
        f"run_{index}" for index in range(10)
    ]
