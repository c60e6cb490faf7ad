"""The Responses + Conversations backend (the default since the Assistants API sunset).

thread = Conversation; run = a chain of background Responses on that conversation: the model
asking for tools is a completed response with `function_call` items, and handing outputs back
starts the next response with `function_call_output` items.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openai import OpenAI
from openai.types.responses import Response

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
from threadline.errors import ThreadlineError
from threadline.models import RunStatus, ToolCall, ToolOutput, Usage
from threadline.tools import ToolRegistry

if TYPE_CHECKING:
    from threadline.threads import Thread

_STATUS = {
    "queued": RunStatus.QUEUED,
    "in_progress": RunStatus.IN_PROGRESS,
    "completed": RunStatus.COMPLETED,
    "failed": RunStatus.FAILED,
    "cancelled": RunStatus.CANCELLED,
    "incomplete": RunStatus.INCOMPLETE,
}


class ResponsesBackend(OpenAIFiles):
    """Uploaded files reach code interpreter through the container's `file_ids` (every run's
    RunContext) and, for the types it can index, file search through the thread's vector
    store, made on the first such upload."""

    name = "responses"

    def __init__(self, client: OpenAI, default_model: str) -> None:
        self._client = client
        self._default_model = default_model

    def create_thread(self) -> str:
        with translated_errors("create conversation"):
            return self._client.conversations.create().id

    def delete_thread(self, remote_id: str) -> None:
        with translated_errors("delete conversation", gone_is_done=True):
            self._client.conversations.delete(remote_id)

    def start_run(
        self,
        thread_remote_id: str,
        message: str,
        assistant: AssistantConfig,
        tools: ToolRegistry,
        context: RunContext,
    ) -> RunHandle:
        user_message = [{"type": "message", "role": "user", "content": message}]
        response = self._create(thread_remote_id, user_message, assistant, tools, context)
        return RunHandle(thread_remote_id=thread_remote_id, run_remote_id=response.id)

    def submit_tool_outputs(
        self,
        handle: RunHandle,
        outputs: list[ToolOutput],
        assistant: AssistantConfig,
        tools: ToolRegistry,
        context: RunContext,
    ) -> RunHandle:
        finished = self._retrieve(handle.run_remote_id)[0]
        items = [
            {"type": "function_call_output", "call_id": output.call_id, "output": output.output}
            for output in outputs
        ]
        response = self._create(handle.thread_remote_id, items, assistant, tools, context)
        return RunHandle(
            thread_remote_id=handle.thread_remote_id,
            run_remote_id=response.id,
            carried_usage=handle.carried_usage + _usage(finished),
        )

    def get_run(self, handle: RunHandle) -> RunView:
        response, poll_after = self._retrieve(handle.run_remote_id)
        status = _STATUS[response.status or "queued"]
        tool_calls = [
            ToolCall(id=item.call_id, name=item.name, arguments=item.arguments)
            for item in response.output
            if item.type == "function_call"
        ]
        if status is RunStatus.COMPLETED and tool_calls:
            status = RunStatus.REQUIRES_ACTION
        return RunView(
            status=status,
            tool_calls=tool_calls if status is RunStatus.REQUIRES_ACTION else [],
            output_text=response.output_text or None if status.is_terminal else None,
            usage=handle.carried_usage + _usage(response),
            error=_error(response),
            poll_after_seconds=poll_after,
            generated_files=_generated_files(response),
        )

    def cancel_run(self, handle: RunHandle) -> None:
        with translated_errors("cancel response"):
            self._client.responses.cancel(handle.run_remote_id)

    def list_messages(
        self, thread_remote_id: str, *, limit: int, cursor: str | None, newest_first: bool
    ) -> MessagePage:
        with translated_errors("list conversation items"):
            page = self._client.conversations.items.list(
                thread_remote_id,
                limit=limit,
                order="desc" if newest_first else "asc",
                **({"after": cursor} if cursor else {}),
            )
        messages = [
            Message(
                id=item.id,
                role=item.role,
                text="".join(getattr(part, "text", "") or "" for part in item.content),
            )
            for item in page.data
            if item.type == "message" and item.role in ("user", "assistant")
        ]
        next_cursor = page.data[-1].id if page.has_more and page.data else None
        return MessagePage(messages=messages, next_cursor=next_cursor)

    def attach_file(self, thread: Thread, file_id: str, filename: str) -> str | None:
        if not supports_file_search(filename):
            return thread.vector_store_id  # code interpreter gets it from RunContext.file_ids
        vector_store_id = thread.vector_store_id
        created = vector_store_id is None
        if vector_store_id is None:
            with translated_errors("create vector store"):
                vector_store_id = self._client.vector_stores.create(
                    name=f"threadline {thread.thread_id}",
                    metadata={"threadline_thread_id": thread.thread_id},
                ).id
        try:
            with translated_errors("add file to vector store"):
                self._client.vector_stores.files.create(vector_store_id, file_id=file_id)
        except ThreadlineError:
            if created:  # nobody knows this store yet: it must not outlive the failure
                self.delete_vector_store(vector_store_id)
            raise
        return vector_store_id

    def download_generated_file(self, file: GeneratedFile) -> bytes:
        if file.container_id is None:
            return self._file_content(file.file_id)
        with translated_errors("download container file"):
            return self._client.containers.files.content.retrieve(
                file.file_id, container_id=file.container_id
            ).read()

    def _create(
        self,
        conversation_id: str,
        items: list[dict[str, Any]],
        assistant: AssistantConfig,
        tools: ToolRegistry,
        context: RunContext,
    ) -> Response:
        with translated_errors("create response"):
            return self._client.responses.create(
                model=assistant.model or self._default_model,
                instructions=assistant.instructions,
                conversation=conversation_id,
                input=items,
                tools=[*tools.definitions("responses"), *_hosted_tools(assistant, context)],
                background=True,
                store=True,
                metadata={"assistant": assistant.name},
            )

    def _retrieve(self, response_id: str) -> tuple[Response, float | None]:
        with translated_errors("retrieve response"):
            raw = self._client.responses.with_raw_response.retrieve(response_id)
        return raw.parse(), poll_hint_seconds(raw.headers)


def _hosted_tools(assistant: AssistantConfig, context: RunContext) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    if "code_interpreter" in assistant.hosted_tools:
        tools.append(
            {
                "type": "code_interpreter",
                "container": {"type": "auto", "file_ids": context.file_ids},
            }
        )
    if "file_search" in assistant.hosted_tools and context.vector_store_id:
        tools.append({"type": "file_search", "vector_store_ids": [context.vector_store_id]})
    return tools


def _usage(response: Response) -> Usage:
    if response.usage is None:
        return Usage()
    return Usage(
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        total_tokens=response.usage.total_tokens,
    )


def _error(response: Response) -> str | None:
    if response.error is not None:
        return f"{response.error.code}: {response.error.message}"
    if response.incomplete_details is not None:
        return f"incomplete: {response.incomplete_details.reason}"
    return None


def _generated_files(response: Response) -> list[GeneratedFile]:
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
