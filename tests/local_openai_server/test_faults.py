"""Injected network faults, seen by the real SDK over HTTP (and in-process where they apply)."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator

import httpx2
import openai
import pytest

from local.openai_server import Fault, OpenAIServer, sdk_client

CLIENT_TIMEOUT = 5.0


@pytest.fixture
def served() -> Iterator[OpenAIServer]:
    server = OpenAIServer()
    server.start_background("127.0.0.1", 0)
    yield server
    server.stop()


def http_client(server: OpenAIServer, timeout: float = CLIENT_TIMEOUT) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=timeout)


def join_request_threads() -> None:
    """Wait until werkzeug has finished every request, logging included."""
    for thread in threading.enumerate():
        if "process_request_thread" in thread.name:
            thread.join(CLIENT_TIMEOUT)


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, openai.RateLimitError), (500, openai.InternalServerError)],
)
def test_http_error_is_answered_before_any_work(
    served: OpenAIServer, status: int, error: type[openai.APIStatusError]
) -> None:
    client = http_client(served)
    served.faults.add(Fault.http_error(status, retry_after=3), method="POST", path="/v1/responses")
    with pytest.raises(error) as caught:
        client.responses.create(model="m", input="hi")
    assert caught.value.response.headers["retry-after"] == "3"
    assert set(caught.value.body) == {"message", "type", "param", "code"}
    assert "(scripted)" in caught.value.body["message"]
    assert served.state.responses == {}

    assert client.responses.create(model="m", input="hi").status == "completed"
    snapshot = served.stats.snapshot()
    assert snapshot["faults"] == {"http_error": 1}
    assert snapshot["endpoints"] == {"POST /v1/responses": 1}  # the faulted one never got there


def test_reset_drops_the_connection_before_any_work(served: OpenAIServer) -> None:
    client = http_client(served)
    served.faults.add(Fault.reset(), method="POST", path="/v1/conversations")
    with pytest.raises(openai.APIConnectionError):
        client.conversations.create()
    assert served.state.conversations == {}
    assert client.conversations.create().object == "conversation"
    assert served.stats.snapshot()["faults"] == {"reset": 1}


def test_lost_reply_does_the_work_but_drops_the_answer(served: OpenAIServer) -> None:
    client = http_client(served)
    served.faults.add(Fault.lost_reply(), method="POST", path="/v1/responses")
    with pytest.raises(openai.APIConnectionError):
        client.responses.create(model="m", input="hi")
    [record] = served.state.responses.values()
    assert record.body["status"] == "completed"
    assert client.responses.retrieve(record.body["id"]).output_text == "You said: hi"
    assert served.stats.snapshot()["faults"] == {"lost_reply": 1}


@pytest.mark.parametrize("fault", [Fault.reset(), Fault.lost_reply()], ids=["reset", "lost"])
def test_dropped_connection_gets_no_response_and_logs_nothing(
    served: OpenAIServer,
    fault: Fault,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    served.faults.add(fault, method="POST", path="/v1/responses")
    host, port = served.base_url.removeprefix("http://").removesuffix("/v1").split(":")
    body = json.dumps({"model": "m", "input": "hi"}).encode()
    head = (
        "POST /v1/responses HTTP/1.1\r\nHost: local\r\nAuthorization: Bearer x\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT) as raw:
        raw.sendall(head.encode() + body)
        try:
            answer = raw.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert answer == b""  # not even a 500 page
    join_request_threads()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert capfd.readouterr().err == ""


def test_slow_reply_outlasts_the_client_timeout_without_blocking_others(
    served: OpenAIServer,
) -> None:
    impatient, patient = http_client(served, timeout=0.2), http_client(served)
    warm = patient.responses.create(model="m", input="warm up")  # the SDK's first parse is slow
    # Held far longer than the patient client waits: it is answered only if nothing blocks.
    served.faults.add(Fault.slow_reply(60), method="POST", path="/v1/responses")
    with pytest.raises(openai.APITimeoutError):
        impatient.responses.create(model="m", input="hi")
    # The reply is still being held, yet the work is done and the server answers others.
    [response_id] = set(served.state.responses) - {warm.id}
    assert patient.responses.retrieve(response_id).status == "completed"
    assert served.stats.snapshot()["faults"] == {"slow_reply": 1}
    served.faults.clear()  # the held reply goes now, not in a minute


def test_scripted_faults_match_method_and_glob_in_order(served: OpenAIServer) -> None:
    client = http_client(served)
    served.faults.add(Fault.http_error(500), method="DELETE", path="/v1/conversations/*")
    served.faults.add(Fault.http_error(429), path="/v1/conversations*")
    served.faults.add(Fault.http_error(500), path="/v1/conversations*")
    with pytest.raises(openai.RateLimitError):  # the DELETE fault waits for a DELETE
        client.conversations.create()
    with pytest.raises(openai.InternalServerError):
        client.conversations.create()
    conversation = client.conversations.create()
    assert len(served.faults) == 1
    with pytest.raises(openai.InternalServerError):
        client.conversations.delete(conversation.id)
    assert client.conversations.delete(conversation.id).deleted is True


def test_a_scripted_fault_can_let_matching_requests_pass_first(served: OpenAIServer) -> None:
    client = http_client(served)
    served.faults.add(Fault.http_error(500), method="POST", path="/v1/conversations", after=2)
    client.conversations.create()
    client.conversations.create()
    with pytest.raises(openai.InternalServerError):
        client.conversations.create()
    client.conversations.create()
    assert len(served.faults) == 0


def test_random_faults_repeat_with_their_seed(served: OpenAIServer) -> None:
    def outcomes(seed: int) -> list[str]:
        served.reset()
        served.faults.randomly(rate=0.3, seed=seed)
        client = http_client(served)
        seen = []
        for _ in range(10):
            for call in (
                client.conversations.create,
                lambda: client.conversations.retrieve("conv_missing"),
                lambda: client.conversations.delete("conv_missing"),
            ):
                try:
                    call()
                    seen.append("ok")
                except openai.OpenAIError as error:
                    seen.append(type(error).__name__)
        return seen

    first = outcomes(seed=1234)
    faulted = [o for o in first if o not in ("ok", "NotFoundError")]
    assert sum(served.stats.snapshot()["faults"].values()) == len(faulted)
    assert 0 < len(faulted) < len(first)
    assert outcomes(seed=1234) == first
    assert outcomes(seed=99) != first


def test_random_faults_respect_methods_and_paths_never_local_and_clear(
    served: OpenAIServer,
) -> None:
    client = http_client(served)
    served.faults.randomly(
        rate=1, seed=0, kinds=[Fault.reset()], methods=["POST"], paths=["/v1/conversations"]
    )
    with pytest.raises(openai.APIConnectionError):
        client.conversations.create()
    with pytest.raises(openai.NotFoundError):  # a GET: not faulted
        client.conversations.retrieve("conv_missing")
    assert client.responses.create(model="m", input="hi").status == "completed"

    served.faults.randomly(rate=1, seed=0, methods=["GET", "POST"], paths=["*"])
    local = served.base_url.removesuffix("/v1") + "/_local/stats"
    stats = httpx2.get(local, timeout=CLIENT_TIMEOUT).json()
    assert stats["faults"] == {"reset": 1}

    served.faults.clear()
    assert client.conversations.create().object == "conversation"


def test_in_process_drops_reach_the_sdk_as_connection_errors(server: OpenAIServer) -> None:
    client = sdk_client(server)
    server.faults.add(Fault.reset())
    server.faults.add(Fault.lost_reply())
    with pytest.raises(openai.APIConnectionError):
        client.responses.create(model="m", input="reset")
    assert server.state.responses == {}
    with pytest.raises(openai.APIConnectionError):
        client.responses.create(model="m", input="lost")
    [record] = server.state.responses.values()
    assert record.body["status"] == "completed"
    server.reset()
    assert server.stats.snapshot()["faults"] == {}
    assert len(server.faults) == 0


def test_fault_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="4xx/5xx"):
        Fault.http_error(200)
    with pytest.raises(ValueError, match="negative"):
        Fault.slow_reply(-1)
    with pytest.raises(ValueError, match="rate"):
        OpenAIServer().faults.randomly(rate=1.5, seed=0)
