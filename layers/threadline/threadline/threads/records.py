"""Thread records: reading, listing (by user, by idleness), the vector store, purge claims.

A thread is made by `threadline.threads.creation` and locked for a run by
`threadline.threads.run_lock`; see `threadline.store.table` for the keys and access patterns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from threadline import clock
from threadline.errors import NotFoundError
from threadline.store import table
from threadline.store.cursors import decode_cursor, encode_cursor
from threadline.store.dynamo import (
    condition_held,
    is_conditional_failure,
    query_page,
    query_shards,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_dynamodb.type_defs import QueryInputTableQueryTypeDef


def record_expiry(last_activity: datetime, retention: timedelta) -> int:
    """A thread record's TTL (epoch seconds), moved on whenever the thread is active.

    TTL is only a safety net far behind the cleanup job, which also deletes the remote thread;
    TTL alone would orphan it.
    """
    return int((last_activity + 3 * retention).timestamp())


class Thread(BaseModel):
    thread_id: str
    user_id: str
    purpose: str
    backend: str
    remote_id: str
    created_at: datetime
    last_activity: datetime
    active_run_id: str | None = None
    # The remote run the thread's next run continues from: the last one that completed (so
    # it never has unanswered tool calls). None until a run completes. Only the Responses
    # backend reads it; an Assistants thread keeps its history itself.
    head_response_id: str | None = None
    lock_expires_at: int | None = None  # epoch seconds; the run lock's lease
    queued_runs: int = 0  # runs waiting for the thread (threads.run_queue)
    vector_store_id: str | None = None
    # Set when cleanup starts deleting the thread: from then on it is gone for everyone.
    purging_since: datetime | None = None

    def has_active_run(self, now: datetime) -> bool:
        """A run holds the lock and its lease has not passed (a crashed run's lock has)."""
        return self.active_run_id is not None and (self.lock_expires_at or 0) >= now.timestamp()

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Thread:
        return cls.model_validate(item)


class ThreadPage(BaseModel):
    threads: list[Thread]
    next_key: dict[str, str] | None = None


class ThreadCursorPage(BaseModel):
    """A page of threads for a caller: where the next starts is an opaque cursor."""

    threads: list[Thread]
    next_cursor: str | None = None  # None on the last page


class ThreadStore:
    def __init__(self, table: Table, *, now: Callable[[], datetime] = clock.utc_now) -> None:
        self._table = table
        self._now = now

    # -- reads -----------------------------------------------------------------------------

    def get(self, user_id: str, thread_id: str) -> Thread:
        """The user's thread; NotFoundError if absent, someone else's, or being deleted."""
        item = self._table.get_item(
            Key={"PK": table.user_key(user_id), "SK": table.thread_sort_key(thread_id)},
            ConsistentRead=True,
        ).get("Item")
        if not item or "purging_since" in item:
            raise NotFoundError(f"thread {thread_id} not found")
        return Thread.from_item(item)

    def list(
        self, user_id: str, *, limit: int, start_key: dict[str, str] | None = None
    ) -> ThreadPage:
        query: QueryInputTableQueryTypeDef = {
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {":pk": table.user_key(user_id), ":prefix": "THREAD#"},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        items, next_key = query_page(self._table, query, start_key)
        return ThreadPage(threads=[Thread.from_item(item) for item in items], next_key=next_key)

    def list_from_cursor(self, user_id: str, *, limit: int, cursor: str | None) -> ThreadCursorPage:
        """`list` with an opaque cursor in place of the table's keys; InvalidRequestError for
        a cursor that is not one of ours."""
        start_key = None
        if cursor:
            sort_key = decode_cursor(cursor, prefix=table.thread_sort_key(""))
            start_key = {"PK": table.user_key(user_id), "SK": sort_key}
        page = self.list(user_id, limit=limit, start_key=start_key)
        next_cursor = encode_cursor(page.next_key["SK"]) if page.next_key else None
        return ThreadCursorPage(threads=page.threads, next_cursor=next_cursor)

    def stale(
        self, *, idle_for: timedelta, limit: int, start_key: dict[str, str] | None = None
    ) -> ThreadPage:
        """Threads idle longer than `idle_for`, from the activity index: shard by shard, the
        oldest first in each."""
        query: QueryInputTableQueryTypeDef = {
            "IndexName": table.ACTIVITY_INDEX,
            "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK < :cutoff",
            "ExpressionAttributeValues": {":cutoff": clock.iso(self._now() - idle_for)},
        }
        items, next_key = query_shards(
            self._table,
            query,
            table.shards(table.ACTIVITY_PARTITION),
            index_keys=("GSI1PK", "GSI1SK"),
            limit=limit,
            start_key=start_key,
        )
        return ThreadPage(threads=[Thread.from_item(item) for item in items], next_key=next_key)

    def expired_locks(self, now: datetime, *, limit: int) -> Sequence[tuple[str, str]]:
        """(user id, thread id) of threads whose run lock's lease ended before `now`, the
        longest expired first, from the lock-expiry index."""
        found = [
            item
            for partition in table.shards(table.LOCKED_PARTITION)
            for item in query_page(
                self._table,
                {
                    "IndexName": table.LOCK_EXPIRY_INDEX,
                    "KeyConditionExpression": "GSI2PK = :pk AND GSI2SK < :now",
                    "ExpressionAttributeValues": {":pk": partition, ":now": int(now.timestamp())},
                    "Limit": limit,
                },
                None,
            )[0]
        ]
        items = sorted(found, key=lambda item: int(item["GSI2SK"]))[:limit]
        return [
            (str(item["PK"]).removeprefix("USER#"), str(item["SK"]).removeprefix("THREAD#"))
            for item in items
        ]

    # -- writes ----------------------------------------------------------------------------

    def set_vector_store(self, user_id: str, thread_id: str, vector_store_id: str) -> str:
        """Record the thread's vector store unless it has one; return the one it has now.

        Two uploads ingested at once may each create a store: the first recorded wins, and
        the caller whose id comes back different moves its file there and deletes its store.
        """
        try:
            self._table.update_item(
                Key={"PK": table.user_key(user_id), "SK": table.thread_sort_key(thread_id)},
                UpdateExpression="SET vector_store_id = :store",
                ConditionExpression=(
                    "attribute_exists(PK) AND attribute_not_exists(purging_since) AND "
                    "(attribute_not_exists(vector_store_id) OR vector_store_id = :store)"
                ),
                ExpressionAttributeValues={":store": vector_store_id},
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            winner = self.get(user_id, thread_id).vector_store_id  # NotFound if gone/purging
            if winner is None:  # refused for a reason the record does not show: say so
                raise
            return winner
        return vector_store_id

    def claim_for_purge(self, thread: Thread, *, idle_for: timedelta) -> bool:
        """Mark a stale thread as being deleted; False if it is active again (or has runs
        queued), or gone.

        Once claimed, `get` no longer finds it and no run can take its lock, so nothing new
        is made under a thread whose remote objects are being deleted.
        """
        now = self._now()
        return condition_held(
            self._table.update_item,
            Key={
                "PK": table.user_key(thread.user_id),
                "SK": table.thread_sort_key(thread.thread_id),
            },
            UpdateExpression="SET purging_since = if_not_exists(purging_since, :now)",
            ConditionExpression=(
                "attribute_exists(PK) AND last_activity < :cutoff AND "
                "(attribute_not_exists(active_run_id) OR lock_expires_at < :epoch) AND "
                "(attribute_not_exists(queued_runs) OR queued_runs <= :zero)"
            ),
            ExpressionAttributeValues={
                ":zero": 0,
                ":now": clock.iso(now),
                ":cutoff": clock.iso(now - idle_for),
                ":epoch": int(now.timestamp()),
            },
        )

    def delete(self, thread: Thread) -> None:
        """Delete the record and the purpose pointer if it still points at this thread."""
        self._table.delete_item(
            Key={
                "PK": table.user_key(thread.user_id),
                "SK": table.thread_sort_key(thread.thread_id),
            }
        )
        try:
            self._table.delete_item(
                Key={
                    "PK": table.user_key(thread.user_id),
                    "SK": table.purpose_sort_key(thread.purpose),
                },
                ConditionExpression="thread_id = :thread",
                ExpressionAttributeValues={":thread": thread.thread_id},
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
