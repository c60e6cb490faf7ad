"""Modelled AWS cost per 1,000 runs, from a mode's measured counts and the price table."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

from bench.measurements import ModeResult
from bench.prices import PriceTable

RUNS = 1_000


@dataclass(frozen=True)
class CostPer1000Runs:
    step_functions: float
    lambda_requests: float
    lambda_duration: float
    dynamodb: float
    events: float = 0.0
    websocket: float = 0.0  # a watched run's messages and connection time

    @property
    def total(self) -> float:
        return (
            self.step_functions
            + self.lambda_requests
            + self.lambda_duration
            + self.dynamodb
            + self.events
            + self.websocket
        )

    def as_json(self) -> dict[str, float]:
        return {
            **{name: round(value, 6) for name, value in asdict(self).items()},
            "total": round(self.total, 6),
        }


def cost_per_1000_runs(mode: ModeResult, prices: PriceTable, architecture: str) -> CostPer1000Runs:
    """Standard-workflow transitions and Express executions, Lambda requests and GB-seconds
    (each invocation's billed duration at its function's memory), DynamoDB on-demand request
    units, EventBridge events put, and for watched runs the WebSocket API's messages and
    connection minutes."""
    transitions = mode.per_run_means()["transitions"]
    stream = mode.details.get("stream", {})
    express = statistics.fmean(
        run.express_executions * prices.step_functions_express_per_request
        + express_gb_seconds(run.express_seconds) * prices.step_functions_express_per_gb_second
        for run in mode.runs
    )
    return CostPer1000Runs(
        step_functions=RUNS
        * (transitions * prices.step_functions_standard_per_transition + express),
        lambda_requests=RUNS * mode.lambda_usage.requests * prices.lambda_per_request,
        lambda_duration=RUNS
        * mode.lambda_usage.gb_seconds
        * prices.lambda_per_gb_second[architecture],
        dynamodb=RUNS
        * (
            mode.dynamodb.write_units * prices.dynamodb_per_write_unit
            + mode.dynamodb.read_units * prices.dynamodb_per_read_unit
        ),
        events=RUNS * mode.events_put_per_run * prices.eventbridge_per_event,
        websocket=RUNS
        * (
            stream.get("messages_per_run", 0.0) * prices.websocket_per_message
            + stream.get("connection_minutes_per_run", 0.0) * prices.websocket_per_connection_minute
        ),
    )


def express_gb_seconds(seconds: float) -> float:
    """Express bills 100 ms steps at 64 MB steps of memory (a small execution uses one)."""
    return math.ceil(seconds * 10) / 10 * 64 / 1024
