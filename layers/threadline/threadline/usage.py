"""The per-user usage ledger: atomic counters per user per UTC day, and the daily budget."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from threadline import clock
from threadline.errors import BudgetExceededError
from threadline.models import Usage
from threadline.store import table
from threadline.store.dynamo import (
    condition_held,
    delete_by_prefix,
    items_with_prefix,
    refused_items,
    transact_write,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

LEDGER_RETENTION = timedelta(days=400)
# The remote objects counted in a run's finishing transaction (100 items less the two updates).
MAX_COUNTED_WITH_RUN = 98


class DailyUsage(BaseModel):
    day: str
    runs: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


def day_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def budget_resets_at(day: str) -> datetime:
    """When the daily token budget of `day` (a `day_of`) resets: the next UTC midnight."""
    return datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(), tzinfo=UTC)


class UsageLedger:
    def __init__(self, table: Table, *, now: Callable[[], datetime] = clock.utc_now) -> None:
        self._table = table
        self._now = now

    def count_once(
        self, user_id: str, thread_id: str, remote_id: str, usage: Usage, at: datetime
    ) -> bool:
        """Add the tokens of one settled remote object (a response, an Assistants run) to the
        user's day, once whoever asks and however often; False if they were already counted.

        The thread's REMOTE# item records it, so deleting the thread deletes the object too,
        even one whose create reply was lost and that only the webhook made known.
        """
        return condition_held(
            self._table.meta.client.transact_write_items,
            TransactItems=[
                {"Put": self._counted(user_id, thread_id, remote_id, usage, at)},
                {"Update": self._add_to_day(user_id, at, usage)},
            ],
        )

    def count_finished_run(
        self,
        finishing: dict[str, Any],
        user_id: str,
        thread_id: str,
        settled: dict[str, Usage],
        at: datetime,
    ) -> bool:
        """Count a run as it finishes, in one transaction: `finishing` (the update that records
        its outcome, once), one more run on the user's day, and the tokens of each of its
        settled remote objects (by id) that nobody counted yet. One a webhook counted first is
        left out and the rest tried again. False if `finishing`'s condition failed: the run
        had finished before, and all of this was written then."""
        uncounted = dict(settled)
        # A transaction takes 100 items: the objects of very long runs go one by one first.
        for remote_id in list(uncounted)[: max(0, len(uncounted) - MAX_COUNTED_WITH_RUN)]:
            self.count_once(user_id, thread_id, remote_id, uncounted.pop(remote_id), at)
        while True:
            remote_ids = list(uncounted)
            tokens = sum(uncounted.values(), Usage())
            try:
                transact_write(
                    self._table,
                    [
                        {"Update": finishing},
                        {"Update": self._add_to_day(user_id, at, tokens, runs=1)},
                        *(
                            {"Put": self._counted(user_id, thread_id, remote_id, usage, at)}
                            for remote_id, usage in uncounted.items()
                        ),
                    ],
                )
            except ClientError as error:
                refused = refused_items(error)
                if not refused:
                    raise
                if 0 in refused:
                    return False
                for index in refused:
                    del uncounted[remote_ids[index - 2]]
                continue
            return True

    def _counted(
        self, user_id: str, thread_id: str, remote_id: str, usage: Usage, at: datetime
    ) -> dict[str, Any]:
        """The put of an object's counted marker, refused if it was counted before."""
        return {
            "TableName": self._table.name,
            "Item": {
                "PK": table.thread_key(thread_id),
                "SK": table.remote_sort_key(remote_id),
                "remote_id": remote_id,
                "user_id": user_id,
                "counted_at": clock.iso(at),
                **usage.model_dump(),
            },
            "ConditionExpression": "attribute_not_exists(PK)",
        }

    def _add_to_day(
        self, user_id: str, at: datetime, usage: Usage, *, runs: int = 0
    ) -> dict[str, Any]:
        """The atomic ADD of tokens (and finished runs) to the user's day."""
        return {
            "TableName": self._table.name,
            "Key": {"PK": table.user_key(user_id), "SK": table.usage_sort_key(day_of(at))},
            "UpdateExpression": (
                "ADD runs :runs, input_tokens :input, output_tokens :output, "
                "total_tokens :total SET expires_at = if_not_exists(expires_at, :exp)"
            ),
            "ExpressionAttributeValues": {
                ":runs": runs,
                ":input": usage.input_tokens,
                ":output": usage.output_tokens,
                ":total": usage.total_tokens,
                ":exp": int((at + LEDGER_RETENTION).timestamp()),
            },
        }

    def count_each(
        self, user_id: str, thread_id: str, usage_by_remote_id: dict[str, Usage], at: datetime
    ) -> None:
        """`count_once` for each settled remote object."""
        for remote_id, usage in usage_by_remote_id.items():
            self.count_once(user_id, thread_id, remote_id, usage, at)

    def count_uncounted(
        self, user_id: str, thread_id: str, usage_by_remote_id: dict[str, Usage], at: datetime
    ) -> None:
        """`count_each` for the objects not counted yet: one read instead of a refused write
        for each counted one (a thread's earlier runs are looked at again and again)."""
        if not usage_by_remote_id:
            return
        counted = set(self.counted_objects(thread_id))
        self.count_each(
            user_id,
            thread_id,
            {key: usage for key, usage in usage_by_remote_id.items() if key not in counted},
            at,
        )

    def counted_objects(self, thread_id: str) -> list[str]:
        """The remote objects counted for the thread (see `count_once`)."""
        items = items_with_prefix(
            self._table,
            table.thread_key(thread_id),
            table.remote_sort_key(""),
            projection="remote_id",
        )
        return [str(item["remote_id"]) for item in items]

    def forget_counted_objects(self, thread_id: str) -> int:
        return delete_by_prefix(self._table, table.thread_key(thread_id), table.remote_sort_key(""))

    def recent(self, user_id: str, *, days: int) -> list[DailyUsage]:
        """The last `days` days (today included), newest first; days without runs omitted."""
        today = self._now()
        first = day_of(today - timedelta(days=days - 1))
        items = self._table.query(
            KeyConditionExpression="PK = :pk AND SK BETWEEN :first AND :last",
            ExpressionAttributeValues={
                ":pk": table.user_key(user_id),
                ":first": table.usage_sort_key(first),
                ":last": table.usage_sort_key(day_of(today)),
            },
            ScanIndexForward=False,
        )["Items"]
        return [
            DailyUsage.model_validate({**item, "day": str(item["SK"]).removeprefix("USAGE#")})
            for item in items
        ]

    def today(self, user_id: str) -> DailyUsage:
        today = day_of(self._now())
        item = self._table.get_item(
            Key={"PK": table.user_key(user_id), "SK": table.usage_sort_key(today)}
        ).get("Item")
        return DailyUsage.model_validate({**(item or {}), "day": today})

    def check_budget(self, user_id: str, daily_token_budget: int) -> None:
        """BudgetExceededError once today's tokens reach the budget (0: no budget)."""
        if daily_token_budget <= 0:
            return
        today = self.today(user_id)
        if today.total_tokens >= daily_token_budget:
            raise BudgetExceededError(
                used=today.total_tokens,
                budget=daily_token_budget,
                reset_at=budget_resets_at(today.day),
            )

    def summary(self, user_id: str, *, daily_token_budget: int, days: int = 30) -> UsageSummary:
        """Today's usage against the daily budget (0: no budget), and the last `days` days."""
        today = self.today(user_id)
        budget = daily_token_budget or None
        return UsageSummary(
            today=today,
            daily_token_budget=budget,
            remaining_tokens=max(budget - today.total_tokens, 0) if budget else None,
            resets_at=budget_resets_at(today.day),
            recent_days=self.recent(user_id, days=days),
        )


class UsageSummary(BaseModel):
    today: DailyUsage
    daily_token_budget: int | None  # None: no budget
    remaining_tokens: int | None
    resets_at: datetime
    recent_days: list[DailyUsage]
