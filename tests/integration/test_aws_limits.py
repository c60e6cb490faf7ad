"""The product at AWS's limits on the local stack, which enforces them as AWS does
(local/aws/service_limits.py): each test drives a run to where a limit shapes the design and
shows the product's answer. Runs start in the Standard state machine here."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from local.openai_server import Step
from local.stack_session import LocalThreadline, local_threadline
from tests.integration.lambda_api import Client
from tests.unit.test_history_budget import POLL_EVENTS, START_EVENTS, TOOL_ROUND_EVENTS
from threadline.ids import new_id
from threadline.runs.polling import EVENTS_PER_CHECK, EVENTS_PER_TOOL_ROUND
from threadline.runs.records import ANSWER_LIMIT_BYTES

ITEM_BYTES = 400 * 1024  # DynamoDB's largest item
# The end of a completed run: RouteOnStatus, FinishRun's task, RouteOnOutcome, the Succeed
# state, ExecutionSucceeded.
COMPLETED_END_EVENTS = 2 + 5 + 2 + 2 + 1


@pytest.fixture(scope="module")
def product() -> Iterator[LocalThreadline]:
    parameters = {"Backend": "responses", "ExpressTierSeconds": "0"}
    with local_threadline(parameters=parameters) as session:
        yield session


@pytest.fixture
def alice(product: LocalThreadline) -> Client:
    assert product.openai is not None
    product.openai.script.clear()
    return Client(product, new_id("alice"))


def test_each_check_and_tool_round_adds_the_events_the_history_budget_counts(
    product: LocalThreadline, alice: Client
) -> None:
    """A Standard execution fails at 25,000 events. The product stretches a long run's waits
    so its checks fit (threadline.runs.polling, walked through a day-long run in
    tests/unit/test_history_budget.py with these counts): here a run checked as fast as it
    can be (0 s waits) for a second, with a tool round, shows the real state machine adds
    what that budget counts, check by check."""
    thread_id = alice.thread()
    alice.script(thread_id, Step.call("get_table_schema", {"table_name": "sales"}))
    alice.script(thread_id, Step.say("Done.").taking(1))
    run = alice.finished_run(thread_id, "Describe the sales table, slowly.")

    history = product.history(product.execution_of("RunStateMachine", run["id"]))
    checks = sum(1 for event in history if _entered(event) == "CheckRun")
    assert run["status"] == "completed"
    assert checks > 20
    assert len(history) == (
        START_EVENTS + checks * POLL_EVENTS + TOOL_ROUND_EVENTS + COMPLETED_END_EVENTS
    )
    assert POLL_EVENTS <= EVENTS_PER_CHECK
    assert TOOL_ROUND_EVENTS <= EVENTS_PER_TOOL_ROUND


def _entered(event: dict[str, object]) -> object:
    details = event.get("stateEnteredEventDetails")
    return details["name"] if isinstance(details, dict) else None


def test_a_run_at_the_largest_message_answer_and_rounds_fits_its_item(
    product: LocalThreadline, alice: Client
) -> None:
    """A run's item holds its message (32,000 characters: up to 128 KB), its answer (the
    first 96,000 bytes) and a record of every tool call, which grow with every round: here
    three rounds of a hundred calls, each record with 500 characters of SQL. The records
    kept stop at 64,000 bytes, the rest counted, and the run completes with its answer."""
    thread_id = alice.thread()
    query = "SELECT '" + "x" * 490 + "' AS note"
    for _round in range(3):
        alice.script(thread_id, Step.calls([("query_database", {"query": query})] * 100))
    answer = "答" * (ANSWER_LIMIT_BYTES // 3)
    alice.script(thread_id, Step.say(answer))

    run = alice.finished_run(thread_id, "𝄞" * 32_000)

    assert run["status"] == "completed", run["reason"]
    assert run["output_text"] == answer
    assert run["tool_rounds"] == 3
    assert run["tool_calls_omitted"] > 0
    assert len(run["tool_calls"]) + run["tool_calls_omitted"] == 300
    item = product.table.get_item(Key={"PK": f"THREAD#{thread_id}", "SK": f"RUN#{run['id']}"})
    assert len(json.dumps(item["Item"], default=str, ensure_ascii=False).encode()) < ITEM_BYTES


def test_many_calls_awaiting_approval_keep_each_update_under_4_kb(
    product: LocalThreadline, alice: Client
) -> None:
    """An update expression holds 4 KB: a wait's approval entries are written a few at a time
    (ENTRIES_PER_UPDATE; a hundred in one would take 5 KB), and a person decides at most 20
    calls per request. A hundred calls at once wait, are decided in five answers of twenty,
    and the run goes on."""
    calls = 100
    thread_id = alice.thread()
    export = {"query": "SELECT region FROM sales LIMIT 1"}
    alice.script(
        thread_id,
        Step.calls(
            [("export_query_csv", {**export, "filename": f"part{n}.csv"}) for n in range(calls)]
        ),
    )
    alice.script(thread_id, Step.say("Exported what you approved."))
    run_id = alice.started(thread_id, {"message": "Export the regions, in a hundred files."})

    pending = alice.waiting_for_approval(thread_id, run_id)
    assert len(pending) == calls
    for start in range(0, calls, 20):
        decisions = [
            {"call_id": call["call_id"], "approve": start == 0, "reason": "only the first twenty"}
            for call in pending[start : start + 20]
        ]
        status, body = alice.decide(thread_id, run_id, *decisions)
        assert status == 200, body

    run = alice.finished(thread_id, run_id)
    assert run["status"] == "completed", run["reason"]
    approvals = [call["approval"] for call in run["tool_calls"]]
    assert approvals == ["approved"] * 20 + ["denied"] * (calls - 20)
