"""Deleting threads idle longer than the retention, with everything they own.

Candidates come from the activity index, oldest first (never a scan). A thread with a live
run is skipped; any other is first claimed (`ThreadStore.claim_for_purge`, so no run can
start on it meanwhile), then deleted outside in: its OpenAI files, vector store and remote
thread, its S3 objects (every version: the bucket is versioned), its run and file records,
and last its own record, so a failure part way leaves the record to find everything again
by. Every step is idempotent (a remote object already gone counts as deleted), so a thread
that failed is simply retried by the next run; one thread's failure never stops the others.

The job stops taking threads when the Lambda's remaining time falls below a margin and
returns a cursor to resume after the last thread it handled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from threadline import clock
from threadline.errors import (
    ConfigurationError,
    InvalidRequestError,
    ServiceUnavailableError,
    short_reason,
)
from threadline.files.generated import OUTPUT_PREFIX
from threadline.files.uploads import UPLOAD_PREFIX
from threadline.store import table
from threadline.store.cursors import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from threadline.backends.base import AssistantBackend
    from threadline.files.records import FileStore
    from threadline.runs.records import RunStore
    from threadline.threads.records import Thread, ThreadStore
    from threadline.usage import UsageLedger

# Enough for one more thread's deletion (a few OpenAI calls, S3 and DynamoDB batches).
DEFAULT_MARGIN_MS = 20_000
DEFAULT_PAGE_SIZE = 25
S3_DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys
_POSITION_KEYS = {"GSI1PK", "GSI1SK", "PK", "SK"}


class CleanupFailure(BaseModel):
    thread_id: str
    reason: str


class CleanupReport(BaseModel):
    dry_run: bool
    threads_deleted: int = 0  # in a dry run: would be deleted
    files_deleted: int = 0  # S3 objects of uploads and outputs, every version counted
    bytes_deleted: int = 0
    skipped_active: int = 0  # a run holds the thread, or it became active again
    failures: list[CleanupFailure] = Field(default_factory=list)
    next_cursor: str | None = None  # time ran out: pass it back as `resume_from`


class StoredObjects(BaseModel):
    """A thread's S3 object versions (and delete markers), ready for DeleteObjects."""

    identifiers: list[dict[str, str]] = Field(default_factory=list)
    files: int = 0
    bytes: int = 0


