"""Signed callbacks on the local stack: a run's view POSTed to its callback_url when it ends,
signed so that the `standardwebhooks` package verifies it, retried with backoff while the
receiver fails, never sent where the deployment does not allow, nor to a private address."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from local.callback_receiver import CallbackReceiver
from local.openai_server import Step
from local.stack_session import LocalThreadline, local_threadline
from tests.integration.lambda_api import Client
from threadline.api_models import RunCallback


@pytest.fixture(scope="module")
def product() -> Iterator[LocalThreadline]:
    parameters = {
        "Backend": "responses",
        "CallbackRetrySeconds": "1",
        "CallbackAllowedHosts": "hooks.example.com,localhost",
    }
    with local_threadline(parameters=parameters) as session:
        yield session


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as receiving:
        yield receiving


def signing_secret(product: LocalThreadline) -> str:
    secret = product.stack.resources["CallbackSigningSecret"]
    return boto3.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"]


def start(alice: Client, thread_id: str, callback_url: str) -> tuple[int, Any]:
    status, body, _ = alice.call(
        "POST", f"/threads/{thread_id}/runs", {"message": "Hi", "callback_url": callback_url}
    )
    return status, body


def callback_when_settled(alice: Client, thread_id: str, run_id: str) -> dict[str, Any]:
    """The run's callback state once it is delivered or given up."""
    deadline = time.monotonic() + 30
    while True:
        status, run, _ = alice.call("GET", f"/threads/{thread_id}/runs/{run_id}")
        assert status == 200, run
        if run["callback"]["status"] != "pending":
            return run["callback"]
        assert time.monotonic() < deadline, run["callback"]
        time.sleep(0.05)


def test_a_run_calls_back_once_it_ends_signed_for_standard_webhooks(
    alice: Client, receiver: CallbackReceiver
) -> None:
    thread_id = alice.thread()
    alice.script(thread_id, Step.say("Called back."))
    status, accepted = start(alice, thread_id, f"{receiver.url}/hooks/runs?tenant=7")
    assert status == 202, accepted

    (callback,) = receiver.wait_for(1)
    assert callback.path == "/hooks/runs?tenant=7"
    payload = Webhook(signing_secret(alice.product)).verify(callback.body, callback.headers)
    assert callback.headers["webhook-id"] == f"{accepted['id']}.completed"
    assert RunCallback.model_validate(payload).data.status == "completed"  # as documented
    assert payload["type"] == "run.completed"
    assert payload["data"]["id"] == accepted["id"]
    assert payload["data"]["output_text"] == "Called back."
    state = callback_when_settled(alice, thread_id, accepted["id"])
    assert state["status"] == "delivered"
    assert state["attempts"] == 1
    assert state["last_status_code"] == 204
    with pytest.raises(WebhookVerificationError):
        Webhook(signing_secret(alice.product)).verify(
            callback.body.replace(b"Called back.", b"Forged"), callback.headers
        )


def test_a_callback_the_receiver_refuses_twice_is_retried_with_backoff(
    alice: Client, receiver: CallbackReceiver
) -> None:
    receiver.answers.extend([500, 503])
    thread_id = alice.thread()
    alice.script(thread_id, Step.say("Third time lucky."))
    status, accepted = start(alice, thread_id, f"{receiver.url}/hook")
    assert status == 202, accepted

    attempts = receiver.wait_for(3)
    assert len({attempt.headers["webhook-id"] for attempt in attempts}) == 1
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    assert 0.9 <= gaps[0] < gaps[1]  # 1 s, then 2 s (CallbackRetrySeconds 1, doubling)
    state = callback_when_settled(alice, thread_id, accepted["id"])
    assert (state["status"], state["attempts"], state["last_status_code"]) == ("delivered", 3, 204)
    secret = signing_secret(alice.product)
    assert all(Webhook(secret).verify(a.body, a.headers) for a in attempts)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://evil.example.net/hook", "is not one this deployment sends callbacks to"),
        ("http://hooks.example.com/hook", "must be an https URL"),
        ("https://user:pw@hooks.example.com/hook", "no user name or password"),
        ("https://169.254.169.254/latest/meta-data", "is not one this deployment"),
        ("https://hooks.example.com:99999/", "is not a URL"),
        ("ftp://hooks.example.com/", "must be an https URL"),
    ],
)
def test_a_callback_url_the_deployment_does_not_allow_is_refused_and_nothing_starts(
    alice: Client, url: str, why: str
) -> None:
    thread_id = alice.thread()
    status, body = start(alice, thread_id, url)
    assert status == 400, body
    assert body["error"]["code"] == "callback_url_not_allowed"
    assert why in body["error"]["message"]
    status, thread, _ = alice.call("GET", f"/threads/{thread_id}")
    assert thread["active_run_id"] is None


def test_an_allowed_host_that_resolves_to_a_private_address_is_never_called(
    alice: Client, receiver: CallbackReceiver
) -> None:
    thread_id = alice.thread()
    alice.script(thread_id, Step.say("Nobody hears this."))
    port = receiver.url.rsplit(":", 1)[1]
    # https: the local exception is for http only; localhost resolves to 127.0.0.1.
    status, accepted = start(alice, thread_id, f"https://localhost:{port}/hook")
    assert status == 202, accepted

    state = callback_when_settled(alice, thread_id, accepted["id"])
    assert (state["status"], state["last_error"], state["attempts"]) == (
        "failed",
        "address_not_allowed",
        1,
    )
    assert receiver.received == []
    assert json.dumps(state).count("localhost") == 1  # the URL it was given, nothing more
