"""Request and response bodies of the HTTP API (the OpenAPI document is generated from them)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from threadline.assistant_config import AssistantConfig, Catalogue
from threadline.callbacks.state import CallbackState
from threadline.callbacks.targets import MAX_URL_LENGTH
from threadline.files.generated import DownloadLink
from threadline.files.records import FileRecord, FileStatus
from threadline.models import RunStatus, Usage
from threadline.runs.approvals import ApprovalDecision
from threadline.runs.records import RunRecord, ToolCallRecord
from threadline.runs.starting import IfBusy
from threadline.runs.state import TimelineEntry
from threadline.threads.records import Thread
from threadline.threads.run_queue import MAX_QUEUED
from threadline.usage import DailyUsage, UsageSummary


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateThreadBody(StrictBody):
    purpose: str = Field(
        default="default",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="What the thread is for; one reusable thread per user and purpose.",
    )


class AssistantTool(BaseModel):
    name: str
    kind: Literal["function", "lambda", "mcp", "code_interpreter", "file_search"] = Field(
        description="A Python function or a Lambda function Threadline runs, a remote MCP "
        "server (named by its label), or a tool OpenAI hosts."
    )
    needs_approval: bool = Field(
        default=False,
        description="Whether a person approves each call before it runs (an MCP server: some "
        "or all of its tools' calls).",
    )


class AssistantView(BaseModel):
    name: str = Field(description="What `assistant` names in POST .../runs.")
    display_name: str
    model: str
    tools: list[AssistantTool]

    @classmethod
    def of(cls, config: AssistantConfig, catalogue: Catalogue, default_model: str) -> AssistantView:
        python = [
            AssistantTool(
                name=name, kind="function", needs_approval=catalogue.tools[name].requires_approval
            )
            for name in config.tools
        ]
        lambdas = [
            AssistantTool(name=tool.name, kind="lambda", needs_approval=tool.requires_approval)
            for tool in config.lambda_tools
        ]
        mcp = [
            AssistantTool(
                name=server.server_label,
                kind="mcp",
                needs_approval=server.require_approval != "never",
            )
            for server in config.mcp_servers
        ]
        hosted = [AssistantTool(name=hosted, kind=hosted) for hosted in config.hosted_tools]
        return cls(
            name=config.name,
            display_name=config.display_name,
            model=config.model or default_model,
            tools=python + lambdas + mcp + hosted,
        )


class AssistantList(BaseModel):
    assistants: list[AssistantView]

    @classmethod
    def of(cls, catalogue: Catalogue, default_model: str) -> AssistantList:
        return cls(
            assistants=[
                AssistantView.of(config, catalogue, default_model)
                for config in catalogue.assistants.values()
            ]
        )


class StartRunBody(StrictBody):
    message: str = Field(min_length=1, description="The user's message.")
    assistant: str = Field(
        default="data_analyst",
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="Which assistant runs: a name GET /assistants lists.",
    )
    if_busy: IfBusy = Field(
        default="reject",
        description="What to do when the thread has an active (or queued) run: `reject` "
        "answers 409 `run_active`; `enqueue` queues this run (202, status `queued`, its place "
        "in `queue_position`) to start when the thread frees, in arrival order, at most "
        f"{MAX_QUEUED} per thread (409 `queue_full` beyond); `interrupt` cancels the active "
        "run (recorded `cancelled`, reason `interrupted`) and starts this one right after it.",
    )
    callback_url: str | None = Field(
        default=None,
        max_length=MAX_URL_LENGTH,
        description="Where to POST the run's view when it ends, signed per Standard Webhooks "
        "(README: Callbacks). An https URL whose host the deployment allows "
        "(CallbackAllowedHosts); 400 `callback_url_not_allowed` otherwise.",
    )


class ThreadView(BaseModel):
    id: str
    purpose: str
    backend: str
    created_at: datetime
    last_activity: datetime
    active_run_id: str | None = None

    @classmethod
    def of(cls, thread: Thread) -> ThreadView:
        return cls(
            id=thread.thread_id,
            purpose=thread.purpose,
            backend=thread.backend,
            created_at=thread.created_at,
            last_activity=thread.last_activity,
            active_run_id=thread.active_run_id,
        )


class ThreadList(BaseModel):
    threads: list[ThreadView]
    next_cursor: str | None = None


# A run as the API shows it (the backends' RunView is how a remote run stands). No docstring:
# it would become the schema's description in the OpenAPI document.
class PendingApproval(BaseModel):
    call_id: str = Field(description="What a decision in POST .../approvals names.")
    tool: str
    arguments: str = Field(description="The model's JSON arguments for the call.")
    requested_at: datetime


class RunResource(BaseModel):
    id: str
    thread_id: str
    assistant: str
    status: RunStatus
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    output_text: str | None = None
    output_truncated: bool = Field(
        default=False,
        description="The answer was longer than a run keeps (96,000 bytes of UTF-8): "
        "output_text is its start; the thread at OpenAI has it whole.",
    )
    usage: Usage
    tool_rounds: int
    tool_calls: list[ToolCallRecord]
    tool_calls_omitted: int = Field(
        default=0,
        description="Calls the run made beyond those tool_calls records (a run keeps 64,000 "
        "bytes of them).",
    )
    reason: str | None = None
    files: list[DownloadLink] = Field(
        default_factory=list, description="Files the model made, with short-lived download URLs."
    )
    queue_position: int | None = Field(
        default=None,
        description="While the run waits in its thread's queue: its place (1 starts next).",
    )
    callback: CallbackState | None = Field(
        default=None, description="The run's callback URL and how its delivery went."
    )
    pending_approvals: list[PendingApproval] = Field(
        default_factory=list,
        description="While the run is requires_approval: the tool calls waiting for the "
        "owner's decision (POST .../approvals).",
    )
    timeline: list[TimelineEntry] = Field(
        default_factory=list,
        description="The run's course once it ended: started, each tool round, the hand-off "
        "from the Express tier to the Standard one, a cancel, the finish; each with its tier "
        "and the status checks made since the entry before.",
    )

    @classmethod
    def of(
        cls,
        run: RunRecord,
        files: list[DownloadLink] | None = None,
        queue_position: int | None = None,
    ) -> RunResource:
        return cls(
            id=run.run_id,
            thread_id=run.thread_id,
            assistant=run.assistant,
            status=run.status,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_seconds=run.duration_seconds,
            output_text=run.output_text,
            output_truncated=run.output_truncated,
            usage=run.usage,
            tool_rounds=run.tool_rounds,
            tool_calls=run.tool_calls,
            tool_calls_omitted=run.tool_calls_omitted,
            reason=run.reason,
            files=files or [],
            timeline=run.timeline,
            queue_position=queue_position,
            callback=run.callback,
            pending_approvals=[
                PendingApproval.model_validate(request, from_attributes=True)
                for request in run.pending_approvals
            ],
        )


class ApprovalsBody(StrictBody):
    decisions: list[ApprovalDecision] = Field(
        min_length=1,
        max_length=20,
        description="A decision for one or more of the run's pending approvals.",
    )


class RunCallback(BaseModel):
    """What a run's callback POSTs when the run ends (docs/callbacks.md)."""

    type: str = Field(description="`run.` and the run's status, e.g. `run.completed`.")
    timestamp: datetime = Field(description="When this try was sent.")
    data: RunResource = Field(description="The run, as GET .../runs/{run_id} shows it.")


