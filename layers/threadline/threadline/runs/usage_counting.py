"""Counting a run's tokens: each settled remote object once, whoever sees it settle first.

A run counts the responses whose final usage it read, in the transaction that records its
outcome (`UsageLedger.count_finished_run`). A response it made but cannot count (still going
when it ended, or made by a step that failed and was retried) is counted by its webhook or,
if that already came, here (`WebhookWaitStore.let_go`); a response no run knows (its create
reply was lost) by its webhook; on a backend without webhooks, a later StartRun of the thread
counts what settled after its run ended.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from threadline.errors import BackendRequestError, ThreadlineError

if TYPE_CHECKING:
    from threadline.backends.base import AssistantBackend
    from threadline.runs.state import RunState
    from threadline.runs.webhook_waits import WebhookWaitStore
    from threadline.threads.records import Thread
    from threadline.usage import UsageLedger


@dataclass(frozen=True)
class RunUsage:
    """Providers, as in `RunSteps`: counting builds only what it touches."""

    backend: Callable[[], AssistantBackend]
    usage: Callable[[], UsageLedger]
    waits: Callable[[], WebhookWaitStore]
    now: Callable[[], datetime]

    def count_finished(
        self, state: RunState, finishing: dict[str, Any], made: Iterable[str], now: datetime
    ) -> bool:
        """Record the run's end (`finishing`) with its count, once; True if this call did.
        `made` are the remote objects the run's record lists (every one its steps made)."""
        settled = state.settled_usage()
        first = self.usage().count_finished_run(
            finishing, state.user_id, state.thread_id, settled, now
        )
        current = [state.handle.run_remote_id] if state.handle else []
        self.count_left_over([*made, *current], counted=settled.keys())
        return first

    def count_left_over(self, made: Iterable[str], *, counted: Iterable[str] = ()) -> None:
        """Count the run's remote objects it could not count itself (`counted` it did): each
        is let go, so that its webhook counts it if it has not come, or counted here if it
        has. Safe to repeat. A transient OpenAI error is raised, so that the caller's retry
        (FinishRun's, or the next FinishLostRuns) counts it then; an object OpenAI refuses to
        show is not Threadline's to count."""
        skip = set(counted)
        for remote_id in dict.fromkeys(made):
            if remote_id not in skip and not self.waits().let_go(remote_id):
                with contextlib.suppress(BackendRequestError):
                    self.count_remote(remote_id)

    def count_remote(self, remote_id: str) -> bool:
        """Count a settled remote object's tokens if nobody has: a response whose create reply
        was lost is known only from its webhook. False if it is not ours or already counted."""
        found = self.backend().settled_usage(remote_id)
        if found is None:
            return False
        owner, usage = found
        return self.usage().count_once(owner.user_id, owner.thread_id, remote_id, usage, self.now())

    def count_earlier_runs(self, thread: Thread, now: datetime) -> None:
        """Count remote runs of the thread's earlier runs that settled after their run ended
        (on a backend without webhooks; starting this one stopped any still going). Best
        effort: the next run, or cleanup, looks again."""
        with contextlib.suppress(ThreadlineError):
            settled = self.backend().settled_runs(thread.remote_id)
            self.usage().count_uncounted(thread.user_id, thread.thread_id, settled, now)
