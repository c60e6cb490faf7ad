"""A thread's history as the run records tell it: what the model sees on the next run."""

from __future__ import annotations

from datetime import UTC, datetime

from threadline.models import RunStatus
from threadline.runs.records import RunRecord, history_of

AT = datetime(2026, 11, 29, tzinfo=UTC)


def run(run_id: str, status: RunStatus, message: str | None, answer: str | None = None):
    return RunRecord(
        run_id=run_id,
        thread_id="thr_1",
        user_id="alice",
        assistant="data_analyst",
        message=message,
        status=status,
        output_text=answer,
        created_at=AT,
    )


def test_completed_runs_give_question_and_answer_the_active_one_its_question() -> None:
    records = [
        run("run_1", RunStatus.COMPLETED, "Hi", "Hello"),
        run("run_2", RunStatus.IN_PROGRESS, "And now?"),
    ]
    assert [(m.id, m.role, m.text) for m in history_of(records)] == [
        ("run_1-user", "user", "Hi"),
        ("run_1-assistant", "assistant", "Hello"),
        ("run_2-user", "user", "And now?"),
    ]


def test_runs_that_ended_otherwise_are_not_part_of_the_history() -> None:
    ended = [
        run(f"run_{status.value}", status, "lost?")
        for status in RunStatus
        if status.is_terminal and status is not RunStatus.COMPLETED
    ]
    assert len(ended) == 5
    assert history_of([*ended, run("run_9", RunStatus.COMPLETED, "Q", "A")])[0].text == "Q"
    assert history_of(ended) == []


def test_a_run_recorded_before_messages_were_kept_is_skipped() -> None:
    assert history_of([run("run_0", RunStatus.COMPLETED, None, "orphan answer")]) == []
