"""The one price table the cost model uses: AWS list prices, us-east-1, read 2026-11.

Sources, as published for us-east-1: https://aws.amazon.com/step-functions/pricing/ (Standard
per state transition; Express per request and per GB-second, billed in 100 ms and 64 MB
steps), https://aws.amazon.com/lambda/pricing/ (arm64), https://aws.amazon.com/dynamodb/pricing/
on-demand/, https://aws.amazon.com/eventbridge/pricing/ (custom events),
https://aws.amazon.com/api-gateway/pricing/ (WebSocket APIs: messages in 32 KB steps, and
connection minutes). Free tiers are left
out: the model prices usage beyond them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class PriceTable:
    region: str
    read_on: str
    step_functions_standard_per_transition: float
    step_functions_express_per_request: float
    step_functions_express_per_gb_second: float  # 100 ms steps, 64 MB steps of memory
    lambda_per_request: float
    lambda_per_gb_second: dict[str, float]  # by architecture, as template.yaml names it
    dynamodb_per_write_unit: float  # on-demand
    dynamodb_per_read_unit: float  # on-demand
    eventbridge_per_event: float  # custom events put, each 64 KB chunk one event
    websocket_per_message: float  # API Gateway WebSocket APIs, each 32 KB one message
    websocket_per_connection_minute: float

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


PRICES = PriceTable(
    region="us-east-1",
    read_on="2026-11",
    step_functions_standard_per_transition=0.025 / 1_000,
    step_functions_express_per_request=1.00 / 1_000_000,
    step_functions_express_per_gb_second=0.00001667,
    lambda_per_request=0.20 / 1_000_000,
    lambda_per_gb_second={"arm64": 0.0000133334, "x86_64": 0.0000166667},
    dynamodb_per_write_unit=0.625 / 1_000_000,
    dynamodb_per_read_unit=0.125 / 1_000_000,
    eventbridge_per_event=1.00 / 1_000_000,
    websocket_per_message=1.00 / 1_000_000,
    websocket_per_connection_minute=0.25 / 1_000_000,
)
