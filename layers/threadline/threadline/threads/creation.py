"""Get-or-create: a user's thread for a purpose, found or made with its remote thread.

A purpose pointer item names the user's current thread for that purpose; a fresh one is reused
(and touched), otherwise a new record and the pointer are written in one conditional
transaction, so concurrent callers end up with one thread and no orphaned remote thread.
See `threadline.store.table` for the keys.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from threadline import clock
from threadline.ids import new_id
from threadline.store import table
from threadline.store.dynamo import is_conditional_failure, updated_if_held
from threadline.threads.records import Thread, ThreadStore, record_expiry

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_dynamodb.type_defs import PutTypeDef


class ThreadCreator:
    def __init__(
        self,
        table: Table,
        *,
        threads: ThreadStore,
        retention: timedelta,
        now: Callable[[], datetime] = clock.utc_now,
    ) -> None:
        self._table = table
        self._threads = threads
        self._retention = retention
        self._now = now

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
            return self._threads.get(user_id, str(winner["thread_id"])), False
        return thread, True

    def _fresh_thread(self, user_id: str, thread_id: str, reuse_for: timedelta) -> Thread | None:
        now = self._now()
        attributes = updated_if_held(
            self._table,
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
        )
        if attributes is None:
            return None
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
            GSI1PK=table.sharded(table.ACTIVITY_PARTITION, thread.thread_id),
            GSI1SK=last_activity,
            expires_at=self._expiry(thread.last_activity),
        )
        return item

    def _expiry(self, last_activity: datetime) -> int:
        return record_expiry(last_activity, self._retention)
