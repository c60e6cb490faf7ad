"""A busy thread's policy (`if_busy`): runs asked for while a run is active are refused, or
queued and started in arrival order as the thread frees, however the run before them ended;
a queued run can be cancelled; the queue holds ten. Through the HTTP API on the local stack."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.aws import fire_schedule
from local.chaos import history_at_server
from local.openai_server import Step
from local.stack_session import LocalThreadline, local_threadline
from tests.integration.lambda_api import Client
from threadline import runtime
from threadline.backends.base import RunHandle
from threadline.ids import new_id
from threadline.runs.records import RunRecord
from threadline.threads.run_queue import MAX_QUEUED


@pytest.fixture(scope="module")
def product() -> Iterator[LocalThreadline]:
    with local_threadline(parameters={"Backend": "responses"}) as session:
        yield session


def ask(alice: Client, thread_id: str, message: str, if_busy: str = "reject") -> tuple[int, Any]:
    status, body, _ = alice.call(
        "POST", f"/threads/{thread_id}/runs", {"message": message, "if_busy": if_busy}
    )
    return status, body


def run_view(alice: Client, thread_id: str, run_id: str) -> dict[str, Any]:
    status, body, _ = alice.call("GET", f"/threads/{thread_id}/runs/{run_id}")
    assert status == 200, body
    return body


def wait_until_started(alice: Client, thread_id: str, run_id: str) -> None:
    deadline = time.monotonic() + 30
    while run_view(alice, thread_id, run_id)["started_at"] is None:
        assert time.monotonic() < deadline, f"run {run_id} did not start"
        time.sleep(0.02)


def cancel_when_started(alice: Client, thread_id: str, run_id: str) -> None:
    """Cancel the active run once it has a remote response to cancel (a run still starting
    cannot be cancelled yet: 409 run_starting)."""
    wait_until_started(alice, thread_id, run_id)
    status, body, _ = alice.call("POST", f"/threads/{thread_id}/runs/{run_id}/cancel")
    assert status == 202, body


def test_queued_runs_start_in_order_however_the_one_before_ended(alice: Client) -> None:
    thread_id = alice.thread()
    for step in (Step.hang(), Step.fail(), Step.say("third")):
        alice.script(thread_id, step)
    status, first = ask(alice, thread_id, "one")
    assert status == 202
    status, refused = ask(alice, thread_id, "not now")
    assert status == 409
    assert refused["error"]["code"] == "run_active"
    status, second = ask(alice, thread_id, "two", "enqueue")
    assert (status, second["status"], second["queue_position"]) == (202, "queued", 1)
    status, third = ask(alice, thread_id, "three", "enqueue")
    assert (status, third["queue_position"]) == (202, 2)
    assert run_view(alice, thread_id, second["id"])["queue_position"] == 1

    cancel_when_started(alice, thread_id, first["id"])
    for run in (first, second, third):
        alice.product.wait_for_run(run["id"])
    runs = [run_view(alice, thread_id, run["id"]) for run in (first, second, third)]
    assert [run["status"] for run in runs] == ["cancelled", "failed", "completed"]
    assert runs[0]["finished_at"] <= runs[1]["started_at"]
    assert runs[1]["finished_at"] <= runs[2]["started_at"]
    assert all(run["queue_position"] is None for run in runs)
    thread = runtime.current().thread_store().get(alice.user or "", thread_id)
    assert (thread.active_run_id, thread.queued_runs) == (None, 0)
    assert alice.product.openai is not None
    history = history_at_server(alice.product.openai, thread)
    assert [text for _role, text in history] == ["three", "third"]


def test_a_queued_run_cancelled_leaves_the_queue_and_the_rest_move_up(alice: Client) -> None:
    thread_id = alice.thread()
    alice.script(thread_id, Step.hang())
    alice.script(thread_id, Step.say("third"))
    _status, first = ask(alice, thread_id, "one")
    _status, second = ask(alice, thread_id, "two", "enqueue")
    _status, third = ask(alice, thread_id, "three", "enqueue")
    status, cancelled, _ = alice.call("POST", f"/threads/{thread_id}/runs/{second['id']}/cancel")
    assert (status, cancelled["status"]) == (202, "cancelled")
    assert cancelled["reason"] == "cancelled while queued"
    assert run_view(alice, thread_id, third["id"])["queue_position"] == 1
    cancel_when_started(alice, thread_id, first["id"])
    alice.product.wait_for_run(first["id"])
    alice.product.wait_for_run(third["id"])
    assert run_view(alice, thread_id, third["id"])["output_text"] == "third"
    assert run_view(alice, thread_id, second["id"])["started_at"] is None


def test_the_queue_holds_ten_runs(alice: Client) -> None:
    thread_id = alice.thread()
    alice.script(thread_id, Step.hang())
    _status, first = ask(alice, thread_id, "one")
    queued = [ask(alice, thread_id, f"queued {index}", "enqueue") for index in range(MAX_QUEUED)]
    assert [status for status, _ in queued] == [202] * MAX_QUEUED
    assert [body["queue_position"] for _, body in queued] == list(range(1, MAX_QUEUED + 1))
    status, full = ask(alice, thread_id, "one too many", "enqueue")
    assert status == 409
    assert (full["error"]["code"], full["error"]["details"]) == ("queue_full", {"limit": 10})
    for _status, body in queued:  # empty the queue again
        status, _cancelled, _ = alice.call("POST", f"/threads/{thread_id}/runs/{body['id']}/cancel")
        assert status == 202
    cancel_when_started(alice, thread_id, first["id"])
    alice.product.wait_for_run(first["id"])
    thread = runtime.current().thread_store().get(alice.user or "", thread_id)
    assert (thread.active_run_id, thread.queued_runs) == (None, 0)


def test_an_interrupting_run_cancels_the_active_one_and_starts_next(alice: Client) -> None:
    thread_id = alice.thread()
    for step in (Step.hang(), Step.say("interrupter"), Step.say("waited")):
        alice.script(thread_id, step)
    _status, first = ask(alice, thread_id, "one")
    _status, waiting = ask(alice, thread_id, "two", "enqueue")
    wait_until_started(alice, thread_id, first["id"])
    status, interrupting = ask(alice, thread_id, "stop that", "interrupt")
    assert (status, interrupting["queue_position"]) == (202, 1)
    assert run_view(alice, thread_id, waiting["id"])["queue_position"] == 2
    for run in (first, interrupting, waiting):
        alice.product.wait_for_run(run["id"])
    interrupted = run_view(alice, thread_id, first["id"])
    assert (interrupted["status"], interrupted["reason"]) == ("cancelled", "interrupted")
    answers = [run_view(alice, thread_id, run["id"]) for run in (interrupting, waiting)]
    assert [run["output_text"] for run in answers] == ["interrupter", "waited"]
    thread = runtime.current().thread_store().get(alice.user or "", thread_id)
    assert alice.product.openai is not None
    history = history_at_server(alice.product.openai, thread)
    assert [text for _role, text in history] == ["stop that", "interrupter", "two", "waited"]


def test_a_run_handed_the_thread_whose_start_was_lost_is_started_by_the_sweep(
    alice: Client,
) -> None:
    """FinishRun hands the thread to the queue's head, then dies before starting it (and no
    retry comes): once the lock's lease has ended, FinishLostRuns starts it."""
    user = alice.user or ""
    thread_id = alice.thread()
    alice.script(thread_id, Step.say("late but here"))
    parts = runtime.current()
    holder = RunRecord(
        run_id=new_id("run"),
        thread_id=thread_id,
        user_id=user,
        assistant="data_analyst",
        message="a run whose execution nobody will see",
        created_at=datetime.now(UTC),
    )
    lock = parts.run_lock().acquire_update(user, thread_id, holder.run_id, timedelta(hours=1))
    assert parts.run_store().put_new(holder, with_lock=lock)
    status, queued = ask(alice, thread_id, "waiting", "enqueue")
    assert (status, queued["queue_position"]) == (202, 1)
    # The holder ends; the thread is handed on, and whoever did it dies before the start.
    assert not parts.run_lock().release(user, thread_id, holder.run_id), "not with a queue"
    handed = parts.run_queue().end_turn(user, thread_id, holder.run_id)
    assert handed is not None
    assert handed.run_id == queued["id"]
    assert run_view(alice, thread_id, queued["id"])["queue_position"] is None
    again = parts.run_queue().end_turn(user, thread_id, holder.run_id)
    assert again == handed, "asked again: the same run, still to start"

    alice.product.table.update_item(
        Key={"PK": f"USER#{user}", "SK": f"THREAD#{thread_id}"},
        UpdateExpression="SET lock_expires_at = :past, GSI2SK = :past",
        ExpressionAttributeValues={":past": int(time.time()) - 1},
    )
    report = fire_schedule(alice.product.stack, "FinishLostRunsFunction")
    assert (report["started"], report["finished"]) == (1, 0)
    alice.product.wait_for_run(queued["id"])
    assert run_view(alice, thread_id, queued["id"])["output_text"] == "late but here"


