"""Modelled AWS cost per 1,000 runs, from a mode's measured counts and the price table."""

from __future__ import annotations

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

    @property
    def total(self) -> float:
        return self.step_functions + self.lambda_requests + self.lambda_duration + self.dynamodb

    def as_json(self) -> dict[str, float]:
        return {
            **{name: round(value, 6) for name, value in asdict(self).items()},
            "total": round(self.total, 6),
        }


def cost_per_1000_runs(mode: ModeResult, prices: PriceTable, architecture: str) -> CostPer1000Runs:
    """Standard-workflow transitions, Lambda requests and GB-seconds (each invocation's billed
    duration at its function's memory), DynamoDB on-demand request units."""
    transitions = mode.per_run_means()["transitions"]
    return CostPer1000Runs(
        step_functions=RUNS * transitions * prices.step_functions_standard_per_transition,
        lambda_requests=RUNS * mode.lambda_usage.requests * prices.lambda_per_request,
        lambda_duration=RUNS
        * mode.lambda_usage.gb_seconds
        * prices.lambda_per_gb_second[architecture],
        dynamodb=RUNS
        * (
            mode.dynamodb.write_units * prices.dynamodb_per_write_unit
            + mode.dynamodb.read_units * prices.dynamodb_per_read_unit
        ),
    )
