"""Where callbacks may go (checked at the request, and on the resolved addresses when sent),
and how a delivery goes: signed, retried with doubling waits, given up after a day, its
state kept on the run's record (a real RunStore on moto's DynamoDB)."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from standardwebhooks import Webhook

from local.callback_receiver import CallbackReceiver
from tests.unit.fakes import FakeClock
from threadline.callbacks.delivery import CallbackDeliveries, CallbackUnanswered, retry_delay
from threadline.callbacks.http import PinnedPoster
from threadline.callbacks.state import CallbackState
from threadline.callbacks.targets import CallbackAddressRefused, CallbackTargets, Destination
from threadline.errors import InvalidRequestError
from threadline.events.changes import RunEventDetail
from threadline.models import RunStatus, Usage
from threadline.runs.records import RunRecord, RunStore

SECRET = base64.b64encode(b"k" * 24).decode()
HOSTS = ["hooks.example.com", "*.tenants.example.org"]


def resolving_to(*addresses: str) -> Any:
    def resolve(host: str, port: int) -> Iterable[str]:
        return addresses

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/runs",
        "https://hooks.example.com:8443/runs?tenant=7",
        "https://acme.tenants.example.org/hook",
        "https://HOOKS.example.com/x",
    ],
)
def test_https_urls_of_allowed_hosts_are_accepted(url: str) -> None:
    assert CallbackTargets(HOSTS).accept(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/runs",
        "https://evil.example.com/runs",
        "https://tenants.example.org/hook",  # the wildcard names subdomains only
        "https://hooks.example.com.evil.net/",
        "https://user@hooks.example.com/",
        "https://hooks.example.com/#fragment",
        "https://[::1]/",
        "https://10.0.0.1/",
        "https:///nohost",
        "https://hooks.example.com/" + "a" * 2048,
        "javascript:alert(1)",
        "http://127.0.0.1:8080/hook",  # a deployment never allows local http
        "https://a..tenants.example.org/",
        "https://b\u00fccher.tenants.example.org/",  # IDNA hosts are given encoded (xn--)
        "https://" + "x" * 64 + ".tenants.example.org/",
        "https://hooks.example.com./",
    ],
)
def test_other_urls_are_refused_with_a_reason(url: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        CallbackTargets(HOSTS).accept(url)
    assert refused.value.code == "callback_url_not_allowed"


def test_no_allowed_hosts_means_no_callbacks() -> None:
    with pytest.raises(InvalidRequestError):
        CallbackTargets([""]).accept("https://hooks.example.com/")


def test_the_local_stack_alone_may_call_back_over_http_to_this_machine() -> None:
    local = CallbackTargets([], allow_local_http=True)
    assert local.accept("http://127.0.0.1:8080/hook") == "http://127.0.0.1:8080/hook"
    assert local.destination("http://localhost:9/").addresses[0] in ("127.0.0.1", "::1")
    with pytest.raises(InvalidRequestError):
        local.accept("http://10.0.0.1:8080/hook")


@pytest.mark.parametrize(
    "addresses",
    [
        ("10.0.0.7",),
        ("169.254.169.254",),  # the instance metadata service
        ("127.0.0.1",),
        ("100.64.0.1",),  # carrier-grade NAT
        ("0.0.0.0",),
        ("::1",),
        ("fd00::1",),
        ("fe80::1%eth0",),
        ("::ffff:10.0.0.1",),
        ("64:ff9b::a9fe:a9fe",),  # NAT64 of the metadata address
        ("::127.0.0.1",),
        ("::ffff:0:7f00:1",),
        ("2002:a9fe:a9fe::1",),  # 6to4
        ("2001::1",),  # Teredo
        ("fec0::1",),
        ("93.184.216.34", "192.168.1.1"),  # one bad address is enough
    ],
)
def test_a_host_resolving_to_any_non_public_address_is_refused_when_sent(
    addresses: tuple[str, ...],
) -> None:
    targets = CallbackTargets(HOSTS, resolver=resolving_to(*addresses))
    with pytest.raises(CallbackAddressRefused):
        targets.destination("https://hooks.example.com/runs")


def test_a_public_address_is_where_the_callback_connects() -> None:
    targets = CallbackTargets(HOSTS, resolver=resolving_to("93.184.216.34", "2606:2800::1"))
    destination = targets.destination("https://hooks.example.com/runs")
    assert (destination.addresses, destination.port) == (("93.184.216.34", "2606:2800::1"), 443)


def test_the_wait_doubles_from_the_first_up_to_two_hours() -> None:
    assert [retry_delay(attempt, 10) for attempt in range(1, 12)] == [
        10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 7200,
    ]  # fmt: skip


class Receiver:
    """Answers each POST with the next of `answers` (an int status, or a reason to raise)."""

    def __init__(self, *answers: int | str) -> None:
        self.answers = list(answers)
        self.posts: list[tuple[Destination, dict[str, str], bytes]] = []

    def post(self, destination: Destination, headers: dict[str, str], body: bytes) -> int:
        self.posts.append((destination, headers, body))
        answer = self.answers.pop(0)
        if isinstance(answer, str):
            raise CallbackUnanswered(answer)
        return answer


NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


def ended_run(store: RunStore) -> RunEventDetail:
    record = RunRecord(
        run_id="run_1",
        thread_id="thr_1",
        user_id="u1",
        assistant="data_analyst",
        status=RunStatus.COMPLETED,
        created_at=NOW,
        output_text="42",
        callback=CallbackState(url="https://hooks.example.com/runs"),
    )
    store.put_new(record)
    return RunEventDetail(
        event_id="run_1.completed",
        user_id="u1",
        run_id="run_1",
        thread_id="thr_1",
        assistant="data_analyst",
        status=RunStatus.COMPLETED,
        created_at=NOW,
        usage=Usage(),
        tool_rounds=0,
        callback=True,
    )


def deliveries(table: Any, receiver: Receiver, clock: FakeClock, hosts: list[str] = HOSTS) -> Any:
    return CallbackDeliveries(
        runs=RunStore(table),
        targets=CallbackTargets(hosts, resolver=resolving_to("93.184.216.34")),
        poster=receiver,
        secret=lambda: SECRET,
        view=lambda run: {"id": run.run_id, "output_text": run.output_text},
        first_retry_seconds=10,
        now=clock,
    )


def test_a_delivery_is_signed_retried_while_refused_and_kept_delivered(table: Any) -> None:
    clock = FakeClock(NOW)
    receiver = Receiver(500, "timeout", 200, 200)
    sending = deliveries(table, receiver, clock)
    ended = ended_run(RunStore(table))

    assert sending.deliver(ended, queued_at=NOW) == 10
    state = RunStore(table).get("thr_1", "run_1").callback
    assert state is not None
    assert (state.status, state.attempts, state.last_status_code) == ("pending", 1, 500)
    assert sending.deliver(ended, queued_at=NOW) == 20
    state = RunStore(table).get("thr_1", "run_1").callback
    assert state is not None
    assert (state.attempts, state.last_status_code, state.last_error) == (2, None, "timeout")
    assert sending.deliver(ended, queued_at=NOW) is None
    assert sending.deliver(ended, queued_at=NOW) is None  # a repeat: nothing sent

    assert len(receiver.posts) == 3
    state = RunStore(table).get("thr_1", "run_1").callback
    assert state is not None
    assert (state.status, state.attempts, state.last_status_code) == ("delivered", 3, 200)
    _, headers, body = receiver.posts[-1]
    assert headers["webhook-id"] == "run_1.completed"
    # As a receiver checks it (the package's verify also refuses a timestamp not near now).
    assert headers["webhook-signature"] == Webhook(SECRET).sign(
        "run_1.completed", NOW, body.decode()
    )
    assert headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    assert json.loads(body)["data"] == {"id": "run_1", "output_text": "42"}


def test_a_delivery_is_given_up_once_its_next_try_would_pass_a_day(table: Any) -> None:
    clock = FakeClock(NOW)
    receiver = Receiver(503)
    sending = deliveries(table, receiver, clock)
    ended = ended_run(RunStore(table))

    queued_at = NOW - timedelta(hours=24) + timedelta(seconds=5)  # the next try: in 10 s
    assert sending.deliver(ended, queued_at=queued_at) is None
    state = RunStore(table).get("thr_1", "run_1").callback
    assert state is not None
    assert (state.status, state.last_status_code, state.gave_up_at) == ("failed", 503, NOW)


def test_a_host_no_longer_allowed_is_given_up_without_a_post(table: Any) -> None:
    clock = FakeClock(NOW)
    receiver = Receiver()
    ended = ended_run(RunStore(table))
    assert deliveries(table, receiver, clock, hosts=[]).deliver(ended, queued_at=NOW) is None
    state = RunStore(table).get("thr_1", "run_1").callback
    assert state is not None
    assert (state.status, state.last_error) == ("failed", "url_not_allowed")
    assert receiver.posts == []


def test_a_name_that_does_not_resolve_is_tried_again_later(table: Any) -> None:
    def unresolvable(host: str, port: int) -> Iterable[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    receiver = Receiver()
    sending = CallbackDeliveries(
        runs=RunStore(table),
        targets=CallbackTargets(HOSTS, resolver=unresolvable),
        poster=receiver,
        secret=lambda: SECRET,
        view=lambda run: {},
        first_retry_seconds=10,
        now=FakeClock(NOW),
    )
    ended = ended_run(RunStore(table))
    assert sending.deliver(ended, queued_at=NOW) == 10
    state = RunStore(table).get("thr_1", "run_1").callback
    assert state is not None
    assert (state.status, state.last_error, receiver.posts) == ("pending", "unresolved", [])


def test_a_run_whose_thread_is_gone_has_nobody_to_call(table: Any) -> None:
    ended = ended_run(RunStore(table)).model_copy(update={"thread_id": "thr_deleted"})
    assert deliveries(table, Receiver(), FakeClock(NOW)).deliver(ended, queued_at=NOW) is None


def test_the_poster_takes_the_next_address_when_one_refuses_the_connection() -> None:
    with CallbackReceiver() as receiver:
        url = urlsplit(f"{receiver.url}/hook")
        closed = socket.socket()
        closed.bind(("127.0.0.2", url.port or 0))  # bound, never listening: refused
        try:
            destination = Destination(url=url, addresses=("127.0.0.2", "127.0.0.1"))
            status = PinnedPoster().post(destination, {"webhook-id": "w1"}, b"{}")
        finally:
            closed.close()
        (arrived,) = receiver.wait_for(1)
    assert status == 204
    assert arrived.headers["host"] == url.netloc


def test_a_receiver_dribbling_its_answer_is_cut_off_at_the_deadline() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def dribble() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\n")
            while not stop.wait(0.05):  # a header at a time, never done
                with contextlib.suppress(OSError):
                    connection.sendall(b"x-slow: 1\r\n")

    server = threading.Thread(target=dribble, daemon=True)
    server.start()
    port = listener.getsockname()[1]
    destination = Destination(url=urlsplit(f"http://127.0.0.1:{port}/"), addresses=("127.0.0.1",))
    try:
        with pytest.raises(CallbackUnanswered) as unanswered:
            PinnedPoster(connect_seconds=1, answer_seconds=0.3).post(destination, {}, b"{}")
    finally:
        stop.set()
        server.join()
        listener.close()
    assert unanswered.value.reason == "timeout"
