"""The updates a change of a watched run's record makes, from the table stream's old and new
images (as `threadline.events.changes` makes events): a run is watched from its first
subscription on, and the change that marks it watched makes the updates of everything so far.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from threadline.api_models import PendingApproval, RunResource
from threadline.models import RunStatus
from threadline.runs.records import RunRecord
from threadline.streams.messages import (
    ApprovalRequired,
    RunFinished,
    StatusChanged,
    ToolCallsMade,
    ToolCallUpdate,
    Update,
)

Item = Mapping[str, Any]


def watched_run(image: Item | None) -> RunRecord | None:
    """The run an image is of, if it is a watched run's record."""
    if image is None or not str(image.get("SK", "")).startswith("RUN#"):
        return None
    return RunRecord.model_validate(image) if image.get("watched") else None


def run_updates(old: Item | None, new: Item | None, at: datetime) -> list[Update]:
    run = watched_run(new)
    if run is None:
        return []
    before = watched_run(old)
    updates: list[Update] = []
    seen_calls = len(before.tool_calls) if before else 0
    if len(run.tool_calls) > seen_calls:
        updates.append(
            ToolCallsMade(
                run_id=run.run_id,
                at=at,
                calls=[
                    ToolCallUpdate(
                        call_id=call.call_id,
                        tool=call.name,
                        summary=call.summary,
                        duration_ms=call.duration_ms,
                        is_error=call.is_error,
                        approval=call.approval,
                    )
                    for call in run.tool_calls[seen_calls:]
                ],
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


def started_a_response(old: Item | None, new: Item | None) -> RunRecord | None:
    """The watched run, if this change gave it a response whose text could be relayed (not
    the change that marks it watched: the subscription starts that relay)."""
    run = watched_run(new)
    before = watched_run(old)
    if run is None or before is None or run.status.is_terminal or not run.remote_run_id:
        return None
    return run if before.remote_run_id != run.remote_run_id else None
