"""Streaming a run to its owner over the WebSocket API, on the local stack: the template's
WebSocket API served as API Gateway serves it, its authorizer, PushUpdates and RelayText run
as deployed, and the local OpenAI server writing the answer over a second and a half."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from boto3.dynamodb.conditions import Key
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from local.openai_server import Step
from local.stack_session import LocalThreadline, local_threadline
from local.tokens import issue_token
from tests.integration.lambda_api import Client
from tests.integration.stream_client import RunWatcher, finished, text_of

pytestmark = pytest.mark.integration
QUESTION = "Tell me something encouraging about how the quarter went for the team"
ANSWER = "Revenue grew in every region this quarter, and the North led for the third time."
EXPORT = {
    "query": "SELECT region, SUM(amount) AS revenue FROM sales GROUP BY region",
    "filename": "revenue.csv",
}


@pytest.fixture(scope="module", params=["responses", "assistants"])
def product(request: pytest.FixtureRequest) -> Iterator[LocalThreadline]:
    with local_threadline(
        parameters={"Backend": request.param}, websocket_port=0, openai_latency_seconds=1.5
    ) as session:
        yield session


@pytest.fixture
def alice(product: LocalThreadline) -> Client:
    return Client(product, f"alice-{time.monotonic_ns()}")  # a thread of her own per test


def watcher(product: LocalThreadline, user: str) -> RunWatcher:
    assert product.websocket is not None
    return RunWatcher(product.websocket.url, user)


def backend(product: LocalThreadline) -> str:
    return product.environment["OPENAI_BACKEND"]


def start_a_long_answer(alice: Client) -> tuple[str, str]:
    """A run whose model writes for eight seconds: its text is relayed before it ends however
    late the relay starts (a relay that starts late sends what was written so far at once,
    and nothing once the run's end is stored)."""
    thread_id = alice.thread()
    alice.script(thread_id, Step.say(ANSWER).taking(8))
    return thread_id, alice.started(thread_id, {"message": QUESTION})


def test_the_answer_arrives_in_pieces_before_the_run_completes(
    product: LocalThreadline, alice: Client
) -> None:
    thread_id, run_id = start_a_long_answer(alice)
    watching = watcher(product, alice.user)

    subscribed = watching.subscribe(thread_id, run_id)
    updates = watching.until(finished)
    watching.close()

    run = alice.finished(thread_id, run_id)
    assert subscribed["type"] == "subscribed"
    assert [update["seq"] for update in updates] == list(range(1, len(updates) + 1))
    statuses = [update["status"] for update in updates if update["type"] == "run.status"]
    assert statuses[-1] == "completed"
    assert updates[-1]["run"]["output_text"] == run["output_text"]
    assert updates[-1]["run"]["status"] == "completed"
    if backend(product) == "responses":
        completed_at = next(
            update["seq"] for update in updates if update.get("status") == "completed"
        )
        pieces = [update for update in updates if update["type"] == "text.delta"]
        assert pieces
        assert all(piece["seq"] < completed_at for piece in pieces)
        assert text_of(updates) == run["output_text"]
    else:  # an Assistants run's text cannot be streamed again: it comes with the end
        assert text_of(updates) == ""


def test_a_dropped_connection_resumes_with_nothing_lost_or_repeated(
    product: LocalThreadline, alice: Client
) -> None:
    thread_id, run_id = start_a_long_answer(alice)
    watching = watcher(product, alice.user)

    watching.subscribe(thread_id, run_id)
    first = len(watching.until(lambda update: update["seq"] >= 2))
    watching.drop()
    resumed = watching.subscribe(thread_id, run_id)
    updates = watching.until(finished)
    watching.close()

    everything = watcher(product, alice.user)
    everything.subscribe(thread_id, run_id)
    replayed = everything.until(finished)
    everything.close()
    run = alice.finished(thread_id, run_id)
    assert resumed == {**resumed, "type": "subscribed", "after": first}
    assert [update["seq"] for update in updates] == list(range(1, len(updates) + 1))
    assert updates == replayed  # the same updates, the same numbers, once each
    assert updates[-1]["run"]["output_text"] == run["output_text"]
    if backend(product) == "responses":
        assert text_of(updates) == run["output_text"]


def test_tool_calls_and_approvals_are_streamed(product: LocalThreadline, alice: Client) -> None:
    thread_id = alice.thread()
    alice.script(thread_id, Step.call("export_query_csv", EXPORT))
    run_id = alice.started(thread_id, {"message": "Export revenue by region as a CSV"})
    watching = watcher(product, alice.user)

    watching.subscribe(thread_id, run_id)
    waiting = watching.until(lambda update: update["type"] == "approval.required")[-1]
    (call,) = waiting["calls"]
    status, _ = alice.decide(thread_id, run_id, {"call_id": call["call_id"], "approve": True})
    updates = watching.until(finished)
    watching.close()

    assert status == 200
    assert call["tool"] == "export_query_csv"
    assert '"revenue.csv"' in call["arguments"]
    (calls,) = [update for update in updates if update["type"] == "tool.calls"]
    (made,) = calls["calls"]
    assert made == {
        **made,
        "call_id": call["call_id"],
        "name": "export_query_csv",
        "approval": "approved",
        "is_error": False,
    }
    assert calls["calls"] == updates[-1]["run"]["tool_calls"]  # as the run view lists them
    statuses = [update["status"] for update in updates if update["type"] == "run.status"]
    assert statuses[statuses.index("in_progress") :] == [
        "in_progress",
        "requires_approval",
        "in_progress",
        "completed",
    ]


def test_a_run_subscribed_to_after_it_ended_is_sent_whole(
    product: LocalThreadline, alice: Client
) -> None:
    thread_id = alice.thread()
    run_id = alice.started(thread_id, {"message": QUESTION})
    run = alice.finished(thread_id, run_id)
    watching = watcher(product, alice.user)

    subscribed = watching.subscribe(thread_id, run_id)
    updates = watching.until(finished)
    watching.close()

    assert subscribed["status"] == "completed"
    assert [update["type"] for update in updates] == ["run.status", "run.view"]
    assert updates[-1]["run"]["output_text"] == run["output_text"]


def test_a_run_nobody_watches_streams_nothing(product: LocalThreadline, alice: Client) -> None:
    thread_id = alice.thread()
    run_id = alice.finished_run(thread_id, QUESTION)["id"]

    stored = product.table.query(KeyConditionExpression=Key("PK").eq(f"STREAM#{run_id}"))
    assert stored["Items"] == []


def test_another_users_run_is_not_found(product: LocalThreadline, alice: Client) -> None:
    thread_id = alice.thread()
    run_id = alice.finished_run(thread_id, QUESTION)["id"]

    answers = [
        watcher(product, "bob").subscribe(thread_id, run_id),
        watcher(product, alice.user).subscribe(thread_id, "run_does_not_exist"),
    ]

    assert [answer["type"] for answer in answers] == ["error", "error"]
    assert answers[0]["code"] == answers[1]["code"] == "not_found"
    assert answers[0]["message"] == answers[1]["message"]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 401),
        ("?token=", 401),
        ("?token=not-a-jwt", 403),
        (f"?token={issue_token('alice', ttl_seconds=-60)}", 403),
        (f"?token={issue_token('alice', audience='another-app')}", 403),
    ],
    ids=["no-token", "empty", "garbage", "expired", "other-audience"],
)
def test_a_connection_needs_a_valid_token(
    product: LocalThreadline, query: str, status: int
) -> None:
    """No token: API Gateway refuses it (401); a token not valid: the authorizer denies it."""
    assert product.websocket is not None

    with pytest.raises(InvalidStatus) as refused, connect(f"{product.websocket.url}{query}"):
        pass

    assert refused.value.response.status_code == status


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", "unknown_action"),
        ('{"action": "unsubscribe"}', "unknown_action"),
        ('{"action": "subscribe"}', "bad_request"),
        ('{"action": "subscribe", "thread_id": "t", "run_id": "r", "after": -1}', "bad_request"),
        ('{"action": "subscribe", "thread_id": "t", "run_id": "r", "after": 1e12}', "bad_request"),
        ('{"action": "subscribe", "thread_id": "t", "run_id": "r", "extra": 1}', "not_found"),
    ],
)
def test_a_bad_message_is_answered_with_an_error(
    product: LocalThreadline, message: str, code: str
) -> None:
    assert product.websocket is not None

    with connect(f"{product.websocket.url}?token={issue_token('alice')}") as socket:
        socket.send(message)
        answer: dict[str, Any] = json.loads(socket.recv(timeout=10))

    assert answer["type"] == "error"
    assert answer["code"] == code
