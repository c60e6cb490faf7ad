"""Every response Threadline causes at OpenAI reaches the usage ledger once and is deleted
with its thread, including one whose create reply was lost: its webhook makes it known.
Poll mode with the webhook endpoint configured, and push mode."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from local.openai_server import Fault, Step
from local.stack_session import LocalThreadline, local_threadline
from tests.integration.conftest import RunDriver
from threadline import runtime
from threadline.models import RunStatus
from threadline.threads.records import Thread


@pytest.fixture(scope="module", params=["poll", "push"])
def product(request: pytest.FixtureRequest) -> Iterator[LocalThreadline]:
    with local_threadline(parameters={"RunWaitMode": request.param}, webhooks=True) as session:
        yield session


def remote_responses(driver: RunDriver, thread: Thread) -> dict[str, Any]:
    """Every response at the server made for the thread (its metadata names it)."""
    server = driver.product.openai
    assert server is not None
    with server.lock:
        return {
            response_id: record.body
            for response_id, record in server.state.responses.items()
            if (record.body.get("metadata") or {}).get("thread") == thread.thread_id
        }


def ledger_tokens(driver: RunDriver) -> int:
    return runtime.current().usage_ledger().today(driver.user_id).total_tokens


def settle_webhooks(driver: RunDriver) -> None:
    assert driver.product.openai is not None
    assert driver.product.openai.flush_webhooks(), "webhooks still queued"


def test_a_response_whose_reply_was_lost_is_counted_once_and_deleted_with_the_thread(
    driver: RunDriver,
) -> None:
    thread = driver.new_thread()
    openai = driver.product.openai
    assert openai is not None
    # The lost create asks for tools nobody will answer; the run goes on with the second.
    openai.script.extend(
        [Step.call("get_table_schema", {"table_name": "sales"}), Step.say("answered")],
        key=thread.remote_id,
    )
    openai.faults.add(Fault.lost_reply(), method="POST", path="/v1/responses")

    _description, run = driver.run(thread, "Describe sales")
    settle_webhooks(driver)

    assert run.status is RunStatus.COMPLETED
    made = remote_responses(driver, thread)
    assert len(made) == 2, "the lost one and the one the run went on with"
    spent = sum(body["usage"]["total_tokens"] for body in made.values())
    assert ledger_tokens(driver) == spent
    assert run.usage.total_tokens < spent, "the run's own view leaves the lost one out"

    current = runtime.current().thread_store().get(driver.user_id, thread.thread_id)
    assert runtime.current().thread_store().claim_for_purge(current, idle_for=timedelta(0))
    runtime.current().cleaner().purge(current)
    assert remote_responses(driver, thread) == {}, "no response of the thread is left behind"
