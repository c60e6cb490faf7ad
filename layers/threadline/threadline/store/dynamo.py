"""Small conversions between pydantic/JSON values and what the DynamoDB resource accepts."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_dynamodb.type_defs import (
        QueryInputTableQueryTypeDef,
        TableAttributeValueTypeDef,
    )


def to_item(value: Any) -> Any:
    """JSON-shaped data with floats as Decimal (the resource API refuses float)."""
    return json.loads(json.dumps(value, default=str), parse_float=Decimal)


def is_conditional_failure(error: ClientError) -> bool:
    code = error.response["Error"]["Code"]
    return code == "ConditionalCheckFailedException" or bool(refused_items(error))


def is_transaction_conflict(error: ClientError) -> bool:
    """A transaction cancelled because another request was changing one of its items."""
    return "TransactionConflict" in _cancellation_codes(error)


def refused_items(error: ClientError) -> set[int]:
    """The indexes of a cancelled transaction's items whose condition failed."""
    codes = _cancellation_codes(error)
    return {index for index, code in enumerate(codes) if code == "ConditionalCheckFailed"}


def _cancellation_codes(error: ClientError) -> list[str | None]:
    """Each item's reason code of a cancelled transaction (none for any other error)."""
    if error.response["Error"]["Code"] != "TransactionCanceledException":
        return []
    return [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]


def transact_write(table: Table, items: list[dict[str, Any]]) -> None:
    """TransactWriteItems on the table's client, whose resource injects the conversion of
    native values (its TypedDicts describe the low-level form only)."""
    write: Callable[..., object] = table.meta.client.transact_write_items
    write(TransactItems=items)


def updated_if_held(table: Table, **request: Any) -> dict[str, Any] | None:
    """Make a conditional update; the item after it, or None when its condition did not hold."""
    try:
        return table.update_item(**request, ReturnValues="ALL_NEW")["Attributes"]
    except ClientError as error:
        if is_conditional_failure(error):
            return None
        raise


def condition_held(write: Callable[..., object], **request: Any) -> bool:
    """Make a conditional write; False (not an error) when its condition did not hold."""
    try:
        write(**request)
    except ClientError as error:
        if is_conditional_failure(error):
            return False
        raise
    return True


def query_page(
    table: Table, query: QueryInputTableQueryTypeDef, start_key: dict[str, str] | None
) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
    """One page of a query: its items and the key to continue from (None at the end)."""
    page = table.query(**({**query, "ExclusiveStartKey": start_key} if start_key else query))
    return page["Items"], _string_key(page.get("LastEvaluatedKey"))


def query_shards(
    table: Table,
    query: QueryInputTableQueryTypeDef,
    partitions: Sequence[str],
    *,
    index_keys: tuple[str, str],
    limit: int,
    start_key: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
    """Up to `limit` items of an index query run on each partition in turn (its key condition
    names the partition `:pk`), from `start_key`; and the index key of the last item to go on
    after, None once every partition is done. `index_keys`: the index's partition and sort
    key attributes."""
    partition_key, sort_key = index_keys
    first = partitions.index(start_key[partition_key]) if start_key else 0
    items: list[dict[str, Any]] = []
    for partition in partitions[first:]:
        values = {**query.get("ExpressionAttributeValues", {}), ":pk": partition}
        key = start_key if start_key and start_key[partition_key] == partition else None
        while len(items) < limit:
            shard_query: QueryInputTableQueryTypeDef = {
                **query,
                "ExpressionAttributeValues": values,
                "Limit": limit - len(items),
            }
            page, key = query_page(table, shard_query, key)
            items.extend(page)
            if key is None:
                break
        if len(items) >= limit:
            last = items[-1]
            return items, {name: str(last[name]) for name in (partition_key, sort_key, "PK", "SK")}
    return items, None


def _string_key(key: Mapping[str, TableAttributeValueTypeDef] | None) -> dict[str, str] | None:
    """A key of the table (or its index), whose key attributes are all strings."""
    return None if key is None else {name: str(value) for name, value in key.items()}


def query_all(table: Table, query: QueryInputTableQueryTypeDef) -> list[dict[str, Any]]:
    """Every item a query matches, following its pages."""
    items: list[dict[str, Any]] = []
    start_key = None
    while True:
        page, start_key = query_page(table, query, start_key)
        items.extend(page)
        if start_key is None:
            return items


def items_with_prefix(
    table: Table, partition_key: str, sort_key_prefix: str, *, projection: str | None = None
) -> list[dict[str, Any]]:
    """Every item of a partition whose sort key has the prefix (consistent read)."""
    query: QueryInputTableQueryTypeDef = {
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
        "ExpressionAttributeValues": {":pk": partition_key, ":prefix": sort_key_prefix},
        "ConsistentRead": True,
    }
    if projection:
        query["ProjectionExpression"] = projection
    return query_all(table, query)


def delete_by_prefix(table: Table, partition_key: str, sort_key_prefix: str) -> int:
    """Delete every item of a partition whose sort key has the prefix; return how many."""
    found = items_with_prefix(table, partition_key, sort_key_prefix, projection="PK, SK")
    with table.batch_writer() as batch:
        for key in found:
            batch.delete_item(Key={"PK": key["PK"], "SK": key["SK"]})
    return len(found)
