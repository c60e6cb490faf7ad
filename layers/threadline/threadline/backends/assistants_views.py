"""How an Assistants v2 run reads to Threadline: its status, tool calls, usage, error and the
reply its messages hold, as the port's `RunView`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from openai.types.beta.threads import Run

from threadline.backends.base import GeneratedFile, RunHandle, RunView
from threadline.models import RunStatus, ToolCall, Usage

if TYPE_CHECKING:
    from openai.types.beta.threads import Message

_STATUS = {
    "queued": RunStatus.QUEUED,
    "in_progress": RunStatus.IN_PROGRESS,
    "cancelling": RunStatus.IN_PROGRESS,
    "requires_action": RunStatus.REQUIRES_ACTION,
    "completed": RunStatus.COMPLETED,
    "failed": RunStatus.FAILED,
    "cancelled": RunStatus.CANCELLED,
    "expired": RunStatus.EXPIRED,
    "incomplete": RunStatus.INCOMPLETE,
}
ACTIVE_STATUSES = frozenset({"queued", "in_progress", "requires_action"})


def status_of(run: Run) -> RunStatus:
    return _STATUS[run.status]


def run_view(
    run: Run,
    handle: RunHandle,
    poll_after: float | None,
    final_message: Callable[[RunHandle], tuple[str | None, list[GeneratedFile]]],
) -> RunView:
    """The run as of `run`; `final_message` is asked for the reply once it has completed."""
    status = status_of(run)
    output_text, files = final_message(handle) if status is RunStatus.COMPLETED else (None, [])
    return RunView(
        status=status,
        tool_calls=tool_calls_of(run),
        output_text=output_text,
        usage=usage_of(run),
        error=error_of(run),
        poll_after_seconds=poll_after,
        generated_files=files,
        settled=status.is_terminal,
    )


def final_message(messages: list[Message]) -> tuple[str | None, list[GeneratedFile]]:
    """A run's reply from its messages, newest first: the text of the newest assistant
    message and the images every assistant message holds."""
    replies = [message for message in messages if message.role == "assistant"]
    if not replies:
        return None, []
    text = "".join(part.text.value for part in replies[0].content if part.type == "text")
    files = [
        GeneratedFile(file_id=part.image_file.file_id)
        for message in replies
        for part in message.content
        if part.type == "image_file"
    ]
    return text, files


def tool_calls_of(run: Run) -> list[ToolCall]:
    if run.status != "requires_action" or run.required_action is None:
        return []
    return [
        ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
        for call in run.required_action.submit_tool_outputs.tool_calls
    ]


def usage_of(run: Run) -> Usage:
    if run.usage is None:
        return Usage()
    return Usage(
        input_tokens=run.usage.prompt_tokens,
        output_tokens=run.usage.completion_tokens,
        total_tokens=run.usage.total_tokens,
    )


def error_of(run: Run) -> str | None:
    if run.last_error is not None:
        return f"{run.last_error.code}: {run.last_error.message}"
    if run.incomplete_details is not None:
        return f"incomplete: {run.incomplete_details.reason}"
    if run.status == "expired":
        return "expired: the run was not finished in time"
    return None
