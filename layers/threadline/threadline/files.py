"""File records: one per upload to a thread, from the presigned URL to its OpenAI file.

An upload starts `pending` when its URL is issued and settles exactly once, as `ingested`,
`rejected` or `failed`, with a condition on the status: S3 delivers its events at least once,
and a duplicate must find the upload settled and change nothing. See `threadline.table`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from threadline import table as keys
from threadline.backends.base import RunContext
from threadline.dynamo import condition_held, delete_by_prefix, query_all, to_item
from threadline.errors import NotFoundError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

    from threadline.threads import Thread

REASON_LIMIT = 500


class FileStatus(StrEnum):
    PENDING = "pending"  # the upload URL was issued; nothing has arrived yet
    INGESTED = "ingested"  # checked, at OpenAI and attached to the thread
    REJECTED = "rejected"  # refused by content, size or ownership; the object was deleted
    FAILED = "failed"  # acceptable, but OpenAI refused it; nothing was left at OpenAI


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
    ingested_at: datetime | None = None


class FileStore:
    def __init__(self, table: Table, *, now: Callable[[], datetime] = keys.utc_now) -> None:
        self._table = table
        self._now = now

    def _key(self, thread_id: str, upload_id: str) -> dict[str, str]:
        return {"PK": keys.thread_key(thread_id), "SK": keys.file_sort_key(upload_id)}

    def create_pending(self, record: FileRecord) -> None:
        item = to_item(record.model_dump(mode="json", exclude_none=True))
        item.update(self._key(record.thread_id, record.upload_id))
        item["created_at"] = keys.iso(record.created_at)
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
                    ":pk": keys.thread_key(thread_id),
                    ":prefix": keys.file_sort_key(""),
                },
                "ConsistentRead": True,
            },
        )
        return [FileRecord.model_validate(item) for item in items]

    def mark_ingested(
        self,
        thread_id: str,
        upload_id: str,
        *,
        openai_file_id: str,
        sha256: str,
        size: int,
        s3_version_id: str | None,
    ) -> bool:
        """Settle the upload as ingested; False if it had already settled."""
        fields: dict[str, Any] = {
            "openai_file_id": openai_file_id,
            "sha256": sha256,
            "bytes": size,
            "ingested_at": keys.iso(self._now()),
        }
        if s3_version_id:
            fields["s3_version_id"] = s3_version_id
        return self._settle(thread_id, upload_id, FileStatus.INGESTED, fields)

    def mark_rejected(self, thread_id: str, upload_id: str, reason: str) -> bool:
        """Settle the upload as rejected; False if it had already settled."""
        return self._settle(
            thread_id, upload_id, FileStatus.REJECTED, {"reason": reason[:REASON_LIMIT]}
        )

    def mark_failed(self, thread_id: str, upload_id: str, reason: str) -> bool:
        """Settle the upload as failed; False if it had already settled."""
        return self._settle(
            thread_id, upload_id, FileStatus.FAILED, {"reason": reason[:REASON_LIMIT]}
        )

    def delete_all(self, thread_id: str) -> int:
        """Delete every file record of a thread (when the thread goes); return how many."""
        return delete_by_prefix(self._table, keys.thread_key(thread_id), keys.file_sort_key(""))

    def _settle(
        self, thread_id: str, upload_id: str, status: FileStatus, fields: dict[str, Any]
    ) -> bool:
        fields = {"status": status.value, **fields}
        return condition_held(
            self._table.update_item,
            Key=self._key(thread_id, upload_id),
            UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in fields),
            ConditionExpression="#status = :pending",
            ExpressionAttributeNames={f"#{name}": name for name in fields},
            ExpressionAttributeValues={
                ":pending": FileStatus.PENDING.value,
                **{f":{name}": value for name, value in fields.items()},
            },
        )


def run_context(thread: Thread, files: FileStore) -> RunContext:
    """What a run on this thread may use: its ingested files (for code interpreter) and its
    vector store (for file search)."""
    return RunContext(
        file_ids=[
            record.openai_file_id
            for record in files.list(thread.thread_id)
            if record.status is FileStatus.INGESTED and record.openai_file_id
        ],
        vector_store_id=thread.vector_store_id,
    )
