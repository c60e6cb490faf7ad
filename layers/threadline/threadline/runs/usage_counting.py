"""Counting a run's tokens: each settled remote object once, whoever sees it settle first
(FinishRun, the webhook, or a later StartRun of the thread; see `UsageLedger.count_once`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from threadline.errors import ThreadlineError

if TYPE_CHECKING:
    from threadline.backends.base import AssistantBackend
    from threadline.runs.state import RunState
    from threadline.threads.records import Thread
    from threadline.usage import UsageLedger


@dataclass(frozen=True)
class RunUsage:
    """Providers, as in `RunSteps`: counting builds only what it touches."""

    backend: Callable[[], AssistantBackend]
    usage: Callable[[], UsageLedger]
    now: Callable[[], datetime]

    def count_finished(self, state: RunState, now: datetime) -> None:
        """Count the tokens of each of the run's remote responses that settled, once each.
        One still going is counted by its webhook when it settles (`count_remote`), or, on a
        backend without webhooks, by a later StartRun of the thread that finds it settled."""
        if state.handle is None:
            return
        self.usage().count_each(state.user_id, state.thread_id, state.handle.finished_usage, now)
        self.count_settled(state, now)

    def count_settled(self, state: RunState, now: datetime | None = None) -> bool:
        """Count the current remote response's tokens if it settled and nobody has."""
        if state.handle is None or not state.usage_settled:
            return False
        return self.usage().count_once(
            state.user_id,
            state.thread_id,
            state.handle.run_remote_id,
            state.usage - state.handle.carried_usage,
            now or self.now(),
        )

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
