"""A thread's queue of runs: where a run asked for while the thread is busy waits
(`if_busy=enqueue`, or `interrupt` at the front), to start when the thread frees, in order.

Items: PK `THREAD#{thread_id}`, SK `QUEUED#{rank}#{enqueued_at}#{run_id}` (rank 0 for a run that
interrupts, 1 for one that waits its turn), so a query reads them in the order they start. The
thread's record counts them (`queued_runs`) in the same transaction that adds or removes one:
the run lock is never taken over the queue's head (`RunLock.acquire_update`), and the queue
cannot grow past `MAX_QUEUED`.

Handing the thread on: whoever ends a run (FinishRun, FinishLostRuns, a start that failed)
releases the lock and then calls `next_run`, which gives the lock to the queue's head in one
transaction with removing its item. The caller then starts that run's execution. Both steps
are idempotent, so a caller that fails in between and is retried finishes the job: a run
handed the lock but not started yet (`RunRecord.queued_at` set, no execution) is started by
the next `next_run` on the thread.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from threadline import clock
from threadline.errors import QueueFullError
from threadline.runs.records import RunRecord, RunStore
from threadline.store import table
from threadline.store.dynamo import (
    is_conditional_failure,
    items_with_prefix,
    refused_items,
    transact_write,
)
from threadline.threads.records import ThreadStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

MAX_QUEUED = 10
QUEUE_PREFIX = "QUEUED#"
INTERRUPTING, WAITING = "0", "1"


class RunQueue:
    def __init__(
        self,
        table: Table,
        *,
        threads: ThreadStore,
        runs: RunStore,
        lease: timedelta,
        now: Callable[[], datetime] = clock.utc_now,
    ) -> None:
        self._table = table
        self._threads = threads
        self._runs = runs
        self._lease = lease
        self._now = now

    def enqueue(self, record: RunRecord, *, interrupting: bool = False) -> bool:
        """Record the run as queued on its busy thread; False if the thread is free and its
        queue empty (start the run instead). QueueFullError at `MAX_QUEUED`."""
        now = self._now()
        record = record.model_copy(update={"queued_at": now})
        rank = INTERRUPTING if interrupting else WAITING
        try:
            transact_write(
                self._table,
                [
                    {"Update": self._count_update(record, now)},
                    {"Put": self._runs.new_item(record)},
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": {
                                "PK": table.thread_key(record.thread_id),
                                "SK": f"{QUEUE_PREFIX}{rank}#{clock.iso(now)}#{record.run_id}",
                                "run_id": record.run_id,
                                "user_id": record.user_id,
                            },
                        }
                    },
                ],
            )
        except ClientError as error:
            if 0 not in refused_items(error):
                raise
            thread = self._threads.get(record.user_id, record.thread_id)  # NotFoundError
            if thread.queued_runs >= MAX_QUEUED:
                raise QueueFullError(record.thread_id, MAX_QUEUED) from error
            return False
        return True

    def _count_update(self, record: RunRecord, now: datetime) -> dict[str, Any]:
        """One more queued run on the thread: only while it is busy and its queue not full."""
        return {
            "TableName": self._table.name,
            "Key": {
                "PK": table.user_key(record.user_id),
                "SK": table.thread_sort_key(record.thread_id),
            },
            "UpdateExpression": "ADD queued_runs :one SET last_activity = :now, GSI1SK = :now",
            "ConditionExpression": (
                "attribute_exists(PK) AND attribute_not_exists(purging_since) "
                "AND (attribute_exists(active_run_id) OR queued_runs > :zero) "
                "AND (attribute_not_exists(queued_runs) OR queued_runs < :max)"
            ),
            "ExpressionAttributeValues": {
                ":one": 1,
                ":zero": 0,
                ":max": MAX_QUEUED,
                ":now": clock.iso(now),
            },
        }

    def queued(self, thread_id: str) -> list[str]:
        """The thread's queued run ids, in the order they will start."""
        items = items_with_prefix(
            self._table, table.thread_key(thread_id), QUEUE_PREFIX, projection="run_id"
        )
        return [str(item["run_id"]) for item in items]

    def position(self, record: RunRecord) -> int | None:
        """Where a queued run stands (1: next), None once it has left the queue."""
        if record.queued_at is None or record.status.is_terminal or record.execution_arn:
            return None
        queued = self.queued(record.thread_id)
        return queued.index(record.run_id) + 1 if record.run_id in queued else None

    def remove(self, record: RunRecord) -> bool:
        """Take a run out of the queue (it is cancelled); False if it had left it."""
        item = self._item_of(record.thread_id, record.run_id)
        if item is None:
            return False
        try:
            transact_write(
                self._table,
                [
                    {
                        "Delete": {
                            "TableName": self._table.name,
                            "Key": {"PK": item["PK"], "SK": item["SK"]},
                            "ConditionExpression": "attribute_exists(PK)",
                        }
                    },
                    {"Update": self._uncount_update(record.user_id, record.thread_id)},
                ],
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False  # handed the thread meanwhile, or removed by another call
            raise
        return True

    def next_run(self, user_id: str, thread_id: str) -> RunRecord | None:
        """The queued run to start now on a thread its last run released: the queue's head,
        handed the lock here, or one handed it before and not started yet. None if the
        thread is busy with a started run, or has nothing queued."""
        for _attempt in range(3):
            thread = self._threads.get(user_id, thread_id)
            if thread.active_run_id is not None:
                record = self._runs.get(thread_id, thread.active_run_id)
                handed_on = record.queued_at is not None and record.execution_arn is None
                return record if handed_on and not record.status.is_terminal else None
            if thread.queued_runs <= 0:
                return None
            head = self._head(thread_id)
            if head is not None and self._hand_over(user_id, thread_id, head):
                return self._runs.get(thread_id, str(head["run_id"]))
        return None  # the queue kept changing under us: the caller's retry looks again

    def _head(self, thread_id: str) -> dict[str, Any] | None:
        page = self._table.query(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={
                ":pk": table.thread_key(thread_id),
                ":prefix": QUEUE_PREFIX,
            },
            ConsistentRead=True,
            Limit=1,
        )
        return page["Items"][0] if page["Items"] else None

    def _hand_over(self, user_id: str, thread_id: str, head: dict[str, Any]) -> bool:
        now = self._now()
        lease_end = int((now + self._lease).timestamp())
        try:
            transact_write(
                self._table,
                [
                    {
                        "Delete": {
                            "TableName": self._table.name,
                            "Key": {"PK": head["PK"], "SK": head["SK"]},
                            "ConditionExpression": "attribute_exists(PK)",
                        }
                    },
                    {
                        "Update": {
                            **self._uncount_update(user_id, thread_id),
                            "UpdateExpression": (
                                "ADD queued_runs :minus_one SET active_run_id = :run, "
                                "lock_expires_at = :lease_end, GSI2PK = :locked, "
                                "GSI2SK = :lease_end, last_activity = :now, GSI1SK = :now"
                            ),
                            "ConditionExpression": (
                                "attribute_exists(PK) AND attribute_not_exists(purging_since) "
                                "AND attribute_not_exists(active_run_id)"
                            ),
                            "ExpressionAttributeValues": {
                                ":minus_one": -1,
                                ":run": str(head["run_id"]),
                                ":lease_end": lease_end,
                                ":locked": table.LOCKED_PARTITION,
                                ":now": clock.iso(now),
                            },
                        }
                    },
                ],
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    def _uncount_update(self, user_id: str, thread_id: str) -> dict[str, Any]:
        return {
            "TableName": self._table.name,
            "Key": {"PK": table.user_key(user_id), "SK": table.thread_sort_key(thread_id)},
            "UpdateExpression": "ADD queued_runs :minus_one",
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeValues": {":minus_one": -1},
        }

    def _item_of(self, thread_id: str, run_id: str) -> dict[str, Any] | None:
        items = items_with_prefix(self._table, table.thread_key(thread_id), QUEUE_PREFIX)
        return next((item for item in items if item["run_id"] == run_id), None)
