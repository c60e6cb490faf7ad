"""The port both OpenAI backends implement: the handlers see only this."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, Field

from threadline.assistant_config import AssistantConfig
from threadline.errors import BackendRequestError, NotFoundError, TransientBackendError
from threadline.models import RunStatus, ToolCall, ToolOutput, Usage

if TYPE_CHECKING:
    from threadline.threads import Thread
    from threadline.tools import ToolRegistry


class RunOwner(BaseModel):
    """Whose run a remote object belongs to: written on it as metadata, so an object whose
    creation reply was lost can be traced back to its thread, user and run when found."""

    thread_id: str
    user_id: str
    run_id: str


class RunHandle(BaseModel):
    """Where a run lives remotely; carried through the state machine, opaque to it.

    A Responses "run" is a chain of responses (one per tool round), so the handle also carries
    the usage of the responses already finished, by response id.
    """

    thread_remote_id: str
    run_remote_id: str
    finished_usage: dict[str, Usage] = Field(default_factory=dict)

    @property
    def carried_usage(self) -> Usage:
        return sum(self.finished_usage.values(), Usage())


class GeneratedFile(BaseModel):
    """A file the model produced; `container_id` is set when it lives in a container."""

    file_id: str
    filename: str | None = None
    container_id: str | None = None


class RunView(BaseModel):
    """One normalised look at a remote run."""

    status: RunStatus
    tool_calls: list[ToolCall] = Field(default_factory=list)
    output_text: str | None = None
    usage: Usage = Field(default_factory=Usage)
    error: str | None = None
    poll_after_seconds: float | None = None
    generated_files: list[GeneratedFile] = Field(default_factory=list)
    # The remote object will not change any more, so its usage is final. A response asking
    # for tools is settled (the next round is another response); an Assistants run is not.
    settled: bool = False


class RunContext(BaseModel):
    """What a run may use of its thread: its ingested files for code interpreter, its vector
    store for file search (built by `threadline.files.run_context`)."""

    file_ids: list[str] = Field(default_factory=list)
    vector_store_id: str | None = None


class AssistantBackend(Protocol):
    name: str

    def create_thread(self, thread_id: str) -> str:
        """The remote thread for a new thread; returns its remote id."""
        ...

    def delete_thread(self, remote_id: str) -> None: ...

    def start_run(
        self,
        thread: Thread,
        message: str,
        assistant: AssistantConfig,
        tools: ToolRegistry,
        context: RunContext,
        *,
        owner: RunOwner,
    ) -> RunHandle: ...

    def get_run(self, handle: RunHandle) -> RunView: ...

    def submit_tool_outputs(
        self,
        handle: RunHandle,
        outputs: list[ToolOutput],
        assistant: AssistantConfig,
        tools: ToolRegistry,
        context: RunContext,
        *,
        owner: RunOwner,
    ) -> RunHandle: ...

    def cancel_run(self, handle: RunHandle) -> RunView:
        """Ask for the run to stop; returns how it stands after (it may have ended first)."""
        ...

    def settled_usage(self, remote_id: str) -> tuple[RunOwner, Usage] | None:
        """Whose a remote object is (from its metadata) and its final usage; None if it is not
        Threadline's or not settled yet (how a response whose create reply was lost is found
        and counted when its webhook arrives)."""
        ...

    def delete_run_object(self, remote_id: str) -> None:
        """Delete one remote object a run made (a response); one already gone counts as
        deleted. A no-op where a run's objects go with their thread."""
        ...

    # -- files -----------------------------------------------------------------------------

    def upload_file(self, filename: str, content: bytes) -> str:
        """Upload for the hosted tools (purpose "assistants"); return the OpenAI file id."""
        ...

    def delete_file(self, file_id: str) -> None:
        """Delete an OpenAI file; one already gone counts as deleted."""
        ...

    def attach_file(self, thread: Thread, file_id: str, filename: str) -> str | None:
        """Make an uploaded file available to the thread's runs.

        Returns the thread's vector store id when the file went into one (a new store on
        first use: the caller records it on the thread), else the thread's current one
        (None for a backend that keeps no vector store of ours).
        """
        ...

    def delete_vector_store(self, vector_store_id: str) -> None:
        """Delete a vector store; one already gone counts as deleted."""
        ...

    def download_generated_file(self, file: GeneratedFile) -> bytes:
        """The bytes of a file the model produced (an image, a chart, a CSV...)."""
        ...


@contextmanager
def translated_errors(action: str, *, gone_is_done: bool = False) -> Iterator[None]:
    """Map the SDK's exceptions onto the error classes the state machine retries or not.

    With `gone_is_done` (deletes), a 404 means the object is already deleted: no error.
    """
    import openai  # only adapters call this, and they have imported the SDK already

    try:
        yield
    except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError) as exc:
        raise TransientBackendError(f"{action}: {exc}") from exc
    except openai.NotFoundError as exc:
        if not gone_is_done:
            raise NotFoundError(f"{action}: {exc}") from exc
    except openai.APIStatusError as exc:
        if exc.status_code >= 500:
            raise TransientBackendError(f"{action}: {exc}") from exc
        raise BackendRequestError(f"{action}: {exc}") from exc


def poll_hint_seconds(headers: object) -> float | None:
    value = getattr(headers, "get", lambda _key: None)("openai-poll-after-ms")
    try:
        return int(value) / 1000 if value is not None else None
    except ValueError:
        return None
