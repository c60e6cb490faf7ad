"""A cold burst of requests from several users through the local API Gateway: every answer is
the caller's own.

Powertools' resolver keeps the event it is handling where a module's `app` and every route
read it, in state one per process; in Lambda a process is an execution environment, which
runs one invocation at a time. The local runtime runs the handlers of many invocations in one
process and must keep them as apart as Lambda does.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from local.stack_session import LocalThreadline, local_threadline
from tests.integration.api_caller import ApiCaller
from threadline import runtime
from threadline.ids import new_id

USERS = 8
CONVERSATIONS_PER_USER = 2


@dataclass(frozen=True)
class Conversation:
    """What one caller asked for, and the ids the API answered with."""

    caller: ApiCaller
    purpose: str
    message: str
    thread_id: str | None = None
    run_id: str | None = None


@pytest.fixture(scope="module")
def product() -> Iterator[LocalThreadline]:
    with local_threadline() as session:
        yield session


@pytest.fixture(scope="module")
def base_url(product: LocalThreadline) -> Iterator[str]:
    api = product.http_api()
    yield api.start()
    api.stop()


def converse(
    conversation: Conversation, start: threading.Barrier
) -> tuple[Conversation, list[str]]:
    """Create a thread, start a run on it, read both; the problems with the answers."""
    caller, purpose = conversation.caller, conversation.purpose
    problems: list[str] = []
    start.wait()  # every conversation's first request goes out at once, to cold functions

    status, thread = caller.call("POST", "/threads", {"purpose": purpose})
    if status != 201 or thread["purpose"] != purpose:
        return conversation, [f"{caller.user} POST /threads {purpose}: {status} {thread}"]
    thread_id = thread["id"]

    status, accepted = caller.call(
        "POST", f"/threads/{thread_id}/runs", {"message": conversation.message}
    )
    if status != 202 or accepted["thread_id"] != thread_id:
        return conversation, [f"{caller.user} POST runs on {thread_id}: {status} {accepted}"]
    run_id = accepted["id"]

    status, fetched = caller.call("GET", f"/threads/{thread_id}")
    if status != 200 or (fetched["id"], fetched["purpose"]) != (thread_id, purpose):
        problems.append(f"{caller.user} GET {thread_id}: {status} {fetched}")
    status, run = caller.call("GET", accepted["status_url"])
    if status != 200 or (run["id"], run["thread_id"]) != (run_id, thread_id):
        problems.append(f"{caller.user} GET run {run_id} of {thread_id}: {status} {run}")
    return dataclasses.replace(conversation, thread_id=thread_id, run_id=run_id), problems


def test_concurrent_cold_requests_are_each_answered_for_their_caller(
    product: LocalThreadline, base_url: str
) -> None:
    callers = [ApiCaller(base_url, user) for user in (new_id("user") for _ in range(USERS))]
    conversations = [
        Conversation(caller, f"purpose-{caller.user}-{n}", f"question {n} from {caller.user}")
        for caller in callers
        for n in range(CONVERSATIONS_PER_USER)
    ]
    start = threading.Barrier(len(conversations), timeout=60)
    with ThreadPoolExecutor(max_workers=len(conversations)) as pool:
        outcomes = list(pool.map(lambda c: converse(c, start), conversations))

    problems = [problem for _, found in outcomes for problem in found]
    assert problems == []
    # What was stored is each caller's too: their threads, and runs with their own message.
    for caller in callers:
        stored = runtime.current().thread_store().list(caller.user, limit=100).threads
        assert sorted(thread.purpose for thread in stored) == sorted(
            c.purpose for c in conversations if c.caller == caller
        )
    for conversation, _ in outcomes:
        assert conversation.thread_id is not None
        assert conversation.run_id is not None
        record = runtime.current().run_store().get(conversation.thread_id, conversation.run_id)
        assert (record.user_id, record.message) == (conversation.caller.user, conversation.message)
