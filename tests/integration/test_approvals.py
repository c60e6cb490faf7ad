"""Human approval on the local stack: a tool call that needs a person pauses its run in
`requires_approval` (a parked task token), and the run's owner approves or denies it through
the API; no answer within ApprovalTimeoutSeconds denies; nobody else can answer; a call is
decided once. Runs start in the Express tier, so each is handed to the Standard one to wait."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from standardwebhooks import Webhook

from local.aws.lambda_runtime import Death
from local.callback_receiver import CallbackReceiver
from local.chaos import history_at_server
from local.event_log import EventQueue
from local.openai_server import Step
from local.stack_session import LocalThreadline, local_threadline
from tests.integration.lambda_api import Client
from threadline import runtime
from threadline.errors import ConflictError
from threadline.ids import new_id
from threadline.models import ToolCall
from threadline.runs.approvals import ApprovalDecision, ApprovalStore, RunApprovals
from threadline.runs.records import RunRecord
from threadline.runs.state import RunState

APPROVAL_TIMEOUT_SECONDS = 3
EXPORT = {"query": "SELECT region, SUM(amount) AS revenue FROM sales GROUP BY region"}


@pytest.fixture(scope="module", params=["responses", "assistants"])
def product(request: pytest.FixtureRequest) -> Iterator[LocalThreadline]:
    parameters = {
        "Backend": request.param,
        "ApprovalTimeoutSeconds": str(APPROVAL_TIMEOUT_SECONDS),
        "CallbackAllowedHosts": "localhost",
    }
    with local_threadline(parameters=parameters) as session:
        yield session


@pytest.fixture
def alice(product: LocalThreadline) -> Client:
    return Client(product, "alice-" + str(time.monotonic_ns()))


def start_export(alice: Client, filename: str, **fields: str) -> tuple[str, str]:
    """A run whose model asks to export a CSV; its thread and run ids."""
    thread_id = alice.thread()
    alice.script(thread_id, Step.call("export_query_csv", {**EXPORT, "filename": filename}))
    return thread_id, alice.started(thread_id, {"message": "Export revenue by region.", **fields})


def waits_ended_by(product: LocalThreadline, run_id: str) -> list[str]:
    """How each of the run's approval waits (its only task-token tasks in poll mode) ended:
    TaskSucceeded (woken by the last answer, or by a cancel) or TaskTimedOut."""
    history = product.history(product.execution_of("RunStateMachine", run_id))
    ends = {
        "TaskSucceeded": "taskSucceededEventDetails",
        "TaskTimedOut": "taskTimedOutEventDetails",
    }
    return [
        event["type"]
        for event in history
        if event["type"] in ends
        and event[ends[event["type"]]]["resource"] == "invoke.waitForTaskToken"
    ]


def test_an_approved_call_runs_and_hands_the_user_its_file(
    product: LocalThreadline, alice: Client
) -> None:
    thread_id, run_id = start_export(alice, "revenue.csv")

    [pending] = alice.waiting_for_approval(thread_id, run_id)
    assert pending["tool"] == "export_query_csv"
    assert json.loads(pending["arguments"]) == {**EXPORT, "filename": "revenue.csv"}
    status, decided = alice.decide(
        thread_id, run_id, {"call_id": pending["call_id"], "approve": True}
    )
    assert status == 200, decided
    assert decided["pending_approvals"] == []

    run = alice.finished(thread_id, run_id)
    assert run["status"] == "completed", run
    [call] = run["tool_calls"]
    assert (call["name"], call["approval"], call["is_error"]) == (
        "export_query_csv",
        "approved",
        False,
    )
    [csv_file] = run["files"]
    assert csv_file["filename"].endswith("-revenue.csv")
    key = f"outputs/{alice.user}/{thread_id}/{run_id}/{csv_file['filename']}"
    body = boto3.client("s3").get_object(Bucket=product.stack.resources["FilesBucket"], Key=key)
    assert body["Body"].read().decode().splitlines()[0] == "region,revenue"
    assert csv_file["filename"] in run["output_text"]
    # The person's wait does not count against the run's deadline; the execution waited.
    assert waits_ended_by(product, run_id) == ["TaskSucceeded"]
    assert "awaiting_approval" in [entry["step"] for entry in run["timeline"]]


def test_a_denied_call_gives_the_model_the_reason(product: LocalThreadline, alice: Client) -> None:
    thread_id, run_id = start_export(alice, "denied.csv")
    [pending] = alice.waiting_for_approval(thread_id, run_id)

    status, _ = alice.decide(
        thread_id,
        run_id,
        {"call_id": pending["call_id"], "approve": False, "reason": "not this quarter"},
    )

    assert status == 200
    run = alice.finished(thread_id, run_id)
    assert run["status"] == "completed", run
    [call] = run["tool_calls"]
    assert (call["approval"], call["is_error"]) == ("denied", True)
    assert "a person denied this call: not this quarter" in run["output_text"]
    assert run["files"] == []


def test_an_unanswered_call_is_denied_when_the_wait_ends(
    product: LocalThreadline, alice: Client
) -> None:
    thread_id, run_id = start_export(alice, "late.csv")
    [pending] = alice.waiting_for_approval(thread_id, run_id)

    run = alice.finished(thread_id, run_id)

    assert run["status"] == "completed", run
    assert waits_ended_by(product, run_id) == ["TaskTimedOut"]
    assert run["tool_calls"][0]["approval"] == "timed_out"
    assert f"no one approved this call within {APPROVAL_TIMEOUT_SECONDS} s" in run["output_text"]
    status, late = alice.decide(thread_id, run_id, {"call_id": pending["call_id"], "approve": True})
    assert (status, late["error"]["code"]) == (409, "not_awaiting_approval")


def test_only_the_owner_answers_and_only_once(product: LocalThreadline, alice: Client) -> None:
    thread_id, run_id = start_export(alice, "once.csv")
    [pending] = alice.waiting_for_approval(thread_id, run_id)
    approve = {"call_id": pending["call_id"], "approve": True}
    mallory = Client(product, "mallory-" + str(time.monotonic_ns()))

    assert mallory.decide(thread_id, run_id, approve)[0] == 404
    assert mallory.call("GET", f"/threads/{thread_id}/runs/{run_id}")[0] == 404
    status, unknown = alice.decide(thread_id, run_id, {"call_id": "call_nope", "approve": True})
    assert (status, unknown["error"]["code"]) == (400, "unknown_call")
    status, twice = alice.decide(thread_id, run_id, approve, approve)
    assert (status, twice["error"]["code"]) == (400, "duplicate_call")
    assert alice.run(thread_id, run_id)["status"] == "requires_approval"

    assert alice.decide(thread_id, run_id, approve)[0] == 200
    status, again = alice.decide(thread_id, run_id, approve)
    assert (status, again["error"]["code"]) in {(409, "already_decided")}
    assert alice.finished(thread_id, run_id)["status"] == "completed"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"decisions": []},
        {"decisions": [{"call_id": "c", "approve": "maybe"}]},
        {"decisions": [{"call_id": "c", "approve": True, "reason": "x" * 501}]},
        {"decisions": [{"call_id": "c", "approve": True, "extra": 1}]},
        {"decisions": [{"call_id": f"c{index}", "approve": True} for index in range(21)]},
    ],
)
def test_bad_answers_are_refused_with_400(alice: Client, body: dict[str, Any]) -> None:
    thread_id = alice.thread()

    status, refused, _ = alice.call("POST", f"/threads/{thread_id}/runs/run_x/approvals", body)

    assert (status, refused["error"]["code"]) == (400, "invalid_request")


def test_the_wait_holds_the_thread_and_its_lock(product: LocalThreadline, alice: Client) -> None:
    thread_id, run_id = start_export(alice, "held.csv")
    [pending] = alice.waiting_for_approval(thread_id, run_id)

    thread = runtime.current().thread_store().get(alice.user or "", thread_id)

    assert thread.active_run_id == run_id
    assert thread.lock_expires_at is not None
    assert thread.lock_expires_at > time.time() + APPROVAL_TIMEOUT_SECONDS
    alice.decide(thread_id, run_id, {"call_id": pending["call_id"], "approve": False})
    assert alice.finished(thread_id, run_id)["status"] == "completed"


def test_the_wait_is_called_back_and_published(product: LocalThreadline, alice: Client) -> None:
    events = EventQueue(product.stack, new_id("subscriber"))
    with CallbackReceiver() as receiver:
        thread_id, run_id = start_export(alice, "told.csv", callback_url=f"{receiver.url}/hook")
        [pending] = alice.waiting_for_approval(thread_id, run_id)
        (told,) = receiver.wait_for(1)
        alice.decide(thread_id, run_id, {"call_id": pending["call_id"], "approve": True})
        assert alice.finished(thread_id, run_id)["status"] == "completed"
        receiver.wait_for(2)
    product.stack.event_sources.wait_idle(30)
    published = [event for event in events.take() if event["detail"]["run_id"] == run_id]

    secret = boto3.client("secretsmanager").get_secret_value(
        SecretId=product.stack.resources["CallbackSigningSecret"]
    )["SecretString"]
    payload = Webhook(secret).verify(told.body, told.headers)
    assert payload["type"] == "run.requires_approval"
    assert told.headers["webhook-id"] == f"{run_id}.requires_approval.0"
    assert payload["data"]["pending_approvals"][0]["call_id"] == pending["call_id"]
    waiting = [event for event in published if event["detail-type"] == "Run Requires Approval"]
    assert len(waiting) == 1
    assert waiting[0]["detail"]["awaiting_approval"] == [
        {"call_id": pending["call_id"], "tool": "export_query_csv"}
    ]
    assert [event["detail-type"] for event in published].count("Run Completed") == 1


def test_a_waiting_run_cancelled_by_its_owner_ends_at_once(
    product: LocalThreadline, alice: Client
) -> None:
    thread_id, run_id = start_export(alice, "cancelled.csv")
    alice.waiting_for_approval(thread_id, run_id)

    status, _, _ = alice.call("POST", f"/threads/{thread_id}/runs/{run_id}/cancel")

    assert status == 202
    run = alice.finished(thread_id, run_id)
    assert (run["status"], run["reason"]) == ("cancelled", "cancelled while waiting for approval")
    assert run["tool_calls"] == []
    assert waits_ended_by(product, run_id) == ["TaskSucceeded"]
    assert alice.call("POST", f"/threads/{thread_id}/runs", {"message": "Next."})[0] == 202


def test_a_run_interrupting_a_waiting_one_starts_at_once(
    product: LocalThreadline, alice: Client
) -> None:
    thread_id, run_id = start_export(alice, "interrupted.csv")
    alice.waiting_for_approval(thread_id, run_id)
    alice.script(thread_id, Step.say("Started after the interrupt."))

    status, accepted, _ = alice.call(
        "POST", f"/threads/{thread_id}/runs", {"message": "Never mind.", "if_busy": "interrupt"}
    )

    assert status == 202, accepted
    interrupted = alice.finished(thread_id, run_id)
    assert (interrupted["status"], interrupted["reason"]) == ("cancelled", "interrupted")
    assert waits_ended_by(product, run_id) == ["TaskSucceeded"]
    assert alice.finished(thread_id, accepted["id"])["status"] == "completed"


def test_a_second_wait_in_one_run_asks_only_for_its_own_calls(
    product: LocalThreadline, alice: Client
) -> None:
    thread_id = alice.thread()
    for filename in ("first.csv", "second.csv"):
        alice.script(thread_id, Step.call("export_query_csv", {**EXPORT, "filename": filename}))
    status, accepted, _ = alice.call(
        "POST", f"/threads/{thread_id}/runs", {"message": "Export twice."}
    )
    assert status == 202, accepted
    run_id = accepted["id"]
    [first] = alice.waiting_for_approval(thread_id, run_id)
    deadline = time.monotonic() + 30  # the first wait times out unanswered
    while (run := alice.run(thread_id, run_id))["tool_rounds"] < 1:
        assert time.monotonic() < deadline, run
        time.sleep(0.05)

    [second] = alice.waiting_for_approval(thread_id, run_id)
    assert second["call_id"] != first["call_id"]
    alice.decide(thread_id, run_id, {"call_id": second["call_id"], "approve": True})

    done = alice.finished(thread_id, run_id)
    assert [call["approval"] for call in done["tool_calls"]] == ["timed_out", "approved"]
    assert waits_ended_by(product, run_id) == ["TaskTimedOut", "TaskSucceeded"]


class WakeUps:
    """Stands in for Step Functions' SendTaskSuccess: records the tokens it is sent."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def send_task_success(self, *, taskToken: str, output: str) -> None:
        self.tokens.append(taskToken)


