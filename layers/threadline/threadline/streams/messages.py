"""The WebSocket protocol's messages (docs/streaming.md lists them with examples).

A client sends `subscribe`; the server answers `subscribed` (or `error`), then sends the run's
updates. Each update carries `seq`, the run's own sequence number: 1, 2, 3... with no gaps,
the same for every subscriber and on every replay, so a client applies them in `seq` order,
drops one it has applied, and after a reconnect subscribes with `after` set to the last it
applied to get only what it missed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from threadline.api_models import PendingApproval, RunResource
from threadline.models import RunStatus
from threadline.runs.records import ToolCallRecord

PROTOCOL_VERSION = "1"
# API Gateway posts at most 128 KB to a connection; a message stays well under it (and so
# does the log's item, under DynamoDB's 400 KB).
MESSAGE_BYTES = 96 * 1024


class Subscribe(BaseModel):
    """Client to server: watch a run of one's own, from after the update numbered `after`."""

    action: Literal["subscribe"]
    thread_id: str = Field(min_length=1, max_length=64)
    run_id: str = Field(min_length=1, max_length=64)
    after: int = Field(
        default=0, ge=0, le=10**10 - 2, description="The last seq the client applied (0: none)."
    )


class Subscribed(BaseModel):
    type: Literal["subscribed"] = "subscribed"
    version: str = PROTOCOL_VERSION
    run_id: str
    after: int
    status: RunStatus = Field(description="The run's status when the subscription began.")


class StreamError(BaseModel):
    type: Literal["error"] = "error"
    code: str
    message: str
    run_id: str | None = None


class Update(BaseModel):
    """What every numbered message carries."""

    seq: int = Field(default=0, ge=0, description="0 until the run's log numbers it (from 1).")
    run_id: str
    at: datetime


class StatusChanged(Update):
    type: Literal["run.status"] = "run.status"
    status: RunStatus
    reason: str | None = None


class ToolCallsMade(Update):
    type: Literal["tool.calls"] = "tool.calls"
    calls: list[ToolCallRecord] = Field(description="As the run view lists them.")


class ApprovalRequired(Update):
    type: Literal["approval.required"] = "approval.required"
    calls: list[PendingApproval]


class TextDelta(Update):
    type: Literal["text.delta"] = "text.delta"
    response_id: str = Field(description="The model's turn the text belongs to.")
    delta: str


class RunFinished(Update):
    type: Literal["run.view"] = "run.view"
    run: RunResource = Field(
        description="The run as GET .../runs/{id} shows it, without download links (GET signs "
        "them); the last update of a run."
    )
    abridged: bool = Field(
        default=False,
        description="The view was too large for one message: its output_text and tool_calls "
        "are left out (GET .../runs/{id} has them).",
    )

    @classmethod
    def of(cls, run_id: str, at: datetime, run: RunResource) -> RunFinished:
        """The view whole, or abridged when it would not fit one WebSocket message."""
        finished = cls(run_id=run_id, at=at, run=run)
        if len(finished.model_dump_json().encode()) <= MESSAGE_BYTES:
            return finished
        abridged = run.model_copy(update={"output_text": None, "tool_calls": []})
        return cls(run_id=run_id, at=at, run=abridged, abridged=True)


AnyUpdate = Annotated[
    StatusChanged | ToolCallsMade | ApprovalRequired | TextDelta | RunFinished,
    Field(discriminator="type"),
]
UPDATE = TypeAdapter(AnyUpdate)
