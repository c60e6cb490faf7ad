"""Small conversions between pydantic/JSON values and what the DynamoDB resource accepts."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError


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