@pytest.fixture
def approvals(product: LocalThreadline) -> tuple[RunApprovals, WakeUps]:
    parts = runtime.current()
    wake_ups = WakeUps()
    return (
        RunApprovals(
            store=ApprovalStore(parts.table()),
            runs=parts.run_store(),
            threads=parts.thread_store(),
            lock=parts.run_lock(),
            stepfunctions=lambda: wake_ups,  # type: ignore[arg-type,return-value]
            approval_timeout_seconds=60,
            run_timeout_seconds=60,
        ),
        wake_ups,
    )


def waiting_state(alice: Client, call_id: str) -> RunState:
    """A run recorded as started on a new thread, with one call that needs approval."""
    thread_id = alice.thread()
    run_id = new_id("run")
    runtime.current().run_store().put_new(
        RunRecord(
            run_id=run_id,
            thread_id=thread_id,
            user_id=alice.user or "",
            assistant="data_analyst",
            created_at=datetime.now(UTC),
        )
    )
    return RunState(
        run_id=run_id,
        thread_id=thread_id,
        user_id=alice.user or "",
        pending_call_ids=[call_id],
        approval_call_ids=[call_id],
        approval_wait_seconds=60,
    )


def calls_of(state: RunState) -> list[ToolCall]:
    return [
        ToolCall(id=call_id, name="export_query_csv", arguments="{}")
        for call_id in state.pending_call_ids
    ]


