"""What every run that should have come through unharmed is checked for."""

from __future__ import annotations

from local.chaos import history_at_server, tokens_by_user
from local.openai_server import OpenAIServer
from threadline import runtime
from threadline.models import RunStatus
from threadline.threads.records import Thread


def assert_completed_cleanly(
    server: OpenAIServer, thread: Thread, run_id: str, *, question: str, answer: str
) -> None:
    """The run completed after a hand-off and a tool round, its thread is free, its question
    and answer are in the thread's history once, and every token reached the ledger once."""
    record = runtime.current().run_store().get(thread.thread_id, run_id)
    assert record.status is RunStatus.COMPLETED, record.reason
    assert [entry.step for entry in record.timeline] == [
        "started",
        "handed_off",
        "tool_round",
        "finished",
    ]
    thread = runtime.current().thread_store().get(thread.user_id, thread.thread_id)
    assert thread.active_run_id is None
    assert history_at_server(server, thread) == [("user", question), ("assistant", answer)]
    ledger = runtime.current().usage_ledger().today(thread.user_id)
    assert ledger.total_tokens == tokens_by_user(server)[thread.user_id] > 0
    assert ledger.runs == 1
