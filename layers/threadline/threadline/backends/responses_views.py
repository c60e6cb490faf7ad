"""How a stored OpenAI response reads to Threadline: its status, tool calls, usage, error and
the files its answer cites, as the port's `RunView`."""

from __future__ import annotations

from collections.abc import Callable

from openai.types.responses import Response

from threadline.backends.base import GeneratedFile, RunHandle, RunView
from threadline.models import RunStatus, ToolCall, Usage

_STATUS = {
    "queued": RunStatus.QUEUED,
    "in_progress": RunStatus.IN_PROGRESS,
    "completed": RunStatus.COMPLETED,
    "failed": RunStatus.FAILED,
    "cancelled": RunStatus.CANCELLED,
    "incomplete": RunStatus.INCOMPLETE,
}

SETTLED = frozenset({"completed", "failed", "cancelled", "incomplete"})


def run_view(
    response: Response,
    handle: RunHandle,
    poll_after: float | None,
    generated_files: Callable[[Response], list[GeneratedFile]],
) -> RunView:
    """The run as of `response`; `generated_files` is asked only once the run has ended."""
    status = _STATUS[response.status or "queued"]
    tool_calls = [
        ToolCall(id=item.call_id, name=item.name, arguments=item.arguments)
        for item in response.output
        if item.type == "function_call"
    ] + [
        ToolCall(
            id=item.id,
            name=f"{item.server_label}.{item.name}",
            arguments=item.arguments,
            kind="mcp_approval",
        )
        for item in response.output
        if item.type == "mcp_approval_request"
    ]
    # Calls in a response that did not complete (incomplete, failed, cancelled) are never
    # answered: the run ends, and the thread's head stays where it was.
    if status is RunStatus.COMPLETED and tool_calls:
        status = RunStatus.REQUIRES_ACTION
    return RunView(
        status=status,
        tool_calls=tool_calls if status is RunStatus.REQUIRES_ACTION else [],
        output_text=response.output_text or None if status.is_terminal else None,
        usage=handle.carried_usage + usage_of(response),
        error=error_of(response),
        poll_after_seconds=poll_after,
        generated_files=generated_files(response) if status.is_terminal else [],
        settled=response.status in SETTLED,
    )


def usage_of(response: Response) -> Usage:
    if response.usage is None:
        return Usage()
    return Usage(
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        total_tokens=response.usage.total_tokens,
    )


def error_of(response: Response) -> str | None:
    if response.error is not None:
        return f"{response.error.code}: {response.error.message}"
    if response.incomplete_details is not None:
        return f"incomplete: {response.incomplete_details.reason}"
    return None


def cited_files(response: Response) -> list[GeneratedFile]:
    files = []
    for item in response.output:
        if item.type != "message":
            continue
        for part in item.content:
            for note in getattr(part, "annotations", None) or []:
                if note.type == "container_file_citation":
                    files.append(
                        GeneratedFile(
                            file_id=note.file_id,
                            filename=note.filename,
                            container_id=note.container_id,
                        )
                    )
    return files
