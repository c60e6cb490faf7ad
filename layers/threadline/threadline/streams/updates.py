"""The updates a change of a watched run's record makes, from the table stream's old and new
images (as `threadline.events.changes` makes events): a run is watched from its first
subscription on, and the change that marks it watched makes the updates of everything so far.
`UpdatePusher` stores them in the run's log and posts them to its subscribers (PushUpdates).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from threadline import clock
from threadline.api_models import PendingApproval, RunResource
from threadline.models import RunStatus
from threadline.runs.records import RunRecord
from threadline.streams.broadcast import Broadcast
from threadline.streams.log import UpdateLog
from threadline.streams.messages import (
    ApprovalRequired,
    RunFinished,
    StatusChanged,
    ToolCallsMade,
    Update,
)
from threadline.streams.subscribing import StartRelay

Item = Mapping[str, Any]


def watched_run(image: Item | None) -> RunRecord | None:
    """The run an image is of, if it is a watched run's record."""
    if image is None or not str(image.get("SK", "")).startswith("RUN#"):
        return None
    return RunRecord.model_validate(image) if image.get("watched") else None


def run_updates(before: RunRecord | None, run: RunRecord, at: datetime) -> list[Update]:
    """What changed from `before` (None: not watched before) to `run`, as updates."""
    updates: list[Update] = []
    seen_calls = len(before.tool_calls) if before else 0
    if len(run.tool_calls) > seen_calls:
        updates.append(
            ToolCallsMade(
                run_id=run.run_id,
                at=at,
                calls=run.tool_calls[seen_calls:],
            )
        )
    status_changed = before is None or before.status is not run.status
    if status_changed:
        updates.append(
            StatusChanged(run_id=run.run_id, at=at, status=run.status, reason=run.reason)
        )
    waiting = run.status is RunStatus.REQUIRES_APPROVAL
    if waiting and (
        status_changed or before is None or before.awaiting_calls != run.awaiting_calls
    ):
        updates.append(
            ApprovalRequired(
                run_id=run.run_id,
                at=at,
                calls=[
                    PendingApproval.model_validate(request, from_attributes=True)
                    for request in run.pending_approvals
                ],
            )
        )
    if run.status.is_terminal and (before is None or not before.status.is_terminal):
        updates.append(RunFinished.of(run.run_id, at, RunResource.of(run)))
    return updates


def started_a_response(before: RunRecord | None, run: RunRecord) -> bool:
    """Whether the change gave the run a response whose text could be relayed (not the change
    that marks it watched: the subscription starts that relay)."""
    if before is None or run.status.is_terminal or not run.remote_run_id:
        return False
    return before.remote_run_id != run.remote_run_id


class UpdatePusher:
    def __init__(
        self,
        log: UpdateLog,
        broadcast: Broadcast,
        *,
        start_relay: StartRelay | None,
        now: Callable[[], datetime] = clock.utc_now,
    ) -> None:
        self._log = log
        self._broadcast = broadcast
        self._start_relay = start_relay
        self._now = now

    def push(self, old: Item | None, new: Item | None, *, change: str) -> int:
        """Store and post the updates of one table change (`change` names it); how many
        posts were made. A change that gives a listened-to run a new response starts its
        text relay."""
        run = watched_run(new)
        if run is None:
            return 0
        before = watched_run(old)
        stored = self._log.append(run.run_id, run_updates(before, run, self._now()), change=change)
        listening = self._broadcast.to_run(run.run_id, stored)
        if listening and self._start_relay and started_a_response(before, run):
            self._start_relay(run.thread_id, run.run_id)
        return len(stored) * listening