def test_a_run_interrupted_before_its_wait_begins_is_woken_at_once(
    alice: Client, approvals: tuple[RunApprovals, WakeUps]
) -> None:
    service, wake_ups = approvals
    state = waiting_state(alice, "call_early")
    runtime.current().run_store().request_interrupt(state.thread_id, state.run_id, by="run_next")

    service.wait(state, calls_of(state), "token-1")

    assert wake_ups.tokens == ["token-1"]


def test_an_answer_after_the_wait_closed_is_refused_not_lost(
    alice: Client, approvals: tuple[RunApprovals, WakeUps]
) -> None:
    service, _ = approvals
    state = waiting_state(alice, "call_late")
    service.wait(state, calls_of(state), "token-2")

    decided = service.decisions(state, calls_of(state))  # the wait ends unanswered
    status, late = alice.decide(
        state.thread_id, state.run_id, {"call_id": "call_late", "approve": True}
    )

    assert decided["call_late"].outcome == "timed_out"
    assert (status, late["error"]["code"]) == (409, "not_awaiting_approval")
    record = runtime.current().run_store().get(state.thread_id, state.run_id)
    assert record.approvals["call_late"].decision is None


def test_a_repeated_answer_sends_the_wake_up_again(
    alice: Client, approvals: tuple[RunApprovals, WakeUps]
) -> None:
    service, wake_ups = approvals
    state = waiting_state(alice, "call_again")
    service.wait(state, calls_of(state), "token-3")
    approve = ApprovalDecision(call_id="call_again", approve=True)

    service.decide(alice.user or "", state.thread_id, state.run_id, [approve])
    with pytest.raises(ConflictError, match="already decided"):
        service.decide(alice.user or "", state.thread_id, state.run_id, [approve])

    assert wake_ups.tokens == ["token-3", "token-3"]


