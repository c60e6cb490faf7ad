"""A thread's queue of runs: where a run asked for while the thread is busy waits
(`if_busy=enqueue`, or `interrupt` at the front), to start when the thread frees, in order.

Items: PK `THREAD#{thread_id}`, SK `QUEUED#{rank}#{enqueued_at}#{run_id}` (rank 0 for a run that
interrupts, 1 for one that waits its turn), so a query reads them in the order they start. The
thread's record counts them (`queued_runs`) in the same transaction that adds or removes one:
the run lock is never taken over the queue's head (`RunLock.acquire_update`), and the queue
cannot grow past `MAX_QUEUED`.

Handing the thread on: whoever ends a run (FinishRun, FinishLostRuns, a start that failed)
calls `end_turn`, which releases the lock only if nothing is queued, and otherwise gives it to
the queue's head in one transaction with taking its item out: the thread is never free while
runs wait. The caller then starts that run (`RunLauncher.launch`, which claims the start so
that only one caller starts it). Both steps are idempotent: asked again after a failure,
`end_turn` hands over nothing twice and returns the run it handed the thread to while that
has not started.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from threadline import clock
from threadline.errors import NotFoundError, QueueFullError, ServiceUnavailableError
from threadline.runs.records import RunRecord, RunStore
from threadline.store import table
from threadline.store.dynamo import (
    is_conditional_failure,
    is_transaction_conflict,
    items_with_prefix,
    refused_items,
    transact_write,
)
from threadline.threads.records import Thread, ThreadStore
from threadline.threads.run_lock import RunLock

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
        lock: RunLock,
        lease: timedelta,
        now: Callable[[], datetime] = clock.utc_now,
    ) -> None:
        self._table = table
        self._threads = threads
        self._runs = runs
        self._lock = lock
        self._lease = lease
        self._now = now

    def enqueue(self, record: RunRecord, *, interrupting: bool = False) -> bool:
        """Record the run as queued on its busy thread; False if the thread is free (start the
        run instead). QueueFullError at `MAX_QUEUED`."""
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
                "AND attribute_exists(active_run_id) "
                "AND (attribute_not_exists(queued_runs) OR queued_runs < :max)"
            ),
            "ExpressionAttributeValues": {
                ":one": 1,
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

    def remove(self, record: RunRecord, finishing: dict[str, Any]) -> bool:
        """Take a queued run out of the queue, in one transaction with `finishing` (the update
        that records it cancelled); False if it had left the queue (handed the thread)."""
        item = self._item_of(record.thread_id, record.run_id)
        if item is None:
            return False
        try:
            transact_write(
                self._table,
                [
                    {"Delete": self._leaving(item)},
                    {"Update": self._uncount_update(record.user_id, record.thread_id)},
                    {"Update": finishing},
                ],
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False  # handed the thread meanwhile, or removed by another call
            raise
        return True

    def end_turn(
        self,
        user_id: str,
        thread_id: str,
        run_id: str,
        *,
        head_response_id: str | None = None,
    ) -> RunRecord | None:
        """End `run_id`'s turn on its thread: release the lock (moving the thread's head when
        given: a completed run), or hand it to the run queued next. The run handed the thread
        that has not started yet, if any: start it. ServiceUnavailableError if the queue kept
        changing (the caller retries)."""
        for _attempt in range(5):
            # Most threads have nothing queued: the conditional release is the only write, and
            # the thread is read only when it refuses (a queue, or not this run's lock).
            if self._lock.release(user_id, thread_id, run_id, head_response_id=head_response_id):
                return None
            try:
                thread = self._threads.get(user_id, thread_id)
            except NotFoundError:
                return None  # deleted meanwhile: nothing to hand on
            if thread.active_run_id != run_id:
                return self._not_started(thread)  # released or handed on before
            if thread.queued_runs <= 0:
                continue  # the queue emptied meanwhile: release again
            head = self._head(thread_id)
            if head is not None and self._hand_over(
                user_id, thread_id, run_id, head, head_response_id
            ):
                return self._runs.get(thread_id, str(head["run_id"]))
        raise ServiceUnavailableError(f"the queue of thread {thread_id} kept changing")

    def _not_started(self, thread: Thread) -> RunRecord | None:
        """The thread's active run if the queue handed it the thread and it has not started."""
        if thread.active_run_id is None:
            return None
        record = self._runs.get(thread.thread_id, thread.active_run_id)
        waiting = record.queued_at is not None and record.started_at is None
        return record if waiting and not record.status.is_terminal else None

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

    def _hand_over(
        self,
        user_id: str,
        thread_id: str,
        run_id: str,
        head: dict[str, Any],
        head_response_id: str | None,
    ) -> bool:
        """Give `run_id`'s lock to the queue's `head`, taking its item out of the queue."""
        now = self._now()
        lease_end = int((now + self._lease).timestamp())
        moved_head = "head_response_id = :head, " if head_response_id else ""
        try:
            transact_write(
                self._table,
                [
                    {"Delete": self._leaving(head)},
                    {
                        "Update": {
                            **self._uncount_update(user_id, thread_id),
                            "UpdateExpression": (
                                f"ADD queued_runs :minus_one SET {moved_head}"
                                "active_run_id = :next, lock_expires_at = :lease_end, "
                                "GSI2PK = :locked, GSI2SK = :lease_end, last_activity = :now, "
                                "GSI1SK = :now"
                            ),
                            "ConditionExpression": "active_run_id = :run",
                            "ExpressionAttributeValues": {
                                ":minus_one": -1,
                                ":run": run_id,
                                ":next": str(head["run_id"]),
                                ":lease_end": lease_end,
                                ":locked": table.sharded(table.LOCKED_PARTITION, thread_id),
                                ":now": clock.iso(now),
                                **({":head": head_response_id} if head_response_id else {}),
                            },
                        }
                    },
                ],
            )
        except ClientError as error:
            if is_conditional_failure(error) or is_transaction_conflict(error):
                return False
            raise
        return True

    def _leaving(self, item: dict[str, Any]) -> dict[str, Any]:
        """The delete of a queue item, refused if it has left the queue already."""
        return {
            "TableName": self._table.name,
            "Key": {"PK": item["PK"], "SK": item["SK"]},
            "ConditionExpression": "attribute_exists(PK)",
        }

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