def test_a_run_handed_the_thread_is_started_once_however_many_callers_start_it(
    alice: Client,
) -> None:
    """FinishRun's retries, FinishLostRuns and a failed start may each try to start the run
    handed the thread; Express executions are not deduplicated by name, so the start is
    claimed first."""
    user = alice.user or ""
    thread_id = alice.thread()
    alice.script(thread_id, Step.hang())
    alice.script(thread_id, Step.say("once"))
    _status, first = ask(alice, thread_id, "one")
    _status, queued = ask(alice, thread_id, "two", "enqueue")
    wait_until_started(alice, thread_id, first["id"])
    parts = runtime.current()
    # The first run ends its turn (as FinishRun would) and three callers start the next.
    parts.run_store().request_interrupt(thread_id, first["id"], by=queued["id"])
    handed = parts.run_queue().end_turn(user, thread_id, first["id"])
    assert handed is not None
    assert handed.run_id == queued["id"]
    # Counted as requests: moto refuses a second Express execution of the same name, which AWS
    # would start.
    starts: list[str] = []

    def count_start(params: dict[str, Any], **_: Any) -> None:
        starts.append(params["name"])

    events = parts.stepfunctions().meta.events
    events.register("provide-client-params.sfn.StartExecution", count_start)
    try:
        for _caller in range(3):
            parts.run_launcher().launch(handed)
    finally:
        events.unregister("provide-client-params.sfn.StartExecution", count_start)
    assert starts == [queued["id"]]
    alice.product.wait_for_run(queued["id"])
    assert run_view(alice, thread_id, queued["id"])["output_text"] == "once"
    # The first run, no longer the thread's, stops as an interrupted one does.
    remote_run_id = parts.run_store().get(thread_id, first["id"]).remote_run_id
    assert remote_run_id is not None
    parts.backend().cancel_run(
        RunHandle(
            thread_remote_id=parts.thread_store().get(user, thread_id).remote_id,
            run_remote_id=remote_run_id,
        )
    )
    alice.product.wait_for_run(first["id"])
    assert run_view(alice, thread_id, first["id"])["reason"] == "interrupted"
