"""Value objects shared by the backends, the tools and the handlers.

They are the normalised view of a run that both OpenAI backends map onto, so the state
machine and the handlers never see which API is in use.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class RunStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    REQUIRES_ACTION = "requires_action"
    # Threadline's own: a tool call waits for a person to approve or deny it.
    REQUIRES_APPROVAL = "requires_approval"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    INCOMPLETE = "incomplete"
    TIMED_OUT = "timed_out"  # Threadline's own verdict: the run deadline passed.

    @property
    def is_terminal(self) -> bool:
        return self not in (
            RunStatus.QUEUED,
            RunStatus.IN_PROGRESS,
            RunStatus.REQUIRES_ACTION,
            RunStatus.REQUIRES_APPROVAL,
        )


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens - other.input_tokens,
            output_tokens=self.output_tokens - other.output_tokens,
            total_tokens=self.total_tokens - other.total_tokens,
        )


class ToolCall(BaseModel):
    """A function call the model asked for; `arguments` is the raw JSON string it sent. An
    `mcp_approval` is a remote MCP server's call waiting for a person (`name` is
    `{server_label}.{tool}`, `id` the approval request's)."""

    id: str
    name: str
    arguments: str
    kind: Literal["function", "mcp_approval"] = "function"


class ToolOutput(BaseModel):
    """The answer to one ToolCall. `output` is what the model reads (a JSON string)."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    name: str
    output: str
    is_error: bool = False
    duration_ms: float = 0.0
    # Small, log-safe facts about the call (e.g. the SQL and its row count) for the timeline.
    summary: dict[str, Any] = Field(default_factory=dict)
    # An MCP approval's answer (ToolCall.kind mcp_approval); None for a function's output.
    approve: bool | None = None
