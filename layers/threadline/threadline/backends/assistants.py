"""The Assistants v2 backend, for OpenAI-compatible servers that still implement it.

thread = Thread; run = Run, created with the user's message in one request
(`additional_messages`); tool calls arrive as `requires_action` and are answered with
`submit_tool_outputs`. The remote assistant object is made
from the assistant's configuration once and found again by its fingerprint.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Literal

from openai import OpenAI
from openai.types.beta.threads import Run

from threadline.assistant_config import AssistantConfig
from threadline.backends.assistants_views import (
    ACTIVE_STATUSES,
    final_message,
    run_view,
    status_of,
    tool_calls_of,
    usage_of,
)
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
from threadline.backends.openai_files import OpenAIFiles, supports_file_search
from threadline.errors import BackendRequestError, ConfigurationError
from threadline.models import ToolOutput, Usage
from threadline.tools import ToolRegistry

if TYPE_CHECKING:
    from openai.types.beta import AssistantToolParam
    from openai.types.beta.threads.message_create_params import AttachmentTool

    from threadline.threads.records import Thread

FINGERPRINT_KEY = "threadline_fingerprint"
RECENT_RUNS = 5  # one thread runs one Threadline run at a time: ours is among the newest
RECENT_MESSAGES = 100  # an attach retried after its reply was lost finds its message here


class AssistantsBackend(OpenAIFiles):
    """Uploaded files ride on a user message's attachments: the
    thread's runs see them through code interpreter and, for the types it can index, file
    search (OpenAI then keeps the thread's vector store itself). So a thread here has no
    vector store of ours, and RunContext is not needed to start a run."""

    name = "assistants"

    def __init__(self, client: OpenAI, default_model: str) -> None:
        self._client = client
        self._default_model = default_model
        self._assistant_ids: dict[str, str] = {}
        self._assistant_lock = threading.Lock()

    def create_thread(self, thread_id: str) -> str:
        with translated_errors("create thread"):
            return self._client.beta.threads.create(metadata={"thread": thread_id}).id

    def delete_thread(self, remote_id: str) -> None:
        with translated_errors("delete thread", gone_is_done=True):
            self._client.beta.threads.delete(remote_id)

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
        if assistant.mcp_servers:
            raise ConfigurationError(
                f"assistant {assistant.name} names MCP servers: they need OPENAI_BACKEND responses"
            )
        assistant_id = self._remote_assistant(assistant, tools)
        # A create whose reply was lost has happened: find that run again rather than make a
        # second one, and stop runs of ended Threadline runs that would block the thread.
        run = self._settle_active_runs(thread.remote_id, owner.run_id)
        if run is None:
            with translated_errors("create run"):
                run = self._client.beta.threads.runs.create(
                    thread.remote_id,
                    assistant_id=assistant_id,
                    additional_messages=[{"role": "user", "content": message}],
                    metadata=owner.model_dump(),
                )
        return RunHandle(thread_remote_id=thread.remote_id, run_remote_id=run.id)

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
        try:
            with translated_errors("submit tool outputs"):
                self._client.beta.threads.runs.submit_tool_outputs(
                    handle.run_remote_id,
                    thread_id=handle.thread_remote_id,
                    tool_outputs=[
                        {"tool_call_id": output.call_id, "output": output.output}
                        for output in outputs
                    ],
                )
        except BackendRequestError:
            # Refused because a submission whose reply was lost already moved the run on?
            if self._awaits_outputs(handle, outputs):
                raise
        return handle  # the same run goes on; its usage is cumulative

    def get_run(self, handle: RunHandle) -> RunView:
        with translated_errors("retrieve run"):
            raw = self._client.beta.threads.runs.with_raw_response.retrieve(
                handle.run_remote_id, thread_id=handle.thread_remote_id
            )
        return run_view(raw.parse(), handle, poll_hint_seconds(raw.headers), self._final_message)

    def cancel_run(self, handle: RunHandle) -> RunView:
        try:
            with translated_errors("cancel run"):
                run = self._client.beta.threads.runs.cancel(
                    handle.run_remote_id, thread_id=handle.thread_remote_id
                )
        except BackendRequestError:  # refused: the run ended before the cancel reached it
            return self.get_run(handle)
        return run_view(run, handle, None, self._final_message)

    def vector_store_made_for(self, thread: Thread) -> str | None:
        """OpenAI keeps an Assistants thread's vector store itself."""
        return None

    def settled_usage(self, remote_id: str) -> tuple[RunOwner, Usage] | None:
        """Assistants runs send no webhooks; a settled run is found by `settled_runs`."""
        return None

    def settled_runs(self, thread_remote_id: str) -> dict[str, Usage]:
        return {
            run.id: usage_of(run)
            for run in self._recent_runs(thread_remote_id)
            if status_of(run).is_terminal and "run_id" in (run.metadata or {})
        }

    def delete_run_object(self, remote_id: str) -> None:
        """Runs are deleted with their thread."""

    def _settle_active_runs(self, thread_remote_id: str, run_id: str) -> Run | None:
        """The thread's remote run for Threadline run `run_id`, if one was made already;
        active runs made for other (ended) Threadline runs are cancelled on the way."""
        ours = None
        for run in self._recent_runs(thread_remote_id):
            if (run.metadata or {}).get("run_id") == run_id:
                ours = ours or run
            elif run.status in ACTIVE_STATUSES:
                with translated_errors("cancel stale run", gone_is_done=True):
                    self._client.beta.threads.runs.cancel(run.id, thread_id=thread_remote_id)
        return ours

    def _recent_runs(self, thread_remote_id: str) -> list[Run]:
        with translated_errors("list runs"):
            return self._client.beta.threads.runs.list(
                thread_remote_id, order="desc", limit=RECENT_RUNS
            ).data

    def _awaits_outputs(self, handle: RunHandle, outputs: list[ToolOutput]) -> bool:
        with translated_errors("retrieve run"):
            run = self._client.beta.threads.runs.retrieve(
                handle.run_remote_id, thread_id=handle.thread_remote_id
            )
        waiting_for = {call.id for call in tool_calls_of(run)}
        return bool(waiting_for) and waiting_for <= {output.call_id for output in outputs}

    def thread_vector_store(self, thread: Thread, filename: str) -> str | None:
        """OpenAI keeps the thread's vector store itself."""
        return None

    def attach_file(self, thread: Thread, file_id: str, filename: str) -> FileIndex | None:
        """Nothing of ours to wait for: OpenAI indexes an attachment into the thread's own
        store, and a run waits (up to a minute) for that store's files to be processed."""
        if self._attached(thread.remote_id, file_id):  # by an attempt whose reply was lost
            return None
        tools: list[AttachmentTool] = [{"type": "code_interpreter"}]
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

    def _attached(self, thread_remote_id: str, file_id: str) -> bool:
        with translated_errors("list messages"):
            recent = self._client.beta.threads.messages.list(
                thread_remote_id, order="desc", limit=RECENT_MESSAGES
            ).data
        return any(
            attachment.file_id == file_id
            for message in recent
            for attachment in message.attachments or []
        )

    def download_generated_file(self, file: GeneratedFile) -> bytes:
        return self._file_content(file.file_id)

    def _final_message(self, handle: RunHandle) -> tuple[str | None, list[GeneratedFile]]:
        with translated_errors("read run messages"):
            page = self._client.beta.threads.messages.list(
                handle.thread_remote_id, order="desc", limit=10, run_id=handle.run_remote_id
            )
        return final_message(page.data)

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
            hosted = [hosted_tool(kind) for kind in assistant.hosted_tools]
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


def hosted_tool(kind: Literal["code_interpreter", "file_search"]) -> AssistantToolParam:
    """An assistant's definition of one of OpenAI's hosted tools."""
    return {"type": "code_interpreter"} if kind == "code_interpreter" else {"type": "file_search"}
