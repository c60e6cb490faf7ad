"""Each watched run's updates, numbered and kept for a day, and who is subscribed to it.

| item         | PK              | SK                | notes                                  |
|--------------|-----------------|-------------------|----------------------------------------|
| update       | STREAM#{run_id} | SEQ#{seq:010d}    | the message; text: its response and    |
|              |                 |                   | the last OpenAI event number it holds  |
| change seen  | STREAM#{run_id} | CHANGE#{key}      | written with the updates of one table  |
|              |                 |                   | change, so a retried change adds none  |
| subscription | STREAM#{run_id} | CONN#{connection} | a connection that subscribed           |
| text relay   | STREAM#{run_id} | RELAY             | who relays the run's text, until when  |
| closed       | STREAM#{run_id} | CLOSED            | written with the run's final view      |

Numbering: an update takes the number after the last stored, with a put on the condition that
no update has it; a writer that loses the number to another (the text relay and PushUpdates
write one run's updates) reads the last again and takes the next. So numbers have no gaps and
name one update each. A piece of text is stored only while its relay holds the lease and the
run's final view is not stored (so the view is the last update, and two relays never store
the same text). Every item expires 31 days after it is written (the table's TTL): longer than
a run can wait for a person (ApprovalTimeoutSeconds, at most 30 days).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from threadline import clock
from threadline.store.dynamo import (
    condition_held,
    is_transaction_conflict,
    items_with_prefix,
    query_all,
    refused_items,
    transact_write,
)
from threadline.streams.messages import UPDATE, RunFinished, TextDelta, Update

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

KEPT_FOR = timedelta(days=31)
# API Gateway closes a WebSocket connection after two hours.
SUBSCRIPTION_LASTS = timedelta(hours=2)
RELAY_LEASE = timedelta(seconds=30)
LAST_SEQ = 10**10 - 1  # the sort key holds ten digits
_ATTEMPTS = 50  # numbers lost to other writers in a row before giving up (it does not happen)


def stream_key(run_id: str) -> str:
    return f"STREAM#{run_id}"


def _seq_key(seq: int) -> str:
    return f"SEQ#{seq:010d}"


class UpdateLog:
    def __init__(self, table: Table, *, now: Callable[[], datetime] = clock.utc_now) -> None:
        self._table = table
        self._now = now

    def last_seq(self, run_id: str) -> int:
        page = self._table.query(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={":pk": stream_key(run_id), ":prefix": "SEQ#"},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
            ProjectionExpression="SK",
        )
        items = page["Items"]
        return int(str(items[0]["SK"]).removeprefix("SEQ#")) if items else 0

    def after(self, run_id: str, after: int, *, through: int = LAST_SEQ) -> list[Update]:
        """The run's updates numbered above `after` (up to `through`), in order."""
        items = query_all(
            self._table,
            {
                "KeyConditionExpression": "PK = :pk AND SK BETWEEN :first AND :last",
                "ExpressionAttributeValues": {
                    ":pk": stream_key(run_id),
                    ":first": _seq_key(after + 1),
                    ":last": _seq_key(through),
                },
                "ConsistentRead": True,
            },
        )
        return [UPDATE.validate_json(str(item["message"])) for item in items]

    def append(self, run_id: str, updates: Sequence[Update], *, change: str) -> list[Update]:
        """Store the updates one table change made, numbered in order, once: for a change
        stored already, the updates as stored then (so a retried change posts them again,
        and a client that has them drops them by number)."""
        if not updates:
            return []
        first = self.last_seq(run_id) + 1
        for _ in range(_ATTEMPTS):
            numbered = [
                update.model_copy(update={"seq": first + n}) for n, update in enumerate(updates)
            ]
            change_item = {
                "PK": stream_key(run_id),
                "SK": f"CHANGE#{change}",
                "first": first,
                "count": len(numbered),
                **self._expiry(),
            }
            closing = [
                self._put({"PK": stream_key(run_id), "SK": "CLOSED", **self._expiry()})
                for update in numbered
                if isinstance(update, RunFinished)
            ]
            try:
                transact_write(
                    self._table,
                    [
                        self._put(change_item),
                        *(self._put(self._item(update)) for update in numbered),
                        *closing,
                    ],
                )
            except ClientError as error:
                refused = refused_items(error)
                if 0 in refused:
                    return self._stored_change(run_id, change)
                if not refused and not is_transaction_conflict(error):
                    raise
                first = self.last_seq(run_id) + 1
                continue
            return numbered
        raise RuntimeError(f"no free update number for run {run_id}")

    def _stored_change(self, run_id: str, change: str) -> list[Update]:
        item = self._table.get_item(
            Key={"PK": stream_key(run_id), "SK": f"CHANGE#{change}"}, ConsistentRead=True
        )["Item"]
        first, count = int(item["first"]), int(item["count"])  # type: ignore[arg-type]
        return self.after(run_id, first - 1, through=first + count - 1)

    def append_text(self, delta: TextDelta, *, through: int, lease: str) -> TextDelta | None:
        """Store a piece of the answer, by the relay holding the lease `lease`: `through` is
        the last OpenAI event it holds, where a relay that takes over continues from. None
        (nothing stored) once the lease is another relay's or the run's final view is stored.
        """
        run_key = stream_key(delta.run_id)
        seq = self.last_seq(delta.run_id) + 1
        for _ in range(_ATTEMPTS):
            numbered = delta.model_copy(update={"seq": seq})
            item = {**self._item(numbered), "response_id": delta.response_id, "through": through}
            try:
                transact_write(
                    self._table,
                    [
                        self._put(item),
                        self._check(run_key, "RELAY", "holder = :token", {":token": lease}),
                        self._check(run_key, "CLOSED", "attribute_not_exists(PK)", None),
                    ],
                )
            except ClientError as error:
                refused = refused_items(error)
                if refused & {1, 2}:
                    return None
                if not refused and not is_transaction_conflict(error):
                    raise
                seq = self.last_seq(delta.run_id) + 1
                continue
            return numbered
        raise RuntimeError(f"no free update number for run {delta.run_id}")

    def _check(
        self, partition: str, sort: str, condition: str, values: dict[str, str] | None
    ) -> dict[str, Any]:
        check: dict[str, Any] = {
            "TableName": self._table.name,
            "Key": {"PK": partition, "SK": sort},
            "ConditionExpression": condition,
        }
        if values:
            check["ExpressionAttributeValues"] = values
        return {"ConditionCheck": check}

    def text_through(self, run_id: str, response_id: str) -> int | None:
        """The last OpenAI event number of the response's text stored so far, if any."""
        relayed = [
            int(item["through"])
            for item in items_with_prefix(
                self._table, stream_key(run_id), "SEQ#", projection="response_id, through"
            )
            if item.get("response_id") == response_id
        ]
        return max(relayed, default=None)

    def _item(self, update: Update) -> dict[str, Any]:
        return {
            "PK": stream_key(update.run_id),
            "SK": _seq_key(update.seq),
            "message": update.model_dump_json(),
            **self._expiry(),
        }

    def _put(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table.name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }

    def _expiry(self) -> dict[str, int]:
        return {"expires_at": int((self._now() + KEPT_FOR).timestamp())}


