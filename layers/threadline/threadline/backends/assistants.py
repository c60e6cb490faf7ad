"""The Assistants v2 backend, for OpenAI-compatible servers that still implement it.

thread = Thread; run = Run; tool calls arrive as `requires_action` and are answered with
`submit_tool_outputs`, exactly as the seed used them. The remote assistant object is made
from the assistant's configuration once and found again by its fingerprint.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from openai import OpenAI
from openai.types.beta.threads import Run

from threadline.assistant_config import AssistantConfig
from threadline.backends.base import (
    GeneratedFile,
    Message,
    MessagePage,
    RunContext,
    RunHandle,
    RunView,
    poll_hint_seconds,
    translated_errors,
)
from threadline.backends.openai_files import OpenAIFiles, supports_file_search
from threadline.models import RunStatus, ToolCall, ToolOutput, Usage
from threadline.tools import ToolRegistry

if TYPE_CHECKING:
    from threadline.threads import Thread

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
FINGERPRINT_KEY = "threadline_fingerprint"


class AssistantsBackend(OpenAIFiles):
    """Uploaded files ride on a user message's attachments, as the seed attached them: the
    thread's runs see them through code interpreter and, for the types it can index, file
    search (OpenAI then keeps the thread's vector store itself). So a thread here has no
    vector store of ours, and RunContext is not needed to start a run."""

    name = "assistants"

    def __init__(self, client: OpenAI, default_model: str) -> None:
        self._client = client
        self._default_model = default_model
        self._assistant_ids: dict[str, str] = {}
        self._assistant_lock = threading.Lock()

    def create_thread(self) -> str:
        with translated_errors("create thread"):
            return self._client.beta.threads.create().id

    def delete_thread(self, remote_id: str) -> None:
        with translated_errors("delete thread", gone_is_done=True):
            self._client.beta.threads.delete(remote_id)

    def start_run(
        self,
        thread_remote_id: str,
        message: str,
        assistant: AssistantConfig,
        tools: ToolRegistry,
        context: RunContext,
    ) -> RunHandle:
        assistant_id = self._remote_assistant(assistant, tools)
        with translated_errors("create run"):
            self._client.beta.threads.messages.create(
                thread_remote_id, role="user", content=message
            )
            run = self._client.beta.threads.runs.create(thread_remote_id, assistant_id=assistant_id)
        return RunHandle(thread_remote_id=thread_remote_id, run_remote_id=run.id)

    def submit_tool_outputs(
        self,
        handle: RunHandle,
        outputs: list[ToolOutput],
        assistant: AssistantConfig,
        tools: ToolRegistry,
        context: RunContext,
    ) -> RunHandle:
        with translated_errors("submit tool outputs"):
            self._client.beta.threads.runs.submit_tool_outputs(
                handle.run_remote_id,
                thread_id=handle.thread_remote_id,
                tool_outputs=[
                    {"tool_call_id": output.call_id, "output": output.output} for output in outputs
                ],
            )
        return handle  # the same run goes on; its usage is cumulative

    def get_run(self, handle: RunHandle) -> RunView:
        with translated_errors("retrieve run"):
            raw = self._client.beta.threads.runs.with_raw_response.retrieve(
                handle.run_remote_id, thread_id=handle.thread_remote_id
            )
        run: Run = raw.parse()
        status = _STATUS[run.status]
        output_text, files = (
            self._final_message(handle) if status is RunStatus.COMPLETED else (None, [])
        )
        return RunView(
            status=status,
            tool_calls=_tool_calls(run),
            output_text=output_text,
            usage=_usage(run),
            error=_error(run),
            poll_after_seconds=poll_hint_seconds(raw.headers),
            generated_files=files,
        )

    def cancel_run(self, handle: RunHandle) -> None:
        with translated_errors("cancel run"):
            self._client.beta.threads.runs.cancel(
                handle.run_remote_id, thread_id=handle.thread_remote_id
            )

    def list_messages(
        self, thread_remote_id: str, *, limit: int, cursor: str | None, newest_first: bool
    ) -> MessagePage:
        with translated_errors("list messages"):
            page = self._client.beta.threads.messages.list(
                thread_remote_id,
                limit=limit,
                order="desc" if newest_first else "asc",
                **({"after": cursor} if cursor else {}),
            )
        messages = [
            Message(
                id=message.id,
                role=message.role,
                text="".join(part.text.value for part in message.content if part.type == "text"),
                created_at=message.created_at,
            )
            for message in page.data
        ]
        next_cursor = page.data[-1].id if page.has_more and page.data else None
        return MessagePage(messages=messages, next_cursor=next_cursor)

    def attach_file(self, thread: Thread, file_id: str, filename: str) -> str | None:
        tools: list[Any] = [{"type": "code_interpreter"}]
        if supports_file_search(filename):
            tools.append({"type": "file_search"})
        with translated_errors("attach file"):
            self._client.beta.threads.messages.create(
                thread.remote_id,
                role="user",
                content=f"[uploaded file: {filename}]",
                attachments=[{"file_id": file_id, "tools": tools}],
            )
        return None

    def download_generated_file(self, file: GeneratedFile) -> bytes:
        return self._file_content(file.file_id)

    def _final_message(self, handle: RunHandle) -> tuple[str | None, list[GeneratedFile]]:
        with translated_errors("read run messages"):
            page = self._client.beta.threads.messages.list(
                handle.thread_remote_id, order="desc", limit=10, run_id=handle.run_remote_id
            )
        replies = [message for message in page.data if message.role == "assistant"]
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

    def _remote_assistant(self, assistant: AssistantConfig, tools: ToolRegistry) -> str:
        with self._assistant_lock:
            if assistant.fingerprint not in self._assistant_ids:
                self._assistant_ids[assistant.fingerprint] = self._find_or_create_assistant(
                    assistant, tools
                )
            return self._assistant_ids[assistant.fingerprint]

    def _find_or_create_assistant(self, assistant: AssistantConfig, tools: ToolRegistry) -> str:
        with translated_errors("find or create assistant"):
            for existing in self._client.beta.assistants.list(limit=100):
                if (existing.metadata or {}).get(FINGERPRINT_KEY) == assistant.fingerprint:
                    return existing.id
            hosted: list[Any] = [{"type": kind} for kind in assistant.hosted_tools]
            return self._client.beta.assistants.create(
                name=assistant.display_name,
                model=assistant.model or self._default_model,
                instructions=assistant.instructions,
                tools=[*tools.definitions("assistants"), *hosted],
                metadata={
                    "threadline_assistant": assistant.name,
                    FINGERPRINT_KEY: assistant.fingerprint,
                },
            ).id


def _tool_calls(run: Run) -> list[ToolCall]:
    if run.status != "requires_action" or run.required_action is None:
        return []
    return [
        ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
        for call in run.required_action.submit_tool_outputs.tool_calls
    ]


def _usage(run: Run) -> Usage:
    if run.usage is None:
        return Usage()
    return Usage(
        input_tokens=run.usage.prompt_tokens,
        output_tokens=run.usage.completion_tokens,
        total_tokens=run.usage.total_tokens,
    )


def _error(run: Run) -> str | None:
    if run.last_error is not None:
        return f"{run.last_error.code}: {run.last_error.message}"
    if run.incomplete_details is not None:
        return f"incomplete: {run.incomplete_details.reason}"
    if run.status == "expired":
        return "expired: the run was not finished in time"
    return None
