"""Thread records: get-or-create per user and purpose, ownership, activity and the run lock.

A user's thread for a purpose is found or made race-safe with conditional writes.
See `threadline.table` for the keys and access patterns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from threadline import clock, table
from threadline.cursors import decode_cursor, encode_cursor
from threadline.dynamo import condition_held, is_conditional_failure, query_page
from threadline.errors import NotFoundError, ThreadBusyError
from threadline.ids import new_id

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_dynamodb.type_defs import PutTypeDef, QueryInputTableQueryTypeDef

# The run lock outlives the run's deadline by this much, so only a crashed execution loses it.
LOCK_LEASE_MARGIN = timedelta(minutes=15)


def run_lock_lease(run_timeout_seconds: int) -> timedelta:
    """How long a run holds its thread's lock: the deployment's run timeout and the margin."""
    return timedelta(seconds=run_timeout_seconds) + LOCK_LEASE_MARGIN


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
    def __init__(
        self,
        table: Table,
        *,
        retention: timedelta,
        now: Callable[[], datetime] = clock.utc_now,
    ) -> None:
        self._table = table
        self._retention = retention
        self._now = now

    # -- get or create -------------------------------------------------------------------

    def get_or_create(
        self,
        user_id: str,
        purpose: str,
        *,
        reuse_for: timedelta,
        backend: str,
        create_remote: Callable[[str], str],
        delete_remote: Callable[[str], None],
    ) -> tuple[Thread, bool]:
        """Return the user's fresh thread for `purpose`, or create one; True if created.

        The remote thread is made (for the new thread's id) before the record, and the record
        is only written if the purpose pointer is still what we read: a caller that loses the
        race deletes its remote thread and returns the winner's, so two concurrent calls yield
        one thread and no orphan.
        """
        pointer = self._table.get_item(
            Key={"PK": table.user_key(user_id), "SK": table.purpose_sort_key(purpose)},
            ConsistentRead=True,
        ).get("Item")
        previous_thread_id = str(pointer["thread_id"]) if pointer else None
        if previous_thread_id:
            current = self._fresh_thread(user_id, previous_thread_id, reuse_for)
            if current:
                return current, False

        thread_id = new_id("thr")
        remote_id = create_remote(thread_id)
        thread = self._new_thread(thread_id, user_id, purpose, backend, remote_id)
        try:
            self._write_new_thread(thread, previous_thread_id)
        except ClientError as error:
            delete_remote(remote_id)
            if not is_conditional_failure(error):
                raise
            winner = self._table.get_item(
                Key={"PK": table.user_key(user_id), "SK": table.purpose_sort_key(purpose)},
                ConsistentRead=True,
            )["Item"]
            return self.get(user_id, str(winner["thread_id"])), False
        return thread, True

    def _fresh_thread(self, user_id: str, thread_id: str, reuse_for: timedelta) -> Thread | None:
        now = self._now()
        try:
            attributes = self._table.update_item(
                Key={"PK": table.user_key(user_id), "SK": table.thread_sort_key(thread_id)},
                UpdateExpression="SET last_activity = :now, GSI1SK = :now, expires_at = :exp",
                ConditionExpression=(
                    "attribute_exists(PK) AND last_activity >= :cutoff AND "
                    "attribute_not_exists(purging_since)"
                ),
                ExpressionAttributeValues={
                    ":now": clock.iso(now),
                    ":cutoff": clock.iso(now - reuse_for),
                    ":exp": self._expiry(now),
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if is_conditional_failure(error):
                return None
            raise
        return Thread.from_item(attributes)

    def _new_thread(
        self, thread_id: str, user_id: str, purpose: str, backend: str, remote_id: str
    ) -> Thread:
        now = self._now()
        return Thread(
            thread_id=thread_id,
            user_id=user_id,
            purpose=purpose,
            backend=backend,
            remote_id=remote_id,
            created_at=now,
            last_activity=now,
        )

    def _write_new_thread(self, thread: Thread, previous_thread_id: str | None) -> None:
        pointer: PutTypeDef = {
            "TableName": self._table.name,
            "Item": {
                "PK": table.user_key(thread.user_id),
                "SK": table.purpose_sort_key(thread.purpose),
                "thread_id": thread.thread_id,
            },
        }
        if previous_thread_id:
            pointer["ConditionExpression"] = "thread_id = :previous"
            pointer["ExpressionAttributeValues"] = {":previous": previous_thread_id}
        else:
            pointer["ConditionExpression"] = "attribute_not_exists(PK)"
        client = self._table.meta.client
        client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._table.name,
                        "Item": self._thread_item(thread),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {"Put": pointer},
            ]
        )

    def _thread_item(self, thread: Thread) -> dict[str, Any]:
        last_activity = clock.iso(thread.last_activity)
        item = thread.model_dump(mode="json", exclude_none=True)
        item["created_at"] = clock.iso(thread.created_at)
        item["last_activity"] = last_activity
        item.update(
            PK=table.user_key(thread.user_id),
            SK=table.thread_sort_key(thread.thread_id),
            GSI1PK=table.ACTIVITY_PARTITION,
            GSI1SK=last_activity,
            expires_at=self._expiry(thread.last_activity),
        )
        return item

    def _expiry(self, last_activity: datetime) -> int:
        # TTL is only a safety net far behind the cleanup job, which also deletes the remote
        # thread; TTL alone would orphan it.
        return int((last_activity + 3 * self._retention).timestamp())

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
        """Threads idle longer than `idle_for`, oldest first, from the activity index."""
        query: QueryInputTableQueryTypeDef = {
            "IndexName": table.ACTIVITY_INDEX,
            "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK < :cutoff",
            "ExpressionAttributeValues": {
                ":pk": table.ACTIVITY_PARTITION,
                ":cutoff": clock.iso(self._now() - idle_for),
            },
            "Limit": limit,
        }
        items, next_key = query_page(self._table, query, start_key)
        return ThreadPage(threads=[Thread.from_item(item) for item in items], next_key=next_key)

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
        """Mark a stale thread as being deleted; False if it is active again or gone.

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
                "(attribute_not_exists(active_run_id) OR lock_expires_at < :epoch)"
            ),
            ExpressionAttributeValues={
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

    # -- the run lock ----------------------------------------------------------------------

    def lock_update(
        self, user_id: str, thread_id: str, run_id: str, lease: timedelta
    ) -> dict[str, Any]:
        """The conditional update that takes the run lock, for use alone or in a transaction.

        Taken if free, already held by this run (retries are harmless), or its lease has
        passed (a crashed run cannot hold a thread forever).
        """
        now = self._now()
        return {
            "TableName": self._table.name,
            "Key": {"PK": table.user_key(user_id), "SK": table.thread_sort_key(thread_id)},
            "UpdateExpression": (
                "SET active_run_id = :run, lock_expires_at = :lease_end, "
                "last_activity = :now, GSI1SK = :now"
            ),
            "ConditionExpression": (
                "attribute_exists(PK) AND attribute_not_exists(purging_since) AND "
                "(attribute_not_exists(active_run_id) "
                "OR active_run_id = :run OR lock_expires_at < :epoch)"
            ),
            "ExpressionAttributeValues": {
                ":run": run_id,
                ":lease_end": int((now + lease).timestamp()),
                ":now": clock.iso(now),
                ":epoch": int(now.timestamp()),
            },
        }

    def acquire_run_lock(
        self, user_id: str, thread_id: str, run_id: str, *, lease: timedelta
    ) -> None:
        try:
            self._table.meta.client.update_item(
                **self.lock_update(user_id, thread_id, run_id, lease)
            )
        except ClientError as error:
            if is_conditional_failure(error):
                self.raise_lock_conflict(user_id, thread_id)
            raise

    def raise_lock_conflict(self, user_id: str, thread_id: str) -> None:
        """Explain a failed lock condition: the thread is gone (or being deleted), or another
        run holds it."""
        thread = self.get(user_id, thread_id)
        raise ThreadBusyError(thread_id, thread.active_run_id)

    def release_run_lock(
        self, user_id: str, thread_id: str, run_id: str, *, head_response_id: str | None = None
    ) -> bool:
        """Release the lock if this run holds it, moving the thread's head to the run's last
        remote response when given (a completed run); False if it was already released."""
        now = self._now()
        head = "head_response_id = :head, " if head_response_id else ""
        return condition_held(
            self._table.update_item,
            Key={"PK": table.user_key(user_id), "SK": table.thread_sort_key(thread_id)},
            UpdateExpression=(
                "REMOVE active_run_id, lock_expires_at "
                f"SET {head}last_activity = :now, GSI1SK = :now, expires_at = :exp"
            ),
            ConditionExpression="active_run_id = :run",
            ExpressionAttributeValues={
                ":run": run_id,
                ":now": clock.iso(now),
                ":exp": self._expiry(now),
                **({":head": head_response_id} if head_response_id else {}),
            },
        )
