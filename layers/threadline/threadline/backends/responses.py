"""The Responses backend (the default since the Assistants API sunset).

A thread is a chain of stored background responses linked by `previous_response_id`, grown
from the thread's head (`Thread.head_response_id`: the last response of the last completed
run). A run is a chain of responses from that head: the model asking for tools is a completed
response with `function_call` items, and handing outputs back starts the next response from
it with `function_call_output` items.

Why a chain and not a Conversation: OpenAI has no idempotency keys, so a create whose reply
was lost may have happened. On a conversation such a response would add the user's message
and its answer a second time, and leave its tool calls unanswered for every later response;
in a chain it is only a branch nobody continues from. The thread's history is exactly the
chain up to its head, which only a completed run moves. See docs/reliability.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, cast

from openai import OpenAI, omit
from openai.types.responses import Response
from pydantic import ValidationError

from threadline.assistant_config import AssistantConfig
from threadline.backends.base import (
    FileIndex,
    GeneratedFile,
    RunContext,
    RunHandle,
    RunOwner,
    RunView,
    poll_hint_seconds,
    translated_errors,
)
from threadline.backends.openai_files import (
    LIST_PAGE_SIZE,
    OpenAIFiles,
    created_since,
    index_of,
    supports_file_search,
)
from threadline.backends.responses_views import SETTLED, cited_files, run_view, usage_of
from threadline.errors import NotFoundError, TransientBackendError
from threadline.models import ToolOutput, Usage
from threadline.tools import ToolRegistry

if TYPE_CHECKING:
    from openai.types.responses import ResponseInputParam, ToolParam
    from openai.types.responses.tool_param import Mcp, McpRequireApproval

    from threadline.threads.records import Thread

THREAD_KEY = "threadline_thread_id"  # a vector store's metadata: the thread it is for


STREAM_READ_SECONDS = 300.0
ENDED_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete"})


class ResponsesBackend(OpenAIFiles):
    """Uploaded files reach code interpreter through the container's `file_ids` (every run's
    RunContext) and, for the types it can index, file search through the thread's vector
    store, made on the first such upload (and found by its metadata if its reply was lost)."""

    name = "responses"

    def __init__(
        self,
        client: OpenAI,
        default_model: str,
        secret_headers: Callable[[str], dict[str, str]],
    ) -> None:
        self._client = client
        self._default_model = default_model
        self._secret_headers = secret_headers  # an MCP server's headers, from their secret

    def create_thread(self, thread_id: str) -> str:
        """Nothing to create remotely: the chain starts with the thread's first response."""
        return thread_id

    def delete_thread(self, remote_id: str) -> None:
        """The chain's responses are deleted one by one (`delete_run_object`)."""

    def start_run(
        self,
        thread: Thread,
        message: str,
        assistant: AssistantConfig,
        tools: ToolRegistry,
        context: RunContext,
        *,
        owner: RunOwner,
    ) -> RunHandle:
        user_message: ResponseInputParam = [{"type": "message", "role": "user", "content": message}]
        response = self._create(
            user_message,
            assistant,
            tools,
            context,
            previous_response_id=thread.head_response_id,
            owner=owner,
        )
        return RunHandle(thread_remote_id=thread.remote_id, run_remote_id=response.id)

    def submit_tool_outputs(
        self,
        handle: RunHandle,
        outputs: list[ToolOutput],
        assistant: AssistantConfig,
        tools: ToolRegistry,
        context: RunContext,
        *,
        owner: RunOwner,
        answered_usage: Usage,
    ) -> RunHandle:
        items: ResponseInputParam = [
            {"type": "function_call_output", "call_id": output.call_id, "output": output.output}
            if output.approve is None
            else {
                "type": "mcp_approval_response",
                "approval_request_id": output.call_id,
                "approve": output.approve,
            }
            for output in outputs
        ]
        response = self._create(
            items,
            assistant,
            tools,
            context,
            previous_response_id=handle.run_remote_id,
            owner=owner,
        )
        return RunHandle(
            thread_remote_id=handle.thread_remote_id,
            run_remote_id=response.id,
            finished_usage={**handle.finished_usage, handle.run_remote_id: answered_usage},
        )

    def text_deltas(self, remote_id: str, *, after: int) -> Iterator[tuple[int, str]]:
        """The text a response's model writes, as (event number, piece) after event `after`
        (-1: from the start) until the response ends; the same numbers on every read. Only
        this backend has it: a background Assistants run cannot be streamed again."""
        # A stream may be quiet for long (a reasoning model, a hosted tool): each read waits
        # longer than a request does.
        reading = self._client.with_options(timeout=STREAM_READ_SECONDS)
        with (
            translated_errors("stream response"),
            reading.responses.retrieve(
                remote_id, stream=True, starting_after=after if after >= 0 else omit
            ) as events,
        ):
            for event in events:
                if event.type == "response.output_text.delta":
                    yield event.sequence_number, event.delta
                elif event.type in ENDED_EVENTS:
                    return

    def get_run(self, handle: RunHandle) -> RunView:
        response, poll_after = self._retrieve(handle.run_remote_id)
        return run_view(response, handle, poll_after, self._generated_files)

    def cancel_run(self, handle: RunHandle) -> RunView:
        with translated_errors("cancel response"):
            response = self._client.responses.cancel(handle.run_remote_id)
        return run_view(response, handle, None, self._generated_files)

    def settled_usage(self, remote_id: str) -> tuple[RunOwner, Usage] | None:
        try:
            response = self._retrieve(remote_id)[0]
        except NotFoundError:  # deleted since, or never ours
            return None
        try:
            owner = RunOwner.model_validate(
                {
                    "thread_id": (response.metadata or {}).get("thread"),
                    "user_id": (response.metadata or {}).get("user"),
                    "run_id": (response.metadata or {}).get("run"),
                }
            )
        except ValidationError:  # made by someone else with the same API key
            return None
        if response.status not in SETTLED:
            return None
        return owner, usage_of(response)

    def settled_runs(self, thread_remote_id: str) -> dict[str, Usage]:
        """Every response is counted by its run or its webhook (`settled_usage`)."""
        return {}

    def delete_run_object(self, remote_id: str) -> None:
        with translated_errors("delete response", gone_is_done=True):
            self._client.responses.delete(remote_id)

    def thread_vector_store(self, thread: Thread, filename: str) -> str | None:
        if not supports_file_search(filename):
            return None  # code interpreter gets it from RunContext.file_ids
        if thread.vector_store_id is not None:
            return thread.vector_store_id
        found = self.vector_store_made_for(thread)
        if found is not None:
            return found
        with translated_errors("create vector store"):
            return self._client.vector_stores.create(
                name=f"threadline {thread.thread_id}", metadata={THREAD_KEY: thread.thread_id}
            ).id

    def vector_store_made_for(self, thread: Thread) -> str | None:
        with translated_errors("list vector stores"):
            newest = self._client.vector_stores.list(order="desc", limit=LIST_PAGE_SIZE)
            for store in created_since(newest, thread.created_at):
                if (store.metadata or {}).get(THREAD_KEY) == thread.thread_id:
                    return store.id
        return None

    def attach_file(self, thread: Thread, file_id: str, filename: str) -> FileIndex | None:
        if not supports_file_search(filename):
            return None
        if thread.vector_store_id is None:
            raise ValueError("the thread's vector store must be recorded before it is used")
        # Looked up first: a file an earlier attempt added is not added again, whatever
        # OpenAI would answer to a second add.
        index = self._indexed(thread.vector_store_id, file_id)
        if index is not None:
            return index
        with translated_errors("add file to vector store"):
            return index_of(
                self._client.vector_stores.files.create(thread.vector_store_id, file_id=file_id)
            )

    def download_generated_file(self, file: GeneratedFile) -> bytes:
        if file.container_id is None:
            return self._file_content(file.file_id)
        with translated_errors("download container file"):
            return self._client.containers.files.content.retrieve(
                file.file_id, container_id=file.container_id
            ).read()

    def _generated_files(self, response: Response) -> list[GeneratedFile]:
        """The files code interpreter wrote: those the answer cites, under the name it gives
        them, and those it did not cite, found in the containers the response ran code in
        (only the assistant's: the user's uploads are there too)."""
        found = {file.file_id: file for file in cited_files(response)}
        containers = [
            item.container_id for item in response.output if item.type == "code_interpreter_call"
        ]
        for container_id in dict.fromkeys(containers):
            with translated_errors("list container files"):
                for file in self._client.containers.files.list(container_id):
                    if file.source == "assistant" and file.id not in found:
                        found[file.id] = GeneratedFile(
                            file_id=file.id,
                            filename=file.path.rpartition("/")[2],
                            container_id=container_id,
                        )
        return list(found.values())

    def _create(
        self,
        items: ResponseInputParam,
        assistant: AssistantConfig,
        tools: ToolRegistry,
        context: RunContext,
        *,
        previous_response_id: str | None,
        owner: RunOwner,
    ) -> Response:
        # Created streaming so that a listener can stream its text (`text_events`): OpenAI
        # streams again only a background response created with `stream: true`. The create's
        # reply is its first event; the response goes on after the stream is closed.
        with (
            translated_errors("create response"),
            self._client.responses.create(
                model=assistant.model or self._default_model,
                instructions=assistant.instructions,
                input=items,
                tools=[
                    *tools.definitions("responses"),
                    *_hosted_tools(assistant, context),
                    *self._mcp_tools(assistant),
                ],
                background=True,
                store=True,
                metadata={
                    "assistant": assistant.name,
                    "thread": owner.thread_id,
                    "user": owner.user_id,
                    "run": owner.run_id,
                },
                previous_response_id=previous_response_id or omit,
                stream=True,
            ) as events,
        ):
            for event in events:
                if event.type == "response.created":
                    return event.response
        # As a lost reply: a response it made is a branch of the chain nobody continues from.
        raise TransientBackendError("create response: the stream ended before the response")

    def _mcp_tools(self, assistant: AssistantConfig) -> list[ToolParam]:
        tools: list[ToolParam] = []
        for server in assistant.mcp_servers:
            tool: Mcp = {
                "type": "mcp",
                "server_label": server.server_label,
                "server_url": server.server_url,
                "require_approval": cast("McpRequireApproval", server.require_approval),
            }
            if server.server_description:
                tool["server_description"] = server.server_description
            if server.allowed_tools is not None:
                tool["allowed_tools"] = server.allowed_tools
            if server.headers_secret:
                tool["headers"] = self._secret_headers(server.headers_secret)
            tools.append(tool)
        return tools

    def _retrieve(self, response_id: str) -> tuple[Response, float | None]:
        with translated_errors("retrieve response"):
            raw = self._client.responses.with_raw_response.retrieve(response_id)
        return raw.parse(), poll_hint_seconds(raw.headers)


def _hosted_tools(assistant: AssistantConfig, context: RunContext) -> list[ToolParam]:
    tools: list[ToolParam] = []
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
