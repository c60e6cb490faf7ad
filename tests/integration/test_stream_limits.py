"""The WebSocket API's limits, as API Gateway applies them, on the local stack: a frame over
32 KB or a message over 128 KB closes the connection (1009); so does ten minutes idle or two
hours open (1001, Going away), here shortened. The product's client resumes after the close
from the last update it applied (`after`), nothing lost or repeated (docs/streaming.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from local.aws.websocket_api import ConnectionLimits
from local.openai_server import Step
from local.stack_session import LocalThreadline, local_threadline
from local.tokens import issue_token
from tests.integration.lambda_api import Client
from tests.integration.stream_client import RunWatcher, finished, text_of

pytestmark = pytest.mark.integration
IDLE = ConnectionLimits(idle_seconds=3)
SHORT_LIVED = ConnectionLimits(lifetime_seconds=3)
KB = 1024
EXPORT = {"query": "SELECT region FROM sales LIMIT 1", "filename": "regions.csv"}


@pytest.fixture
def product(request: pytest.FixtureRequest) -> Iterator[LocalThreadline]:
    """The product, its WebSocket API with the limits the test names (API Gateway's unless)."""
    limits = getattr(request, "param", ConnectionLimits())
    with local_threadline(
        parameters={"Backend": "responses"},
        websocket_port=0,
        websocket_limits=limits,
        openai_latency_seconds=0.5,
    ) as session:
        yield session


@pytest.fixture
def alice(product: LocalThreadline) -> Client:
    return Client(product, f"alice-{time.monotonic_ns()}")


def watcher(product: LocalThreadline, user: str) -> RunWatcher:
    assert product.websocket is not None
    return RunWatcher(product.websocket.url, user)


def _subscribe_message(size: int) -> str:
    """A subscribe message (for a run that does not exist) of `size` bytes."""
    message = {"action": "subscribe", "thread_id": "t", "run_id": "r", "pad": ""}
    message["pad"] = "x" * (size - len(json.dumps(message)))
    return json.dumps(message)


def _in_frames(message: str, frame: int) -> list[str]:
    return [message[start : start + frame] for start in range(0, len(message), frame)]


def _answer_to(socket: ClientConnection, message: str | list[str]) -> str | bytes:
    socket.send(message)
    return socket.recv(timeout=10)


def test_a_frame_over_32_kb_or_a_message_over_128_kb_closes_the_connection(
    product: LocalThreadline,
) -> None:
    assert product.websocket is not None
    cases = [
        (_in_frames(_subscribe_message(33 * KB), 33 * KB), True),  # one frame over 32 KB
        (_in_frames(_subscribe_message(120 * KB), 30 * KB), False),  # four of 30 KB
        (_in_frames(_subscribe_message(150 * KB), 30 * KB), True),  # over 128 KB in all
    ]
    for frames, closed in cases:
        message = frames if len(frames) > 1 else frames[0]
        with connect(f"{product.websocket.url}?token={issue_token('alice')}") as socket:
            if closed:
                # API Gateway closes as soon as it has read too much: the client may still be
                # sending the rest of the message then, or be waiting for an answer.
                with pytest.raises(ConnectionClosed) as closing:
                    _answer_to(socket, message)
                assert closing.value.rcvd is not None
                assert closing.value.rcvd.code == 1009
            else:
                answer = json.loads(_answer_to(socket, message))
                assert (answer["type"], answer["code"]) == ("error", "not_found")


@pytest.mark.parametrize("product", [IDLE], indirect=True)
def test_an_idle_connection_is_closed_and_the_client_resumes(
    product: LocalThreadline, alice: Client
) -> None:
    """A run waiting for a person sends nothing: its watcher's connection goes idle."""
    thread_id = alice.thread()
    alice.script(thread_id, Step.call("export_query_csv", EXPORT))
    run_id = alice.started(thread_id, {"message": "Export the regions as a CSV"})
    watching = watcher(product, alice.user)

    watching.subscribe(thread_id, run_id)
    (call,) = watching.until(lambda update: update["type"] == "approval.required")[-1]["calls"]
    idle_from = time.monotonic()
    with pytest.raises(ConnectionClosed) as closing:
        watching.receive(timeout=10)
    idle_for = time.monotonic() - idle_from
    status, _ = alice.decide(thread_id, run_id, {"call_id": call["call_id"], "approve": True})
    resumed = watching.subscribe(thread_id, run_id)
    updates = watching.until(finished)
    watching.close()

    assert closing.value.rcvd is not None
    assert (closing.value.rcvd.code, closing.value.rcvd.reason) == (1001, "Going away")
    assert idle_for >= IDLE.idle_seconds * 0.9
    assert status == 200
    assert resumed["type"] == "subscribed"
    assert [update["seq"] for update in updates] == list(range(1, len(updates) + 1))
    assert updates[-1]["run"]["status"] == "completed"


@pytest.mark.parametrize("product", [SHORT_LIVED], indirect=True)
def test_a_connection_is_closed_after_its_lifetime_and_the_client_resumes(
    product: LocalThreadline, alice: Client
) -> None:
    """A run whose answer streams for longer than a connection may last: each connection is
    closed while busy, and the watcher resumes where it was until the run ends."""
    thread_id = alice.thread()
    answer = "The quarter went well in every region, and the North led again. " * 3
    alice.script(thread_id, Step.say(answer).taking(SHORT_LIVED.lifetime_seconds + 3))
    run_id = alice.started(thread_id, {"message": "How did the quarter go?"})
    watching = watcher(product, alice.user)

    closes: list[tuple[int | None, float]] = []  # each close's code, and how long it lasted
    while not any(finished(update) for update in watching.applied):
        connected = time.monotonic()
        watching.subscribe(thread_id, run_id)
        try:
            watching.until(finished)
        except ConnectionClosed as closing:
            code = closing.rcvd.code if closing.rcvd else None
            closes.append((code, time.monotonic() - connected))
    watching.close()

    run = alice.finished(thread_id, run_id)
    updates = watching.applied
    assert closes, "the run outlived its first connection"
    assert {code for code, _lasted in closes} == {1001}
    assert min(lasted for _code, lasted in closes) >= SHORT_LIVED.lifetime_seconds * 0.9
    assert [update["seq"] for update in updates] == list(range(1, len(updates) + 1))
    assert watching.repeats == 0
    assert text_of(updates) == run["output_text"] == answer
