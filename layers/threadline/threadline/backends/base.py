"""The port both OpenAI backends implement: the handlers see only this."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, Field

from threadline.assistant_config import AssistantConfig
from threadline.errors import BackendRequestError, NotFoundError, TransientBackendError
from threadline.models import RunStatus, ToolCall, ToolOutput, Usage

if TYPE_CHECKING:
    from threadline.threads.records import Thread
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


class FileIndex(BaseModel):
    """How file search's indexing of a file in a vector store stands (OpenAI's statuses):
    only a `completed` file can be found by a search."""

    status: Literal["in_progress", "completed", "failed", "cancelled"]
    error: str | None = None


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
    """What a run may use of its thread: its files at OpenAI for code interpreter, its vector
    store for file search, which finds only the files indexed there (built by
    `threadline.files.records.run_context`)."""

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
        answered_usage: Usage,
    ) -> RunHandle:
        """Hand the outputs back. `answered_usage` is the final usage of the remote run whose
        calls they answer, as the check that found the calls read it (a Responses chain keeps
        it per response without reading the response again)."""
        ...

    def cancel_run(self, handle: RunHandle) -> RunView:
        """Ask for the run to stop; returns how it stands after (it may have ended first)."""
        ...

    def settled_usage(self, remote_id: str) -> tuple[RunOwner, Usage] | None:
        """Whose a remote object is (from its metadata) and its final usage; None if it is not
        Threadline's or not settled yet (how a response whose create reply was lost is found
        and counted when its webhook arrives)."""
        ...

    def settled_runs(self, thread_remote_id: str) -> dict[str, Usage]:
        """The final usage of the thread's recent Threadline remote runs that settled, by
        remote id: how a run that sends no webhook (Assistants) and whose Threadline run ended
        before it settled is counted after all. Empty where webhooks do that (Responses)."""
        ...

    def delete_run_object(self, remote_id: str) -> None:
        """Delete one remote object a run made (a response); one already gone counts as
        deleted. A no-op where a run's objects go with their thread."""
        ...

    # -- files -----------------------------------------------------------------------------

    def upload_file(
        self, filename: str, content: bytes, *, upload_id: str, not_before: datetime
    ) -> str:
        """Upload for the hosted tools (purpose "assistants"); return the OpenAI file id.

        The remote file is named after the upload (`remote_filename`): one of that name made
        since `not_before` (an earlier attempt whose reply was lost) is returned instead of
        uploading again.
        """
        ...

    def files_made_for(self, filename: str, *, upload_id: str, not_before: datetime) -> list[str]:
        """The OpenAI files made for this upload since `not_before`, recorded or not (an
        upload whose create reply was lost, and whose retries all failed, is found here)."""
        ...

    def vector_store_made_for(self, thread: Thread) -> str | None:
        """The vector store made for the thread, recorded or not; None if there is none (or
        the backend keeps none of ours)."""
        ...

    def delete_file(self, file_id: str) -> None:
        """Delete an OpenAI file; one already gone counts as deleted."""
        ...

    def thread_vector_store(self, thread: Thread, filename: str) -> str | None:
        """The vector store file search finds this file in: the thread's, or a new one on
        first use (found again if a create whose reply was lost made it already). None when
        the file is not for file search or the backend keeps no vector store of ours.

        A store the thread does not have yet must be recorded on it (`set_vector_store`)
        before anything goes into it, so that whatever fails later, cleanup finds it.
        """
        ...

    def attach_file(self, thread: Thread, file_id: str, filename: str) -> FileIndex | None:
        """Make an uploaded file available to the thread's runs (into the thread's recorded
        vector store, if `thread_vector_store` gave one). Returns how indexing it stands
        there; None when nothing of ours indexes it. Attaching it again changes nothing."""
        ...

    def file_index(self, vector_store_id: str, file_id: str) -> FileIndex:
        """How indexing a file added to a vector store stands now; a file the store no longer
        holds has failed."""
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
    except openai.APIConnectionError as exc:
        raise TransientBackendError(f"{action}: {exc}") from exc
    except openai.NotFoundError as exc:
        if not gone_is_done:
            raise NotFoundError(f"{action}: {exc}") from exc
    except openai.APIStatusError as exc:
        if exc.status_code == 429 or exc.status_code >= 500:
            raise TransientBackendError(
                f"{action}: {exc}",
                rate_limited=exc.status_code == 429,
                retry_after_seconds=retry_after_seconds(exc.response.headers),
            ) from exc
        raise BackendRequestError(f"{action}: {exc}") from exc


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait OpenAI asked for: `retry-after-ms`, else `retry-after` in seconds (OpenAI
    sends numbers; an HTTP date or nonsense counts as not asked)."""
    for name, seconds_per_unit in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            wait = float(headers.get(name, "")) * seconds_per_unit
        except ValueError:
            continue
        if math.isfinite(wait) and wait >= 0:
            return wait
    return None


def poll_hint_seconds(headers: object) -> float | None:
    value = getattr(headers, "get", lambda _key: None)("openai-poll-after-ms")
    try:
        return int(value) / 1000 if value is not None else None
    except ValueError:
        return None
