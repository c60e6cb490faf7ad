"""The response items where a run, its waiting execution and the webhook meet, against moto's
DynamoDB with the table as template.yaml declares it: who counts a response's tokens."""

from __future__ import annotations

from typing import Any

import pytest

from threadline.runs.state import RunState
from threadline.runs.webhook_waits import WebhookWaitStore


@pytest.fixture
def store(table: Any) -> WebhookWaitStore:
    return WebhookWaitStore(table)


def test_a_held_response_is_the_runs_and_its_event_is_kept(store: WebhookWaitStore) -> None:
    store.hold("resp_1", "run_1")
    seen = store.record_event("resp_1", "response.completed")
    assert (seen.run_id, seen.event_type, seen.awaited) == ("run_1", "response.completed", False)
    again = store.record_event("resp_1", "response.completed")  # a redelivery
    assert again == seen


def test_letting_go_before_the_webhook_leaves_the_count_to_it(store: WebhookWaitStore) -> None:
    store.hold("resp_1", "run_1")
    assert store.let_go("resp_1") is True, "its webhook will count it"
    assert store.record_event("resp_1", "response.completed").run_id is None
    assert store.let_go("resp_1") is False, "let go already: the caller counts (once)"


def test_letting_go_after_the_webhook_leaves_the_count_to_the_run(
    store: WebhookWaitStore,
) -> None:
    store.hold("resp_1", "run_1")
    assert store.record_event("resp_1", "response.completed").run_id == "run_1"
    assert store.let_go("resp_1") is False, "the webhook came and left it to the run"


def test_a_response_nobody_held_is_the_webhooks(store: WebhookWaitStore) -> None:
    assert store.record_event("resp_lost", "response.completed").run_id is None
    assert store.let_go("resp_never_held") is False


def test_a_wait_is_claimed_once_both_halves_are_there(store: WebhookWaitStore) -> None:
    state = RunState(run_id="run_1", thread_id="thr_1", user_id="user-1")
    store.hold("resp_1", "run_1")
    assert store.register_wait("resp_1", "token-1", state).awaited is True
    assert store.claim("resp_1") is None, "no event yet"
    assert store.record_event("resp_1", "response.completed").awaited is True
    claimed = store.claim("resp_1")
    assert claimed is not None
    assert (claimed.task_token, claimed.state.run_id) == ("token-1", "run_1")
    assert store.claim("resp_1") is None, "once"
    assert store.record_event("resp_1", "response.completed").awaited is False