@pytest.mark.parametrize("when", ["before_work", "after_work"])
def test_a_wait_survives_its_steps_dying(
    product: LocalThreadline, alice: Client, when: Death
) -> None:
    """AwaitApproval dies once as the wait begins, and ProcessToolCalls once as it ends,
    before their work or after it (the answer lost): each step is retried, the decision still
    counts, and the export runs once, its question and answer once in the thread."""
    deaths = product.lambda_deaths
    deaths.plan(product.stack.function("AwaitApprovalFunction").name, when)
    thread_id, run_id = start_export(alice, f"dying-{when}.csv")
    [pending] = alice.waiting_for_approval(thread_id, run_id)
    deaths.plan(product.stack.function("ProcessToolCallsFunction").name, when)

    status, _ = alice.decide(thread_id, run_id, {"call_id": pending["call_id"], "approve": True})

    assert status == 200
    run = alice.finished(thread_id, run_id)
    assert run["status"] == "completed", run
    assert [(call["name"], call["approval"]) for call in run["tool_calls"]] == [
        ("export_query_csv", "approved")
    ]
    assert len(run["files"]) == 1
    died = {name for name, death in deaths.died if death == when}
    assert {
        product.stack.function(f).name
        for f in ("AwaitApprovalFunction", "ProcessToolCallsFunction")
    } <= died
    thread = runtime.current().thread_store().get(alice.user or "", thread_id)
    assert thread.active_run_id is None
    assert product.openai is not None
    assert history_at_server(product.openai, thread) == [
        ("user", "Export revenue by region."),
        ("assistant", run["output_text"]),
    ]
