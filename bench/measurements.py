"""What one run and one mode measured, and how a mode is summarised."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunMeasurement:
    run_index: int
    length_s: float  # as scripted (unscaled): the model's turns together
    status: str
    tool_rounds: int
    status_calls: int  # retrieves of the run's remote objects, counted by the OpenAI server
    state_transitions: int  # Standard executions' (Express transitions are not billed)
    lambda_invocations: int
    detection_delay_s: float  # the model finished -> the orchestrator knew
    end_to_end_s: float
    express_executions: int = 0
    express_seconds: float = 0.0  # the Express execution's duration
    invocations: dict[str, int] = field(default_factory=dict)  # by function logical id
    # Between the checks of the run's remote objects while they went (see openai_stats).
    check_intervals_s: tuple[float, ...] = ()
    # From the first check after the model finished to the orchestrator knowing it.
    check_latency_s: float | None = None


@dataclass(frozen=True)
class DynamoDBUsage:
    """Per run: calls by operation and the request units they are estimated to cost."""

    calls: dict[str, float] = field(default_factory=dict)
    read_units: float = 0.0
    write_units: float = 0.0


@dataclass(frozen=True)
class LambdaUsage:
    """Per run: requests and GB-seconds billed (each invocation's duration rounded up to the
    millisecond, at its function's memory), invocations and median billed ms by function."""

    requests: float = 0.0
    gb_seconds: float = 0.0
    invocations: dict[str, float] = field(default_factory=dict)
    billed_ms_median: dict[str, float] = field(default_factory=dict)
    unreported_invocations: int = 0  # invocations whose duration could not be read


@dataclass
class ModeResult:
    label: str
    description: str
    runs: list[RunMeasurement]
    lambda_usage: LambdaUsage
    dynamodb: DynamoDBUsage = field(default_factory=DynamoDBUsage)
    events_put_per_run: float = 0.0  # Threadline's events on EventBridge
    wall_time_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def per_run_means(self) -> dict[str, float]:
        """Unrounded means per run, for the cost model."""
        return {
            "status_calls": statistics.fmean(run.status_calls for run in self.runs),
            "transitions": statistics.fmean(run.state_transitions for run in self.runs),
            "lambda_invocations": statistics.fmean(run.lambda_invocations for run in self.runs),
            "tool_rounds": statistics.fmean(run.tool_rounds for run in self.runs),
        }

    def expected_detection_delay_s(self) -> float | None:
        """The mean delay from the model finishing at a random moment to the orchestrator
        knowing it: the mean wait for its next check (the residual of the intervals between
        checks, sum(I^2) / 2 sum(I), over every interval of every run) plus the median latency
        from that check to knowing. Drawn from every check, not from a handful of finishes,
        so that two pollers of the same period compare by their periods, not by chance."""
        intervals = [interval for run in self.runs for interval in run.check_intervals_s]
        latencies = [run.check_latency_s for run in self.runs if run.check_latency_s is not None]
        if not intervals or not latencies:
            return None
        residual = sum(interval**2 for interval in intervals) / (2 * sum(intervals))
        return residual + statistics.median(latencies)

    def summary(self) -> dict[str, Any]:
        """Counts are means per run; delays and durations are medians (and maxima)."""
        means = self.per_run_means()
        detection = [run.detection_delay_s for run in self.runs]
        end_to_end = [run.end_to_end_s for run in self.runs]
        return {
            "runs": len(self.runs),
            "completed_runs": sum(run.status == "completed" for run in self.runs),
            "status_calls_per_run": round(means["status_calls"], 3),
            "transitions_per_run": round(means["transitions"], 3),
            "lambda_invocations_per_run": round(means["lambda_invocations"], 3),
            "tool_rounds_per_run": round(means["tool_rounds"], 3),
            "detection_delay_s": round(statistics.median(detection), 3),
            "detection_delay_max_s": round(max(detection), 3),
            "expected_detection_delay_s": _rounded(self.expected_detection_delay_s()),
            "end_to_end_s": round(statistics.median(end_to_end), 3),
            "end_to_end_max_s": round(max(end_to_end), 3),
            "lambda_per_run": asdict(self.lambda_usage),
            "dynamodb_per_run": asdict(self.dynamodb),
            "events_put_per_run": round(self.events_put_per_run, 3),
            "wall_time_s": round(self.wall_time_s, 3),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            **self.summary(),
            **self.details,
            "per_run": [asdict(run) for run in self.runs],
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