class Cleaner:
    def __init__(
        self,
        *,
        threads: ThreadStore,
        files: FileStore,
        runs: RunStore,
        usage: UsageLedger,
        backend: AssistantBackend,
        s3_client: S3Client,
        bucket: str,
        retention: timedelta,
        margin_ms: int = DEFAULT_MARGIN_MS,
        delete_batch: int = S3_DELETE_BATCH,
        now: Callable[[], datetime] = clock.utc_now,
    ) -> None:
        self._threads = threads
        self._files = files
        self._runs = runs
        self._usage = usage
        self._backend = backend
        self._s3 = s3_client
        self._bucket = bucket
        self._retention = retention
        self._margin_ms = margin_ms
        self._delete_batch = delete_batch
        self._now = now

    def run(
        self,
        *,
        deadline_ms: Callable[[], int],
        dry_run: bool = False,
        page_size: int = DEFAULT_PAGE_SIZE,
        resume_from: str | None = None,
    ) -> CleanupReport:
        """Delete (or, in a dry run, count) the stale threads; `deadline_ms` is the time left."""
        report = CleanupReport(dry_run=dry_run)
        position = _decode_position(resume_from) if resume_from else {}
        start_key = position or None
        while True:
            page = self._threads.stale(
                idle_for=self._retention, limit=page_size, start_key=start_key
            )
            for thread in page.threads:
                if deadline_ms() < self._margin_ms:
                    report.next_cursor = encode_cursor(json.dumps(position))
                    return report
                self._clean(thread, report, dry_run=dry_run)
                position = _position_of(thread)
            if page.next_key is None:
                return report
            start_key = page.next_key

    def purge(self, thread: Thread) -> StoredObjects:
        """Delete the thread and everything it owns, here and at OpenAI; return what S3 held.

        The caller must have made sure no run can use the thread (claimed it, or checked it
        has no active run).
        """
        if thread.backend != self._backend.name:  # its remote objects are out of reach
            raise ConfigurationError(
                f"the thread lives in the {thread.backend} backend, not {self._backend.name}"
            )
        for record in self._files.list(thread.thread_id):
            # An upload that never settled may still have made a file (a lost create reply).
            made = (
                [record.openai_file_id]
                if record.openai_file_id
                else self._backend.files_made_for(
                    record.filename, upload_id=record.upload_id, not_before=record.created_at
                )
            )
            for file_id in made:
                self._backend.delete_file(file_id)
        vector_store_id = thread.vector_store_id or self._backend.vector_store_made_for(thread)
        if vector_store_id:
            self._backend.delete_vector_store(vector_store_id)
        # Runs no webhook counted go with the thread: count them now or never.
        settled = self._backend.settled_runs(thread.remote_id)
        self._usage.count_uncounted(thread.user_id, thread.thread_id, settled, self._now())
        self._backend.delete_thread(thread.remote_id)
        run_objects = {
            *self._runs.remote_objects(thread.thread_id),
            *self._usage.counted_objects(thread.thread_id),
        }
        for remote_id in sorted(run_objects):
            self._backend.delete_run_object(remote_id)
        stored = self._stored_objects(thread)
        self._delete_objects(stored)
        self._files.delete_all(thread.thread_id)
        self._runs.delete_all(thread.thread_id)
        self._usage.forget_counted_objects(thread.thread_id)
        self._threads.delete(thread)
        return stored

    def _clean(self, thread: Thread, report: CleanupReport, *, dry_run: bool) -> None:
        if thread.has_active_run(self._now()):
            report.skipped_active += 1
            return
        try:
            if dry_run:
                stored = self._stored_objects(thread)
            elif self._threads.claim_for_purge(thread, idle_for=self._retention):
                stored = self.purge(thread)
            else:
                report.skipped_active += 1
                return
        except Exception as error:  # recorded; the thread stays and is retried next time
            reason = short_reason(f"{type(error).__name__}: {error}")
            report.failures.append(CleanupFailure(thread_id=thread.thread_id, reason=reason))
            return
        report.threads_deleted += 1
        report.files_deleted += stored.files
        report.bytes_deleted += stored.bytes

    def _stored_objects(self, thread: Thread) -> StoredObjects:
        stored = StoredObjects()
        paginator = self._s3.get_paginator("list_object_versions")
        for prefix in (UPLOAD_PREFIX, OUTPUT_PREFIX):
            # The trailing slash: thread thr_1 must not match thr_10.
            scope = f"{prefix}/{thread.user_id}/{thread.thread_id}/"
            for page in paginator.paginate(Bucket=self._bucket, Prefix=scope):
                for version in page.get("Versions", []):
                    stored.identifiers.append(
                        {"Key": version["Key"], "VersionId": version["VersionId"]}
                    )
                    stored.files += 1
                    stored.bytes += version["Size"]
                for marker in page.get("DeleteMarkers", []):
                    stored.identifiers.append(
                        {"Key": marker["Key"], "VersionId": marker["VersionId"]}
                    )
        return stored

    def _delete_objects(self, stored: StoredObjects) -> None:
        for start in range(0, len(stored.identifiers), self._delete_batch):
            batch: Any = stored.identifiers[start : start + self._delete_batch]
            errors = self._s3.delete_objects(
                Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True}
            ).get("Errors", [])
            if errors:
                first = errors[0]
                raise ServiceUnavailableError(
                    f"S3 did not delete {len(errors)} objects, e.g. {first.get('Key')}: "
                    f"{first.get('Code')}"
                )


def _position_of(thread: Thread) -> dict[str, str]:
    """The activity index key of a thread: where a resumed run continues after it."""
    return {
        "GSI1PK": table.sharded(table.ACTIVITY_PARTITION, thread.thread_id),
        "GSI1SK": clock.iso(thread.last_activity),
        "PK": table.user_key(thread.user_id),
        "SK": table.thread_sort_key(thread.thread_id),
    }


def _decode_position(cursor: str) -> dict[str, str]:
    try:
        position = json.loads(decode_cursor(cursor))
    except ValueError:
        position = None
    valid = isinstance(position, dict) and (
        not position
        or (
            set(position) == _POSITION_KEYS
            and all(isinstance(v, str) for v in position.values())
            and position["GSI1PK"] in table.shards(table.ACTIVITY_PARTITION)
        )
    )
    if not valid:
        raise InvalidRequestError("invalid_cursor", "the cleanup cursor is not valid")
    return position
