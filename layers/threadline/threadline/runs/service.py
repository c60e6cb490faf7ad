"""The API's run operations, each one call from a route: start a run (once per
Idempotency-Key), read one with its download links, cancel an active one.

The stores are passed in; the starter, the backend, the S3 client and the idempotency
helper as providers, built on first use. The caller registers each invocation's Lambda
context on the helper.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from threadline import clock
from threadline.errors import InvalidRequestError, ThreadlineError
from threadline.files.generated import DownloadLink, download_urls
from threadline.models import RunStatus, Usage
from threadline.runs.records import RunOutcome, RunRecord
from threadline.runs.starting import IfBusy
from threadline.store.idempotency import Once

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from threadline.backends.base import AssistantBackend
    from threadline.callbacks.targets import CallbackTargets
    from threadline.runs.approvals import RunApprovals
    from threadline.runs.records import RunStore
    from threadline.runs.starting import RunStarter
    from threadline.store.idempotency import Idempotency
    from threadline.threads.records import Thread, ThreadStore
    from threadline.threads.run_queue import RunQueue

# The idempotency records' key prefix: the same in every execution environment.
IDEMPOTENCY_KEY_PREFIX = "api.start_run"
# A run request's identity is its caller, thread and key; its body must match the first's.
START_ONCE = Once(
    key_prefix=IDEMPOTENCY_KEY_PREFIX,
    key_path="[user_id, thread_id, idempotency_key]",
    payload_path="[message, assistant, if_busy, callback_url]",
    raise_on_no_key=False,
)


class RunRequest(BaseModel):
    """What makes two run requests the same, for the Idempotency-Key header."""

    user_id: str
    thread_id: str
    idempotency_key: str | None
    message: str
    assistant: str
    if_busy: IfBusy = "reject"
    callback_url: str | None = None


class RunStartingError(Exception):
    """The run has no remote run to cancel yet."""


@dataclass(frozen=True)
class RunWithFiles:
    run: RunRecord
    files: list[DownloadLink]  # the files the model made, with short-lived download URLs
    queue_position: int | None = None  # while it waits in its thread's queue


class RunService:
    def __init__(
        self,
        *,
        threads: ThreadStore,
        runs: RunStore,
        starter: Callable[[], RunStarter],
        queue: Callable[[], RunQueue],
        backend: Callable[[], AssistantBackend],
        s3: Callable[[], S3Client],
        bucket: str,
        max_message_chars: int,
        idempotency: Callable[[], Idempotency],
        callback_targets: Callable[[], CallbackTargets],
        approvals: Callable[[], RunApprovals],
        now: Callable[[], datetime] = clock.utc_now,
    ) -> None:
        self._threads = threads
        self._runs = runs
        self._starter = starter
        self._queue = queue
        self._backend = backend
        self._s3 = s3
        self._bucket = bucket
        self._max_message_chars = max_message_chars
        self._idempotency = idempotency
        self._callback_targets = callback_targets
        self._approvals = approvals
        self._now = now
        self._start_once: Callable[..., Any] | None = None

    def start(
        self,
        user_id: str,
        thread_id: str,
        message: str,
        assistant: str,
        *,
        idempotency_key: str | None,
        if_busy: IfBusy = "reject",
        callback_url: str | None = None,
    ) -> RunWithFiles:
        """Start a run on the user's thread; with an idempotency key, a request made again
        with the same key and body gets the first one's run (IdempotencyValidationError with
        another body). InvalidRequestError for a message over the limit; ThreadBusyError,
        NotFoundError, BudgetExceededError, QueueFullError from the starter. A queued run comes
        with its place in the queue; InvalidRequestError for a callback URL the deployment
        does not send to."""
        if callback_url is not None:
            self._callback_targets().accept(callback_url)
        if len(message) > self._max_message_chars:
            raise InvalidRequestError(
                "message_too_long",
                f"message has {len(message)} characters; the limit is {self._max_message_chars}",
            )
        request = RunRequest(
            user_id=user_id,
            thread_id=thread_id,
            idempotency_key=idempotency_key,
            message=message,
            assistant=assistant,
            if_busy=if_busy,
            callback_url=callback_url,
        )
        if not idempotency_key:
            run = self._start(request)
        else:
            if self._start_once is None:
                self._start_once = self._idempotency().guard(
                    self._start, START_ONCE, data_keyword="request", result_type=RunRecord
                )
            run = self._start_once(request=request)
        return RunWithFiles(run, [], self._queue().position(run))

    def _start(self, request: RunRequest) -> RunRecord:
        run = self._starter().start(
            request.user_id,
            request.thread_id,
            request.message,
            request.assistant,
            request.if_busy,
            callback_url=request.callback_url,
        )
        if request.if_busy == "interrupt" and run.queued_at is not None:
            self._interrupt_active_run(request.user_id, request.thread_id, by=run.run_id)
        return run

    def _interrupt_active_run(self, user_id: str, thread_id: str, *, by: str) -> None:
        """Stop the thread's active run for the run `by`, queued first: it is recorded
        cancelled (reason `interrupted`) as it ends, and `by` starts then. One still starting
        stops as soon as it has started (StartRun sees the mark)."""
        thread = self._threads.get(user_id, thread_id)
        if thread.active_run_id in (None, by):
            return  # it ended meanwhile: `by` is next, or has the thread already
        marked = self._runs.request_interrupt(thread_id, thread.active_run_id, by=by)
        if marked is not None:
            self._approvals().stop_waiting(marked)
        if marked is not None and marked.remote_run_id:
            # Best effort: the mark alone stops the run at its next step.
            with contextlib.suppress(ThreadlineError):
                self._cancel_remote(thread, marked.remote_run_id)

    def _cancel_remote(self, thread: Thread, remote_run_id: str) -> None:
        from threadline.backends.base import RunHandle

        self._backend().cancel_run(
            RunHandle(thread_remote_id=thread.remote_id, run_remote_id=remote_run_id)
        )

    def get(self, user_id: str, thread_id: str, run_id: str) -> RunWithFiles:
        """A run of the user's thread; NotFoundError if either is not found (or not theirs)."""
        self._threads.get(user_id, thread_id)  # ownership
        run = self._runs.get(thread_id, run_id)
        # Download URLs are made at read time: they expire within minutes.
        files = download_urls(self._s3(), self._bucket, run.generated_files)
        return RunWithFiles(run, files, self._queue().position(run))

    def cancel(self, user_id: str, thread_id: str, run_id: str) -> RunRecord:
        """Cancel the user's run: one waiting in the thread's queue leaves it and is recorded
        cancelled at once; the active one is stopped at the backend (the state machine then
        records it cancelled). The run as it stood (or as cancelled, from the queue).
        InvalidRequestError if the run is neither, RunStartingError while it has no remote
        run yet."""
        self._threads.get(user_id, thread_id)  # ownership
        run = self._runs.get(thread_id, run_id)
        if self._queue().position(run) is not None:
            cancelled = RunOutcome(
                status=RunStatus.CANCELLED,
                finished_at=self._now(),
                duration_seconds=0.0,
                usage=Usage(),
                reason="cancelled while queued",
            )
            finishing = self._runs.finish_update(thread_id, run_id, cancelled)
            if self._queue().remove(run, finishing):
                return self._runs.get(thread_id, run_id)
            run = self._runs.get(thread_id, run_id)  # it was handed the thread meanwhile
        thread = self._threads.get(user_id, thread_id)
        if run.status.is_terminal or thread.active_run_id != run_id:
            raise InvalidRequestError("run_not_active", f"run {run_id} is not active")
        if run.status is RunStatus.REQUIRES_APPROVAL:
            # Its remote run has ended, waiting for the calls' outputs: nothing to stop there.
            # Marked as interrupted by itself, it is cancelled as soon as it wakes.
            marked = self._runs.request_interrupt(thread_id, run_id, by=run_id)
            if marked is not None:
                self._approvals().stop_waiting(marked)
            return marked or run
        if not run.remote_run_id:
            raise RunStartingError(run_id)
        self._cancel_remote(thread, run.remote_run_id)
        return run
