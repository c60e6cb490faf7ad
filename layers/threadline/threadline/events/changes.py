"""Threadline's events, made from the table's changes.

Each change an event reports is one write to the table: a run's status, an upload settling,
a user's day crossing the token budget. The steps that make those writes make them once
(conditional writes), and a step retried after its write either writes nothing or writes the
same status again; the table's stream carries every write exactly once, in order per item. So
an event is made where a stream record's old and new images differ in what the event
reports, and nowhere else: a retried step publishes nothing new.

An event's `event_id` names the change (the same change always has the same id), so a
subscriber that may see a delivery twice (EventBridge delivers at least once) can drop it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from threadline.files.records import AT_OPENAI, FileRecord, FileStatus
from threadline.models import RunStatus, Usage
from threadline.runs.records import RunRecord, utf8_prefix
from threadline.usage import budget_resets_at

SOURCE = "threadline"

RUN_DETAIL_TYPES = {
    RunStatus.IN_PROGRESS: "Run Started",
    RunStatus.REQUIRES_APPROVAL: "Run Requires Approval",
    RunStatus.COMPLETED: "Run Completed",
    RunStatus.FAILED: "Run Failed",
    RunStatus.CANCELLED: "Run Cancelled",
    RunStatus.EXPIRED: "Run Expired",
    RunStatus.INCOMPLETE: "Run Incomplete",
    RunStatus.TIMED_OUT: "Run Timed Out",
}
# An upload is ingested once Threadline's part is done (checked, at OpenAI, attached): it
# may still be indexing for file search, and that indexing may fail later.
UPLOAD_DETAIL_TYPES = {
    FileStatus.INDEXING: "Upload Ingested",
    FileStatus.INGESTED: "Upload Ingested",
    FileStatus.REJECTED: "Upload Rejected",
    FileStatus.FAILED: "Upload Failed",
}
BUDGET_EXCEEDED = "Budget Exceeded"
# With text on, each of a run event's texts is cut to this many UTF-8 bytes: an EventBridge
# entry holds 256 KB, and an event too large would never be published.
TEXT_LIMIT_BYTES = 64 * 1024

Item = Mapping[str, Any]


class EventDetail(BaseModel):
    version: Literal["1"] = "1"  # a change that breaks a subscriber gets a new version
    event_id: str = Field(description="Names the change; the same change has the same id.")
    user_id: str


class AwaitedCall(BaseModel):
    call_id: str
    tool: str


class RunEventDetail(EventDetail):
    run_id: str
    thread_id: str
    assistant: str
    status: RunStatus
    reason: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    queued_seconds: float | None = Field(
        default=None, description="From the request to the start (a queued run waits longer)."
    )
    duration_seconds: float | None = None
    usage: Usage
    tool_rounds: int
    callback: bool = Field(description="Whether the run has a callback URL to be told at.")
    awaiting_approval: list[AwaitedCall] = Field(
        default_factory=list, description="Run Requires Approval: the calls a person decides."
    )
    # Only where the deployment's EventsIncludeText parameter is true.
    message: str | None = None
    output_text: str | None = None
    text_truncated: bool | None = None  # a text was cut to TEXT_LIMIT_BYTES


class UploadEventDetail(EventDetail):
    upload_id: str
    thread_id: str
    status: FileStatus
    reason: str | None = None
    content_type: str
    bytes: int
    created_at: datetime
    ingested_at: datetime | None = None


class BudgetEventDetail(EventDetail):
    day: str
    total_tokens: int
    daily_token_budget: int
    resets_at: datetime


class ThreadlineEvent(BaseModel):
    detail_type: str
    detail: RunEventDetail | UploadEventDetail | BudgetEventDetail
    time: datetime | None = None  # when the change happened, where the record says


class ChangeEvents:
    """The events one stream record's change makes (none, mostly)."""

    def __init__(self, *, include_text: bool, daily_token_budget: int) -> None:
        self._include_text = include_text
        self._budget = daily_token_budget  # 0: no budget

    def of(self, old: Item | None, new: Item | None) -> list[ThreadlineEvent]:
        if new is None:
            return []  # a delete (expiry, cleanup) reports nothing
        sort_key = str(new.get("SK", ""))
        if sort_key.startswith("RUN#"):
            return self._run(old, new)
        if sort_key.startswith("FILE#"):
            return self._upload(old, new)
        if sort_key.startswith("USAGE#"):
            return self._budget_crossed(old, new)
        return []

    def _run(self, old: Item | None, new: Item) -> list[ThreadlineEvent]:
        # A run is created queued; it starts once, and ends once (an ended run stays so). It
        # waits for a person at most once per tool round.
        status = RunStatus(new["status"])
        was = RunStatus(old["status"]) if old is not None else None
        started = was is RunStatus.QUEUED and status is RunStatus.IN_PROGRESS
        ended = was is not None and not was.is_terminal and status.is_terminal
        waiting = was not in (None, status) and status is RunStatus.REQUIRES_APPROVAL
        if not (started or ended or waiting):
            return []
        run = RunRecord.model_validate(new)
        change = f"{status.value}.{run.tool_rounds}" if waiting else status.value
        detail = RunEventDetail(
            event_id=f"{run.run_id}.{change}",
            user_id=run.user_id,
            run_id=run.run_id,
            thread_id=run.thread_id,
            assistant=run.assistant,
            status=status,
            reason=run.reason,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            queued_seconds=(run.started_at - run.created_at).total_seconds()
            if run.started_at
            else None,
            duration_seconds=run.duration_seconds,
            usage=run.usage,
            tool_rounds=run.tool_rounds,
            callback="callback" in new,
            awaiting_approval=[
                AwaitedCall(call_id=request.call_id, tool=request.tool)
                for request in run.pending_approvals
            ]
            if waiting
            else [],
            **(_texts(run) if self._include_text else {}),
        )
        return [
            ThreadlineEvent(
                detail_type=RUN_DETAIL_TYPES[status],
                detail=detail,
                time=run.finished_at or (None if waiting else run.started_at),
            )
        ]

    def _upload(self, old: Item | None, new: Item) -> list[ThreadlineEvent]:
        # An upload is created pending and settles once; one still indexing may fail later
        # (indexing finishing is no event: it was reported ingested already).
        status = FileStatus(new["status"])
        was = FileStatus(old["status"]) if old is not None else None
        settled = was is FileStatus.PENDING and status is not FileStatus.PENDING
        failed_indexing = was is FileStatus.INDEXING and status is FileStatus.FAILED
        if not (settled or failed_indexing):
            return []
        upload = FileRecord.model_validate(new)
        detail = UploadEventDetail(
            event_id=f"{upload.upload_id}.{'ingested' if status in AT_OPENAI else status.value}",
            user_id=upload.user_id,
            upload_id=upload.upload_id,
            thread_id=upload.thread_id,
            status=status,
            reason=upload.reason,
            content_type=upload.content_type,
            bytes=upload.bytes,
            created_at=upload.created_at,
            ingested_at=upload.ingested_at,
        )
        return [ThreadlineEvent(detail_type=UPLOAD_DETAIL_TYPES[status], detail=detail)]

    def _budget_crossed(self, old: Item | None, new: Item) -> list[ThreadlineEvent]:
        before = int((old or {}).get("total_tokens", 0))
        after = int(new.get("total_tokens", 0))
        if not self._budget or not before < self._budget <= after:
            return []
        user_id = str(new["PK"]).removeprefix("USER#")
        day = str(new["SK"]).removeprefix("USAGE#")
        detail = BudgetEventDetail(
            event_id=f"budget.{user_id}.{day}",
            user_id=user_id,
            day=day,
            total_tokens=after,
            daily_token_budget=self._budget,
            resets_at=budget_resets_at(day),
        )
        return [ThreadlineEvent(detail_type=BUDGET_EXCEEDED, detail=detail)]


def _texts(run: RunRecord) -> dict[str, Any]:
    """The run's message and answer, each cut to TEXT_LIMIT_BYTES."""
    texts: dict[str, Any] = {"message": run.message, "output_text": run.output_text}
    for name, text in list(texts.items()):
        kept = utf8_prefix(text or "", TEXT_LIMIT_BYTES)
        if kept != (text or ""):
            texts[name] = kept
            texts["text_truncated"] = True
    return texts