class RunAccepted(BaseModel):
    id: str
    thread_id: str
    status: RunStatus
    status_url: str
    queue_position: int | None = Field(
        default=None, description="Queued (`if_busy=enqueue` or `interrupt`): its place."
    )


class MessageView(BaseModel):
    id: str
    role: str
    text: str


class MessageList(BaseModel):
    messages: list[MessageView]
    next_cursor: str | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, object]] | dict[str, object] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class UsageView(BaseModel):
    today: DailyUsage
    daily_token_budget: int | None = Field(description="null: no budget")
    remaining_tokens: int | None
    resets_at: datetime
    recent_days: list[DailyUsage]

    @classmethod
    def of(cls, summary: UsageSummary) -> UsageView:
        return cls(
            today=summary.today,
            daily_token_budget=summary.daily_token_budget,
            remaining_tokens=summary.remaining_tokens,
            resets_at=summary.resets_at,
            recent_days=summary.recent_days,
        )


class Health(BaseModel):
    status: str = "ok"


class CreateUploadBody(StrictBody):
    filename: str = Field(min_length=1, max_length=200, description="The file's name.")
    content_type: str = Field(
        min_length=1, max_length=255, description="Its MIME type; must match the extension."
    )
    # Strict: a size of `true` or "10" is a client's mistake, not a number to guess at.
    size: int = Field(ge=1, strict=True, description="Its exact size in bytes.")


class FileView(BaseModel):
    id: str
    filename: str
    content_type: str
    bytes: int
    status: FileStatus = Field(
        description=(
            "pending until the file arrives; indexing while OpenAI indexes it for file search "
            "(code interpreter can already use it); ingested once every tool can; rejected or "
            "failed with a reason."
        )
    )
    reason: str | None = None
    created_at: datetime
    ingested_at: datetime | None = Field(default=None, description="When it became ingested.")

    @classmethod
    def of(cls, record: FileRecord) -> FileView:
        return cls(
            id=record.upload_id,
            filename=record.filename,
            content_type=record.content_type,
            bytes=record.bytes,
            status=record.status,
            reason=record.reason,
            created_at=record.created_at,
            ingested_at=record.ingested_at,
        )


class FileList(BaseModel):
    files: list[FileView]