class Subscriptions:
    """The connections subscribed to a run. A connection that closed is forgotten when a post
    to it finds it gone; API Gateway closes every connection after two hours."""

    def __init__(self, table: Table, *, now: Callable[[], datetime] = clock.utc_now) -> None:
        self._table = table
        self._now = now

    def add(self, run_id: str, connection_id: str) -> None:
        self._table.put_item(
            Item={
                "PK": stream_key(run_id),
                "SK": f"CONN#{connection_id}",
                "expires_at": int((self._now() + SUBSCRIPTION_LASTS).timestamp()),
            }
        )

    def of(self, run_id: str) -> list[str]:
        now = int(self._now().timestamp())
        return [
            str(item["SK"]).removeprefix("CONN#")
            for item in items_with_prefix(self._table, stream_key(run_id), "CONN#")
            if int(item["expires_at"]) > now  # TTL deletes late; an expired one is closed
        ]

    def remove(self, run_id: str, connection_id: str) -> None:
        self._table.delete_item(Key={"PK": stream_key(run_id), "SK": f"CONN#{connection_id}"})


class RelayLease:
    """One text relay per run at a time: a relay holds the lease while it works and renews
    it; a relay for a newer response takes it over (the older one stops at its next renewal);
    a relay that died loses it when it lapses."""

    def __init__(self, table: Table, *, now: Callable[[], datetime] = clock.utc_now) -> None:
        self._table = table
        self._now = now

    def claim(self, run_id: str, response_id: str) -> str | None:
        """A token for the lease, or None while another relay holds it for this response."""
        token = secrets.token_hex(8)
        claimed = condition_held(
            self._table.put_item,
            Item=self._lease(run_id, response_id, token),
            ConditionExpression=(
                "attribute_not_exists(PK) OR lease_until < :now OR response_id <> :response"
            ),
            ExpressionAttributeValues={
                ":now": int(self._now().timestamp()),
                ":response": response_id,
            },
        )
        return token if claimed else None

    def renew(self, run_id: str, response_id: str, token: str) -> bool:
        return condition_held(
            self._table.put_item,
            Item=self._lease(run_id, response_id, token),
            ConditionExpression="holder = :token",
            ExpressionAttributeValues={":token": token},
        )

    def release(self, run_id: str, token: str) -> None:
        condition_held(
            self._table.delete_item,
            Key={"PK": stream_key(run_id), "SK": "RELAY"},
            ConditionExpression="holder = :token",
            ExpressionAttributeValues={":token": token},
        )

    def _lease(self, run_id: str, response_id: str, token: str) -> dict[str, Any]:
        until = self._now() + RELAY_LEASE
        return {
            "PK": stream_key(run_id),
            "SK": "RELAY",
            "response_id": response_id,
            "holder": token,
            "lease_until": int(until.timestamp()),
            "expires_at": int((until + KEPT_FOR).timestamp()),
        }
