"""File records: one per upload to a thread, from the presigned URL to its OpenAI file.

An upload starts `pending` when its URL is issued and settles exactly once, as `ingested`,
`rejected` or `failed`, with a condition on the status: S3 delivers its events at least once,
and a duplicate must find the upload settled and change nothing. See `threadline.store.table`.

While pending, the record is in the table's GSI1 under its shard of `PENDING_UPLOADS`, by when
its URL was issued, and settling takes it out: the sweep (`threadline.files.sweep`) finds
what no ingest settled by querying it, never by a scan.

A file for file search is `indexing` in between: it is at OpenAI and in the thread's vector
store, but OpenAI has not finished indexing it. Nothing waits for that: whoever next looks at
the thread's files (a run starting, the API listing them) asks OpenAI, and settles the file,
once, as `ingested`, or as `failed` with OpenAI's reason and its OpenAI file deleted.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from threadline import clock
from threadline.backends.base import AssistantBackend, FileIndex, RunContext
from threadline.errors import (
    BackendRequestError,
    NotFoundError,
    TransientBackendError,
    short_reason,
)
from threadline.store import table
from threadline.store.dynamo import condition_held, delete_by_prefix, query_all, query_page, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_dynamodb.type_defs import QueryInputTableQueryTypeDef

    from threadline.threads.records import Thread

logger = logging.getLogger(__name__)


class FileStatus(StrEnum):
    PENDING = "pending"  # the upload URL was issued; nothing has arrived yet
    INDEXING = "indexing"  # at OpenAI and attached; file search has not finished indexing it
    INGESTED = "ingested"  # checked, at OpenAI, attached to the thread and ready for its tools
    REJECTED = "rejected"  # refused by content, size or ownership; the object was deleted
    FAILED = "failed"  # acceptable, but OpenAI refused or could not index it; none left there


# Code interpreter reads a file as soon as it is at OpenAI: it needs no index.
AT_OPENAI = frozenset({FileStatus.INDEXING, FileStatus.INGESTED})


class FileRecord(BaseModel):
    upload_id: str
    thread_id: str
    user_id: str
    filename: str
    content_type: str
    s3_key: str
    bytes: int  # declared when pending, as received once ingested
    status: FileStatus = FileStatus.PENDING
    created_at: datetime
    reason: str | None = None
    sha256: str | None = None
    s3_version_id: str | None = None
    openai_file_id: str | None = None
    vector_store_id: str | None = None  # where file search indexes it, while `indexing`
    ingested_at: datetime | None = None
    sweep_attempts: int = 0  # ingests the sweep began for it (it is still pending)


class FileStore:
    def __init__(
        self,
        table: Table,
        *,
        backend: Callable[[], AssistantBackend],
        now: Callable[[], datetime] = clock.utc_now,
    ) -> None:
        """`backend` is built on first use: only a look at a file still indexing needs it."""
        self._table = table
        self._backend = backend
        self._now = now

    def _key(self, thread_id: str, upload_id: str) -> dict[str, str]:
        return {"PK": table.thread_key(thread_id), "SK": table.file_sort_key(upload_id)}

    def create_pending(self, record: FileRecord) -> None:
        item = to_item(record.model_dump(mode="json", exclude_none=True))
        item.update(self._key(record.thread_id, record.upload_id))
        item["created_at"] = clock.iso(record.created_at)
        partition = table.sharded(table.PENDING_UPLOADS_PARTITION, record.upload_id)
        item.update(GSI1PK=partition, GSI1SK=item["created_at"])
        self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(PK)")

    def find(self, thread_id: str, upload_id: str) -> FileRecord | None:
        item = self._table.get_item(Key=self._key(thread_id, upload_id), ConsistentRead=True).get(
            "Item"
        )
        return FileRecord.model_validate(item) if item else None

    def get(self, thread_id: str, upload_id: str) -> FileRecord:
        record = self.find(thread_id, upload_id)
        if record is None:
            raise NotFoundError(f"file {upload_id} not found")
        return record

    def list(self, thread_id: str) -> list[FileRecord]:
        """The thread's uploads, oldest first (upload ids sort by creation time)."""
        items = query_all(
            self._table,
            {
                "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
                "ExpressionAttributeValues": {
                    ":pk": table.thread_key(thread_id),
                    ":prefix": table.file_sort_key(""),
                },
                "ConsistentRead": True,
            },
        )
        return [FileRecord.model_validate(item) for item in items]

    def current(self, thread_id: str) -> builtins.list[FileRecord]:  # `list` is a method here
        """The thread's uploads, oldest first, each one still `indexing` settled first if
        OpenAI has finished with it."""
        return [
            self._settle_indexing(record) if record.status is FileStatus.INDEXING else record
            for record in self.list(thread_id)
        ]

    def pending_before(self, cutoff: datetime) -> Iterator[FileRecord]:
        """Uploads still pending whose URL was issued before `cutoff`, oldest first, read page
        by page as the caller goes. The index is eventually consistent: one may have settled
        a moment ago (its conditional writes then change nothing)."""
        for partition in table.shards(table.PENDING_UPLOADS_PARTITION):
            query: QueryInputTableQueryTypeDef = {
                "IndexName": table.ACTIVITY_INDEX,
                "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK < :cutoff",
                "ExpressionAttributeValues": {":pk": partition, ":cutoff": clock.iso(cutoff)},
            }
            start_key = None
            while True:
                items, start_key = query_page(self._table, query, start_key)
                yield from (FileRecord.model_validate(item) for item in items)
                if start_key is None:
                    break

    def claim_sweep_attempt(self, record: FileRecord) -> bool:
        """Count one more sweep attempt at ingesting the upload, if it is still pending and no
        other sweep counted one since `record` was read; False otherwise."""
        return condition_held(
            self._table.update_item,
            Key=self._key(record.thread_id, record.upload_id),
            UpdateExpression="ADD sweep_attempts :one",
            # Absent on records written before the sweep existed.
            ConditionExpression="#status = :pending AND "
            "(attribute_not_exists(sweep_attempts) OR sweep_attempts = :seen)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":pending": FileStatus.PENDING.value,
                ":seen": record.sweep_attempts,
                ":one": 1,
            },
        )

    def mark_attached(
        self,
        thread_id: str,
        upload_id: str,
        *,
        openai_file_id: str,
        sha256: str,
        size: int,
        s3_version_id: str | None,
        indexing_in: str | None,
    ) -> bool:
        """Settle the upload as at OpenAI and attached: `indexing` while file search indexes it
        in vector store `indexing_in`, else `ingested`; False if it had already settled."""
        fields: dict[str, Any] = {"openai_file_id": openai_file_id, "sha256": sha256, "bytes": size}
        if s3_version_id:
            fields["s3_version_id"] = s3_version_id
        if indexing_in:
            fields["vector_store_id"] = indexing_in
            return self._settle(thread_id, upload_id, FileStatus.INDEXING, fields)
        fields["ingested_at"] = clock.iso(self._now())
        return self._settle(thread_id, upload_id, FileStatus.INGESTED, fields)

    def mark_rejected(self, thread_id: str, upload_id: str, reason: str) -> bool:
        """Settle the upload as rejected; False if it had already settled."""
        return self._settle(thread_id, upload_id, FileStatus.REJECTED, {"reason": reason})

    def mark_failed(self, thread_id: str, upload_id: str, reason: str) -> bool:
        """Settle the upload as failed; False if it had already settled."""
        return self._settle(thread_id, upload_id, FileStatus.FAILED, {"reason": reason})

    def delete_all(self, thread_id: str) -> int:
        """Delete every file record of a thread (when the thread goes); return how many."""
        return delete_by_prefix(self._table, table.thread_key(thread_id), table.file_sort_key(""))

    def _settle_indexing(self, record: FileRecord) -> FileRecord:
        """The record as OpenAI's indexing of its file now stands, settled if it is done."""
        if record.vector_store_id is None or record.openai_file_id is None:
            return record  # not attached by `mark_attached`: nothing to ask about
        try:
            index = self._backend().file_index(record.vector_store_id, record.openai_file_id)
        except (TransientBackendError, BackendRequestError):  # the next look asks again
            logger.warning("could not ask how indexing stands", extra={"file": record.upload_id})
            return record
        if index.status == "in_progress":
            return record
        status, fields = _indexed_outcome(index, self._now())
        settled = self._settle(
            record.thread_id, record.upload_id, status, fields, expected=FileStatus.INDEXING
        )
        if settled and status is FileStatus.FAILED:
            self._delete_unusable(record.openai_file_id)
        return self.get(record.thread_id, record.upload_id)  # as we, or another look, settled it

    def _delete_unusable(self, file_id: str) -> None:
        """Delete an OpenAI file file search could not index; cleanup retries if this fails
        (the record keeps its id)."""
        try:
            self._backend().delete_file(file_id)
        except (TransientBackendError, BackendRequestError):
            logger.warning("could not delete an unindexable file", extra={"file_id": file_id})

    def _settle(
        self,
        thread_id: str,
        upload_id: str,
        status: FileStatus,
        fields: dict[str, Any],
        *,
        expected: FileStatus = FileStatus.PENDING,
    ) -> bool:
        fields = {"status": status.value, **fields}
        if "reason" in fields:
            fields["reason"] = short_reason(fields["reason"])
        return condition_held(
            self._table.update_item,
            Key=self._key(thread_id, upload_id),
            # Settled: out of the pending uploads' index.
            UpdateExpression="SET "
            + ", ".join(f"#{name} = :{name}" for name in fields)
            + " REMOVE GSI1PK, GSI1SK",
            ConditionExpression="#status = :expected",
            ExpressionAttributeNames={f"#{name}": name for name in fields},
            ExpressionAttributeValues={
                ":expected": expected.value,
                **{f":{name}": value for name, value in fields.items()},
            },
        )


def _indexed_outcome(index: FileIndex, now: datetime) -> tuple[FileStatus, dict[str, Any]]:
    if index.status == "completed":
        return FileStatus.INGESTED, {"ingested_at": clock.iso(now)}
    reason = f"file search could not index it: {index.error or index.status}"
    return FileStatus.FAILED, {"reason": reason}


def run_context(thread: Thread, files: FileStore) -> RunContext:
    """What a run on this thread may use, its files settled first: each file at OpenAI for
    code interpreter (an indexing one too), and its vector store for file search (which
    finds only the files indexed there, so only `ingested` ones)."""
    return RunContext(
        file_ids=[
            record.openai_file_id
            for record in files.current(thread.thread_id)
            if record.status in AT_OPENAI and record.openai_file_id
        ],
        vector_store_id=thread.vector_store_id,
    )
