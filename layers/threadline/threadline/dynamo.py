"""Small conversions between pydantic/JSON values and what the DynamoDB resource accepts."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table


def to_item(value: Any) -> Any:
    """JSON-shaped data with floats as Decimal (the resource API refuses float)."""
    return json.loads(json.dumps(value, default=str), parse_float=Decimal)


def is_conditional_failure(error: ClientError) -> bool:
    code = error.response["Error"]["Code"]
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons", [])
        return any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons)
    return False


def query_page(
    table: Table, query: dict[str, Any], start_key: dict[str, str] | None
) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
    """One page of a query: its items and the key to continue from (None at the end)."""
    page = table.query(**query, **({"ExclusiveStartKey": start_key} if start_key else {}))
    return page["Items"], page.get("LastEvaluatedKey")
