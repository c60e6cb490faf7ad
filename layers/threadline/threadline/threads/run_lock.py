"""The run lock: at most one run at a time on a thread, held on the thread's record.

A run takes the lock with a lease that outlives its deadline, so a crashed execution cannot
hold a thread forever, and releases it when it finishes (moving the thread's head to the run's
last remote response when it completed). A thread being purged cannot be locked.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from threadline import clock
from threadline.errors import ThreadBusyError
from threadline.store import table
from threadline.store.dynamo import condition_held, is_conditional_failure
from threadline.threads.records import ThreadStore, record_expiry

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

# The run lock outlives the run's deadline by this much, so only a crashed execution loses it.
LOCK_LEASE_MARGIN = timedelta(minutes=15)


def run_lock_lease(run_timeout_seconds: int) -> timedelta:
    """How long a run holds its thread's lock: the deployment's run timeout and the margin."""
    return timedelta(seconds=run_timeout_seconds) + LOCK_LEASE_MARGIN


class RunLock:
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

    def acquire_update(
        self, user_id: str, thread_id: str, run_id: str, lease: timedelta
    ) -> dict[str, Any]:
        """The conditional update that takes the run lock, for use alone or in a transaction.

        Taken if already held by this run (retries are harmless), or if free with no run
        queued (a queued run is handed the lock by `RunQueue.next_run`, in order). A lock
        whose lease has passed is not taken over: its run's execution was lost, and
        FinishLostRuns finishes that run and frees the thread within minutes
        (`threadline.runs.lost`); a takeover would leave the run unfinished for ever.
        """
        now = self._now()
        return {
            "TableName": self._table.name,
            "Key": {"PK": table.user_key(user_id), "SK": table.thread_sort_key(thread_id)},
            "UpdateExpression": (
                "SET active_run_id = :run, lock_expires_at = :lease_end, "
                "GSI2PK = :locked, GSI2SK = :lease_end, last_activity = :now, GSI1SK = :now"
            ),
            "ConditionExpression": (
                "attribute_exists(PK) AND attribute_not_exists(purging_since) AND "
                "(active_run_id = :run OR (attribute_not_exists(active_run_id) AND "
                "(attribute_not_exists(queued_runs) OR queued_runs <= :zero)))"
            ),
            "ExpressionAttributeValues": {
                ":run": run_id,
                ":zero": 0,
                ":locked": table.sharded(table.LOCKED_PARTITION, thread_id),
                ":lease_end": int((now + lease).timestamp()),
                ":now": clock.iso(now),
            },
        }

    def acquire(self, user_id: str, thread_id: str, run_id: str, *, lease: timedelta) -> None:
        try:
            self._table.meta.client.update_item(
                **self.acquire_update(user_id, thread_id, run_id, lease)
            )
        except ClientError as error:
            if is_conditional_failure(error):
                self.raise_conflict(user_id, thread_id)
            raise

    def extend(self, user_id: str, thread_id: str, run_id: str, *, lease: timedelta) -> bool:
        """Hold the lock `lease` from now (a run waiting for a person outlives its first
        lease); False if this run does not hold it."""
        lease_end = int((self._now() + lease).timestamp())
        return condition_held(
            self._table.update_item,
            Key={"PK": table.user_key(user_id), "SK": table.thread_sort_key(thread_id)},
            UpdateExpression="SET lock_expires_at = :lease_end, GSI2SK = :lease_end",
            ConditionExpression="active_run_id = :run",
            ExpressionAttributeValues={":run": run_id, ":lease_end": lease_end},
        )

    def raise_conflict(self, user_id: str, thread_id: str) -> None:
        """Explain a failed lock condition: the thread is gone (or being deleted), or another
        run holds it."""
        thread = self._threads.get(user_id, thread_id)
        raise ThreadBusyError(thread_id, thread.active_run_id)

    def release(
        self, user_id: str, thread_id: str, run_id: str, *, head_response_id: str | None = None
    ) -> bool:
        """Release the lock if this run holds it and no run is queued for the thread (then
        `RunQueue.end_turn` hands it on instead), moving the thread's head to the run's last
        remote response when given (a completed run); False if not released."""
        now = self._now()
        head = "head_response_id = :head, " if head_response_id else ""
        return condition_held(
            self._table.update_item,
            Key={"PK": table.user_key(user_id), "SK": table.thread_sort_key(thread_id)},
            UpdateExpression=(
                "REMOVE active_run_id, lock_expires_at, GSI2PK, GSI2SK "
                f"SET {head}last_activity = :now, GSI1SK = :now, expires_at = :exp"
            ),
            ConditionExpression=(
                "active_run_id = :run AND "
                "(attribute_not_exists(queued_runs) OR queued_runs <= :zero)"
            ),
            ExpressionAttributeValues={
                ":run": run_id,
                ":zero": 0,
                ":now": clock.iso(now),
                ":exp": record_expiry(now, self._retention),
                **({":head": head_response_id} if head_response_id else {}),
            },
        )
