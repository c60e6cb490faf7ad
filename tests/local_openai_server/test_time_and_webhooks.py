"""Latency on an injected clock, the ticker, webhooks and the benchmark counters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx2
import openai
import pytest
from openai import InvalidWebhookSignatureError

from local.openai_server import OpenAIServer, Step, sdk_client
from tests.local_openai_server.conftest import WEBHOOK_SECRET, FakeClock

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_response_latency_on_a_fake_clock(clock: FakeClock) -> None:
    server = OpenAIServer(latency_seconds=5, clock=clock)
    client = sdk_client(server)
    created = client.responses.create(model="m", input="hi", background=True)
    assert created.status == "queued"
    assert client.responses.retrieve(created.id).status == "in_progress"
    clock.advance(4.9)
    assert client.responses.retrieve(created.id).status == "in_progress"
    clock.advance(0.1)
    raw = client.responses.with_raw_response.retrieve(created.id)
    assert raw.parse().status == "completed"
    assert raw.headers["openai-poll-after-ms"] == "1000"  # a fifth of the latency

    stats = server.stats.objects[created.id]
    assert stats.retrieves == 3
    assert stats.finished_at - stats.created_at == pytest.approx(5)


def test_run_latency_and_runtime_change(clock: FakeClock) -> None:
    server = OpenAIServer(latency_seconds=2, clock=clock)
    client = sdk_client(server)
    assistant = client.beta.assistants.create(model="m")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "in_progress"
    clock.advance(2)
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "completed"

    server.latency_seconds = 0  # applies to turns started from now on
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "completed"


def test_a_steps_own_latency_overrides_the_servers_per_turn(clock: FakeClock) -> None:
    server = OpenAIServer(latency_seconds=5, clock=clock)
    client = sdk_client(server)
    assistant = client.beta.assistants.create(model="m")
    thread = client.beta.threads.create()
    quick = Step.say("quick").taking(1)
    assert quick.latency_seconds == 1
    assert Step.say("quick").latency_seconds is None
    server.script.extend(
        [quick, Step.say("default"), Step.say("instant").taking(0), Step.hang().taking(1)],
        key=thread.id,
    )

    def run_status(after: float) -> str:
        clock.advance(after)
        return client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status

    def start() -> openai.types.beta.threads.Run:
        client.beta.threads.messages.create(thread_id=thread.id, role="user", content="hi")
        return client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)

    run = start()  # the step's 1 s, not the server's 5 s
    assert run_status(0.9) == "in_progress"
    assert run_status(0.1) == "completed"
    run = start()  # no latency of its own: the server's
    assert run_status(4.9) == "in_progress"
    assert run_status(0.1) == "completed"
    run = start()  # 0 overrides too
    assert run_status(0) == "completed"
    run = start()  # a hang still never finishes
    assert run_status(60) == "in_progress"

    answers = client.beta.threads.messages.list(thread_id=thread.id, order="asc")
    texts = [m.content[0].text.value for m in answers.data if m.role == "assistant"]
    assert texts == ["quick", "default", "instant"]


def test_synchronous_response_waits_for_the_model() -> None:
    server = OpenAIServer(latency_seconds=0.02)
    started = time.monotonic()
    response = sdk_client(server).responses.create(model="m", input="hi")
    assert response.status == "completed"
    assert time.monotonic() - started >= 0.02


def test_poll_header_when_latency_is_zero(client: openai.OpenAI) -> None:
    created = client.responses.create(model="m", input="hi", background=True)
    raw = client.responses.with_raw_response.retrieve(created.id)
    assert raw.headers["openai-poll-after-ms"] == "1"


def webhook_server(**kwargs: object) -> tuple[OpenAIServer, list[tuple[bytes, dict[str, str]]]]:
    received: list[tuple[bytes, dict[str, str]]] = []
    server = OpenAIServer(
        webhook_url="https://receiver.test/hook", webhook_secret=WEBHOOK_SECRET, **kwargs
    )
    server.webhook_sender = lambda _url, body, headers: received.append((body, headers))
    return server, received


@pytest.mark.parametrize(
    ("step", "event_type"),
    [
        (Step.say("done"), "response.completed"),
        (Step.call("query_database", {"query": "SELECT 1"}), "response.completed"),
        (Step.fail(), "response.failed"),
        (Step.incomplete(), "response.incomplete"),
    ],
)
def test_webhook_fires_without_polling(step: Step, event_type: str) -> None:
    server, received = webhook_server()
    server.script.push(step)
    client = sdk_client(server)
    try:
        created = client.responses.create(model="m", input="hi", background=True)
        deadline = time.monotonic() + 2
        while not received and time.monotonic() < deadline:  # the ticker finishes it
            time.sleep(0.005)
        assert server.flush_webhooks()
    finally:
        server.stop()
    [(body, headers)] = received
    event = client.webhooks.unwrap(body, headers, secret=WEBHOOK_SECRET)
    assert event.type == event_type
    assert event.data.id == created.id
    assert server.stats.retrieves(created.id) == 0


def test_cancel_sends_response_cancelled() -> None:
    server, received = webhook_server()
    server.script.push(Step.hang())
    client = sdk_client(server)
    try:
        created = client.responses.create(model="m", input="hi", background=True)
        client.responses.cancel(created.id)
        assert server.flush_webhooks()
    finally:
        server.stop()
    [(body, headers)] = received
    assert client.webhooks.unwrap(body, headers).type == "response.cancelled"


def test_synchronous_responses_send_no_webhook() -> None:
    server, received = webhook_server()
    sdk_client(server).responses.create(model="m", input="hi")
    assert server.flush_webhooks()
    assert received == []


Forgery = Callable[[bytes, dict[str, str], str], tuple[bytes, dict[str, str], str]]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, headers, secret: (body.replace(b"resp_1", b"resp_2"), headers, secret),
        lambda body, headers, _: (body, headers, "whsec_" + "d3Jvbmc="),
        lambda body, headers, secret: (body, {**headers, "webhook-id": "wh_other"}, secret),
    ],
    ids=["tampered-body", "wrong-secret", "other-id"],
)
def test_forged_webhooks_are_rejected(tamper: Forgery) -> None:
    server, _ = webhook_server()
    client = sdk_client(server)
    payload = {
        "id": "evt_1",
        "object": "event",
        "created_at": int(time.time()),
        "type": "response.completed",
        "data": {"id": "resp_1"},
    }
    body, headers = server.sign_webhook(payload)
    assert client.webhooks.unwrap(body, headers).data.id == "resp_1"
    body, headers, secret = tamper(body, headers, WEBHOOK_SECRET)
    with pytest.raises(InvalidWebhookSignatureError, match="does not match"):
        client.webhooks.unwrap(body, headers, secret=secret)


def test_stale_webhook_is_rejected() -> None:
    server, _ = webhook_server()
    body, headers = server.sign_webhook({"type": "x"}, timestamp=int(time.time()) - 3600)
    with pytest.raises(InvalidWebhookSignatureError, match="too old"):
        sdk_client(server).webhooks.unwrap(body, headers)


def test_delivery_retries_then_gives_up() -> None:
    server, _ = webhook_server()
    server.webhook_dispatcher.retry_delays = (0.0, 0.0, 0.0)
    attempts: list[int] = []

    def flaky(_url: str, _body: bytes, _headers: dict[str, str]) -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise OSError("receiver down")

    server.webhook_sender = flaky
    server.emit_webhook("response.completed", "resp_1")
    assert server.flush_webhooks()
    assert (len(attempts), server.webhook_dispatcher.delivered) == (3, 1)  # third try worked

    def broken(_url: str, _body: bytes, _headers: dict[str, str]) -> None:
        raise OSError("receiver gone")

    server.webhook_sender = broken
    server.emit_webhook("response.completed", "resp_2")
    assert server.flush_webhooks()
    assert server.webhook_dispatcher.failed == 1
    server.stop()


def test_default_sender_posts_over_http() -> None:
    """The default sender really POSTs: deliver to a tiny WSGI receiver on a free port."""
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    received: list[tuple[bytes, str]] = []

    @Request.application
    def receiver(request: Request) -> Response:
        received.append((request.get_data(), request.headers["webhook-signature"]))
        return Response("ok")

    http = make_server("127.0.0.1", 0, receiver)
    threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    try:
        server = OpenAIServer(
            webhook_url=f"http://127.0.0.1:{http.server_address[1]}/hook",
            webhook_secret=WEBHOOK_SECRET,
        )
        server.emit_webhook("response.completed", "resp_http")
        assert server.flush_webhooks()
        server.stop()
    finally:
        http.shutdown()
        http.server_close()
    [(body, signature)] = received
    assert b"resp_http" in body
    assert signature.startswith("v1,")


def test_stats_endpoint_and_reset(server: OpenAIServer, client: openai.OpenAI) -> None:
    created = client.responses.create(model="m", input="hi", background=True)
    client.responses.retrieve(created.id)
    local = httpx2.Client(transport=httpx2.WSGITransport(app=server.wsgi_app))
    stats = local.get("http://local/_local/stats").json()
    assert stats["endpoints"]["GET /v1/responses/<response_id>"] == 1
    assert stats["endpoints"]["POST /v1/responses"] == 1
    assert stats["objects"][created.id]["retrieves"] == 1

    assert local.post("http://local/_local/reset").status_code == 200
    assert server.stats.snapshot()["objects"] == {}
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_concurrent_round_trips_are_consistent(server: OpenAIServer) -> None:
    client = sdk_client(server)
    tools = [{"type": "function", "name": "query_database"}]
    errors: list[BaseException] = []

    def round_trip() -> None:
        try:
            first = client.responses.create(
                model="m", input="sales by region", tools=tools, background=True
            )
            while (first := client.responses.retrieve(first.id)).status != "completed":
                pass
            [call] = first.output
            answer = client.responses.create(
                model="m",
                tools=tools,
                previous_response_id=first.id,
                input=[{"type": "function_call_output", "call_id": call.call_id, "output": "[]"}],
            )
            assert answer.output_text.startswith("Here is what I found")
        except BaseException as error:  # collected and re-raised on the main thread
            errors.append(error)

    threads = [threading.Thread(target=round_trip) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(server.state.responses) == 32
