"""One run of a scheduled job at a time, across execution environments.

A job's lease is one item (PK `JOB#{job}`, SK `LEASE`): an invocation takes it for the time
it has left, with a condition that no other invocation holds it, and gives it back when done.
A holder that dies keeps it only until its time would have run out. (A reserved concurrency
of 1 would do the same, but fails to deploy on accounts whose concurrency quota is 10.) The
jobs stay safe to overlap without it - each claims what it handles with a conditional write -
the lease only spares the second run's work.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from threadline import clock
from threadline.store.dynamo import condition_held

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb.service_resource import Table

logger = logging.getLogger(__name__)
Handler = Callable[[Any, "LambdaContext"], Any]

# A lease item outlives any holder (Lambda's 15 minutes), then expires.
LEASE_RETENTION = timedelta(days=1)


class JobLease:
    def __init__(self, table: Table, *, now: Callable[[], datetime] = clock.utc_now) -> None:
        self._table = table
        self._now = now

    @contextmanager
    def held(self, job: str, holder: str, *, for_ms: int) -> Iterator[bool]:
        """Hold the job's lease for `for_ms` (the invocation's time left) while the context
        lasts; whether it was taken (False: another invocation holds it)."""
        now = self._now()
        taken = condition_held(
            self._table.put_item,
            Item={
                **self._key(job),
                "holder": holder,
                "held_until": int((now + timedelta(milliseconds=for_ms)).timestamp()),
                "expires_at": int((now + LEASE_RETENTION).timestamp()),
            },
            ConditionExpression="attribute_not_exists(PK) OR held_until < :now OR holder = :me",
            ExpressionAttributeValues={":now": int(now.timestamp()), ":me": holder},
        )
        try:
            yield taken
        finally:
            if taken:
                condition_held(
                    self._table.delete_item,
                    Key=self._key(job),
                    ConditionExpression="holder = :me",
                    ExpressionAttributeValues={":me": holder},
                )

    def _key(self, job: str) -> dict[str, str]:
        return {"PK": f"JOB#{job}", "SK": "LEASE"}


def one_at_a_time(job: str, lease: Callable[[], JobLease]) -> Callable[[Handler], Handler]:
    """A scheduled job's handler, run by one invocation at a time: another one that comes
    meanwhile (a retried or early schedule, a hand-fired run) does nothing."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def single(event: Any, context: LambdaContext) -> Any:
            time_left = context.get_remaining_time_in_millis()
            with lease().held(job, context.aws_request_id, for_ms=time_left) as held:
                if held:
                    return handler(event, context)
            logger.info("another invocation is running the job", extra={"job": job})
            return {"skipped": f"another {job} is running"}

        return single

    return decorate
