"""Ingesting an upload S3 reported: check it again, by content, then hand it to OpenAI.

Nothing the presigned POST let through is trusted: the key must be one we issued (its file
record is `pending`), the thread must still be the user's, and the bytes must be what the
file name says and no more than was declared. Whatever fails that is deleted from S3.

Exactly once, in two layers. The handler wraps `ingest` in Powertools idempotency keyed on
the object's bucket, key and version: a redelivered event returns the first result, and
a concurrent duplicate is refused while the first is in flight (a conditional write alone
would let both upload to OpenAI before either settled the record). The record's conditional
settle is the lasting guard: once an upload is settled, any later event for it (another
version of the key, or one after the idempotency record expired) changes nothing.

Never an orphan at OpenAI: everything made for an upload is named for it (the file by the
upload id, the thread's vector store by the thread's metadata) and found again by the next
attempt, which adopts it, or by cleanup. A permanent failure deletes the OpenAI file and
settles the record `failed`; a transient one is raised, the file kept, so S3's retry picks
up where it stopped (see `threadline.backends.openai_files`). A new vector store is recorded
on the thread before anything goes into it.

A file for file search is recorded `indexing` until OpenAI has indexed it; the next look at
the thread's files settles it (`threadline.files.records`).

Settling the upload's record and deleting its object is `threadline.files.settling`.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from threadline.errors import (
    InvalidRequestError,
    NotFoundError,
    ThreadlineError,
    TransientBackendError,
    loggable,
)
from threadline.files.policy import UploadPolicy
from threadline.files.records import FileRecord, FileStatus, FileStore
from threadline.files.settling import IngestResult, UploadedObject, UploadSettler

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectRequestTypeDef

    from threadline.backends.base import AssistantBackend, FileIndex
    from threadline.threads.records import Thread, ThreadStore

logger = logging.getLogger(__name__)

# The idempotency of an ingest, shared by whoever ingests (IngestUpload, the sweep): one object
# version; an unversioned bucket's ETag stands in for the version.
INGEST_ONCE_NAME = "ingest_upload"
INGEST_ONCE_KEY_PATH = "[bucket, key, version_id || etag]"


class Ingestor(UploadSettler):
    def __init__(
        self,
        *,
        threads: ThreadStore,
        files: FileStore,
        backend: AssistantBackend,
        s3_client: S3Client,
        policy: UploadPolicy,
    ) -> None:
        super().__init__(files=files, s3_client=s3_client)
        self._threads = threads
        self._backend = backend
        self._policy = policy

    def ingest(self, uploaded: UploadedObject) -> IngestResult:
        try:
            record = self._issued_record(uploaded)
        except InvalidRequestError as error:
            return self._quarantine(uploaded, error)
        if record.status is not FileStatus.PENDING:
            return self._already_settled(uploaded, record)
        try:
            thread = self._threads.get(record.user_id, record.thread_id)
            content = self._checked_content(uploaded, record)
        except NotFoundError:
            rejection = InvalidRequestError("thread_not_found", "the thread is not the user's")
            return self._reject(uploaded, record, rejection)
        except InvalidRequestError as error:
            return self._reject(uploaded, record, error)
        return self._hand_to_openai(uploaded, record, thread, content)

    # -- checks --------------------------------------------------------------------------

    def _checked_content(self, uploaded: UploadedObject, record: FileRecord) -> bytes:
        # The reported size first: a wrong-sized object is refused without downloading it.
        self._policy.check_size(uploaded.size)
        _check_declared_size(uploaded.size, record)
        request: GetObjectRequestTypeDef = {"Bucket": uploaded.bucket, "Key": uploaded.key}
        if uploaded.version_id:
            request["VersionId"] = uploaded.version_id
        body = self._s3.get_object(**request)["Body"]
        content = body.read(self._policy.max_bytes + 1)
        self._policy.check_content(record.filename, content)
        _check_declared_size(len(content), record)
        return content

    # -- outcomes ------------------------------------------------------------------------

    def _hand_to_openai(
        self, uploaded: UploadedObject, record: FileRecord, thread: Thread, content: bytes
    ) -> IngestResult:
        try:
            file_id = self._backend.upload_file(
                record.filename,
                content,
                upload_id=record.upload_id,
                not_before=record.created_at,
            )
        except ThreadlineError as error:
            if isinstance(error, TransientBackendError):
                raise
            return self._fail(uploaded, record, error)
        try:
            thread, index = self._attach(thread, file_id, record.filename)
            indexing_in = thread.vector_store_id if index and index.status != "completed" else None
            settled = self._files.mark_attached(
                record.thread_id,
                record.upload_id,
                openai_file_id=file_id,
                sha256=hashlib.sha256(content).hexdigest(),
                size=len(content),
                s3_version_id=uploaded.version_id,
                indexing_in=indexing_in,
            )
        except Exception as error:
            if not isinstance(error, ThreadlineError) or isinstance(error, TransientBackendError):
                # Worth retrying: S3 redelivers the event. The file stays for the retry to find
                # again by its name: deleting it would leave what it was already attached to
                # (an Assistants message) pointing at nothing, beside the retry's own.
                raise
            self._forget(file_id)
            return self._fail(uploaded, record, error)
        if not settled:  # another delivery settled it first: keep theirs, drop ours
            current = self._files.get(record.thread_id, record.upload_id)
            if current.openai_file_id != file_id:  # not the one it found again and kept
                self._forget(file_id)
            return self._already_settled(uploaded, current)
        status = FileStatus.INDEXING if indexing_in else FileStatus.INGESTED
        return self._result(uploaded, record, status, openai_file_id=file_id)

    def _attach(
        self, thread: Thread, file_id: str, filename: str
    ) -> tuple[Thread, FileIndex | None]:
        """Attach the file; a vector store new to the thread is recorded on it first. Returns
        the thread as attached to, and how indexing the file stands."""
        store = self._backend.thread_vector_store(thread, filename)
        if store is not None and store != thread.vector_store_id:
            thread = thread.model_copy(update={"vector_store_id": self._record(thread, store)})
        return thread, self._backend.attach_file(thread, file_id, filename)

    def _record(self, thread: Thread, store: str) -> str:
        """Record `store` as the thread's vector store; return the one it has now."""
        try:
            winner = self._threads.set_vector_store(thread.user_id, thread.thread_id, store)
        except Exception:
            self._backend.delete_vector_store(store)
            raise
        if winner != store:  # a concurrent upload gave the thread its store first
            self._backend.delete_vector_store(store)
        return winner

    def _reject(
        self, uploaded: UploadedObject, record: FileRecord, error: InvalidRequestError
    ) -> IngestResult:
        self._delete_object(uploaded)
        reason = f"{error.code}: {error}"
        settled = self._files.mark_rejected(record.thread_id, record.upload_id, reason)
        return self._result(
            uploaded, record, FileStatus.REJECTED, reason=reason, duplicate=not settled
        )

    def _fail(
        self, uploaded: UploadedObject, record: FileRecord, error: ThreadlineError
    ) -> IngestResult:
        self._delete_object(uploaded)
        reason = f"{type(error).__name__}: {error}"
        settled = self._files.mark_failed(record.thread_id, record.upload_id, reason)
        return self._result(
            uploaded, record, FileStatus.FAILED, reason=reason, duplicate=not settled
        )

    # -- side effects --------------------------------------------------------------------

    def _forget(self, file_id: str) -> None:
        """Delete an uploaded OpenAI file the thread will not use."""
        try:
            self._backend.delete_file(file_id)
        except Exception as error:
            logger.error(
                "could not delete an unused OpenAI file",
                extra={"file_id": file_id, **loggable(error)},
            )
            raise


def _check_declared_size(size: int, record: FileRecord) -> None:
    if size != record.bytes:
        raise InvalidRequestError(
            "size_mismatch", f"{size} bytes arrived; {record.bytes} were declared"
        )
