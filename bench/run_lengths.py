"""Every design at every run length: measured where the bench ran it, modelled elsewhere.

A modelled Threadline run is walked through the product's own waiting rules
(`threadline.runs.polling.while_running`): the Express tier's checks, the hand-off, Standard
polls that grow or webhook waits that double. What each step costs comes from the design's
measured runs (billed milliseconds per function, DynamoDB units per run) and the price table.
The model is checked against the measured lengths: the report prints both there.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.costs import express_gb_seconds
from bench.measurements import ModeResult, RunMeasurement
from bench.prices import PRICES, PriceTable
from bench.template_facts import parameter_default
from threadline.runs.polling import while_running
from threadline.runs.state import RunState, Tier
from threadline.settings import Settings, WaitMode

# Run lengths and tool rounds the goal is stated for.
RUN_LENGTHS_S = (5, 10, 30, 60, 120, 300, 900, 3600)
TOOL_ROUNDS = (0, 1, 3)
RUNS = 1_000
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Walk:
    """What one modelled run does: counts per run."""

    status_calls: int = 0
    transitions: int = 0
    express_executions: int = 0
    express_seconds: float = 0.0
    invocations: Counter[str] = field(default_factory=Counter)
    # How the orchestrator learns that the last turn ended: a check on an Express or a
    # Standard poll (with the interval it polls at then), or the webhook.
    detected_by: str = "express"
    last_interval_s: float = 1.0


def walk(settings: Settings, wait_mode: WaitMode, length_s: float, tool_rounds: int) -> Walk:
    """Walk a run whose turns end evenly over `length_s` through the product's waiting rules;
    every task takes no time (their cost is priced per invocation)."""
    return _Walker(settings, wait_mode, length_s, tool_rounds).walk()


class _Walker:
    def __init__(
        self, settings: Settings, wait_mode: WaitMode, length_s: float, tool_rounds: int
    ) -> None:
        self.settings = settings
        self.turn_ends = [length_s * (t + 1) / (tool_rounds + 1) for t in range(tool_rounds + 1)]
        tier: Tier = "express" if settings.express_tier_seconds else "standard"
        self.state = RunState(
            run_id="run",
            thread_id="thread",
            user_id="user",
            started_at=EPOCH,
            deadline=EPOCH + timedelta(seconds=length_s * 2 + 3600),
            tier=tier,
            wait_mode=wait_mode,
        )
        self.express = tier == "express"
        self.invocations: Counter[str] = Counter({"StartRunFunction": 1})
        self.status_calls = 0
        self.transitions = 0 if self.express else 3  # Begin, StartRun, RouteOnStatus
        self.now = 0.0
        self.turn = 0
        self.handed_off_at: float | None = None
        self.detected_by = "express"
        self.interval = 1.0

    def _standard(self, transitions: int) -> None:
        """Transitions are billed in Standard executions only."""
        if self.state.tier == "standard":
            self.transitions += transitions

    def _decide(self, *, after_check: bool) -> None:
        moment = EPOCH + timedelta(seconds=self.now)
        decided = while_running(self.state, self.settings, moment, after_check=after_check)
        polls = self.state.polls + 1 if after_check else 0  # as CheckRun counts its checks
        self.state = self.state.model_copy(update={**decided, "polls": polls})

    def _wait(self) -> bool:
        """One wait and the look that ends it; True if the current turn had ended by then."""
        turn_end = self.turn_ends[self.turn]
        self.status_calls += 1
        if self.state.next == "wait_for_webhook":
            self.invocations["WaitForWebhookFunction"] += 1
            if turn_end <= self.now + self.state.webhook_wait_seconds:  # woken by the webhook
                self.now = max(self.now, turn_end)
                self.invocations["OpenAIWebhookFunction"] += 1
                self._standard(2)  # WaitForWebhook, RouteOnStatus
                self.detected_by, self.interval = "webhook", 0.0
                return True
            self.now += self.state.webhook_wait_seconds  # its timeout: CheckRun
            self.invocations["CheckRunFunction"] += 1
            self._standard(3)  # WaitForWebhook, CheckRun, RouteOnStatus
            return False
        self.interval = self.state.wait_seconds
        self.now += self.state.wait_seconds
        self.invocations["CheckRunFunction"] += 1
        self._standard(3)  # WaitForModel, CheckRun, RouteOnStatus
        self.detected_by = "express" if self.state.tier == "express" else "poll"
        return self.now >= turn_end

    def _hand_off(self) -> None:
        self.invocations["HandOffRunFunction"] += 1
        self.handed_off_at = self.now
        self.state = self.state.model_copy(update={"tier": "standard"})
        self._standard(2)  # Begin, RouteOnStatus

    def walk(self) -> Walk:
        self._decide(after_check=False)
        while True:
            if self._wait():
                if self.turn == len(self.turn_ends) - 1:
                    break
                self.turn += 1
                moment = EPOCH + timedelta(seconds=self.now)
                tier_seconds = self.settings.express_tier_seconds
                if self.state.where_tools_run(tier_seconds, moment) == "hand_off":
                    self._hand_off()
                self.invocations["ProcessToolCallsFunction"] += 1
                self._standard(2)  # ProcessToolCalls, RouteOnStatus
                self._decide(after_check=False)
            else:
                self._decide(after_check=True)
            if self.state.next == "hand_off":
                self._hand_off()
                self._decide(after_check=False)
        self.invocations["FinishRunFunction"] += 1
        self._standard(3)  # FinishRun, RouteOnOutcome, RunCompleted
        express_end = self.handed_off_at if self.handed_off_at is not None else self.now
        return Walk(
            status_calls=self.status_calls,
            transitions=self.transitions,
            express_executions=int(self.express),
            express_seconds=express_end if self.express else 0.0,
            invocations=self.invocations,
            detected_by=self.detected_by,
            last_interval_s=self.interval,
        )


@dataclass(frozen=True)
class UnitCosts:
    """A design's measured costs per unit: GB-seconds per invocation of each function,
    DynamoDB and events per run, and the webhook's median delivery delay."""

    gb_seconds_per_invocation: dict[str, float]
    dynamodb_per_run_usd: float
    # Publishing the run's events: PublishEvents' invocations (no step of the walk: the
    # table's stream invokes it) and the events it puts.
    stream_invocations_per_run: dict[str, float]
    events_put_per_run: float
    detection_delay_s: dict[str, float]  # by how the end was noticed

    def lambda_usd(self, invocations: Counter[str], prices: PriceTable, arch: str) -> float:
        mean = _mean(list(self.gb_seconds_per_invocation.values()))
        return sum(
            count
            * (
                prices.lambda_per_request
                + self.gb_seconds_per_invocation.get(name, mean) * prices.lambda_per_gb_second[arch]
            )
            for name, count in invocations.items()
        )


def walk_cost_usd(walk_: Walk, units: UnitCosts, prices: PriceTable, arch: str) -> float:
    per_run = (
        walk_.transitions * prices.step_functions_standard_per_transition
        + walk_.express_executions * prices.step_functions_express_per_request
        + express_gb_seconds(walk_.express_seconds) * prices.step_functions_express_per_gb_second
        + units.lambda_usd(
            walk_.invocations + Counter(units.stream_invocations_per_run), prices, arch
        )
        + units.dynamodb_per_run_usd
        + units.events_put_per_run * prices.eventbridge_per_event
    )
    return per_run * RUNS


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# Template parameters the waiting rules read, and the settings they set.
WAITING_PARAMETERS = {
    "ExpressTierSeconds": "express_tier_seconds",
    "ExpressPollSeconds": "express_poll_seconds",
    "PollInitialSeconds": "poll_initial_seconds",
    "PollMaxSeconds": "poll_max_seconds",
    "WebhookWaitSeconds": "webhook_wait_seconds",
    "WebhookWaitMaxSeconds": "webhook_wait_max_seconds",
    "RunWaitMode": "run_wait_mode",
}


@dataclass(frozen=True)
class Design:
    """A Threadline configuration as deployed (the template's defaults and the design's
    parameters, unscaled) and its measured runs."""

    name: str
    parameters: dict[str, str]
    mode: ModeResult

    @property
    def settings(self) -> Settings:
        values = {
            setting: self.parameters.get(name, parameter_default(name))
            for name, setting in WAITING_PARAMETERS.items()
        }
        return Settings.model_validate({"table_name": "bench", "bucket_name": "bench", **values})

    @property
    def wait_mode(self) -> WaitMode:
        """auto waits for webhooks: the bench's stacks have them configured."""
        mode = self.settings.run_wait_mode
        return "push" if mode == "auto" else mode


STREAM_FUNCTIONS = ("PublishEventsFunction",)  # invoked by the table's stream, not a state


def unit_costs(mode: ModeResult, detections: dict[str, float]) -> UnitCosts:
    usage = mode.lambda_usage
    gb_s = {
        name: usage.billed_ms_median[name] / 1000 * mode.details["memory_mb"].get(name, 512) / 1024
        for name in usage.billed_ms_median
    }
    dynamodb = (
        mode.dynamodb.write_units * PRICES.dynamodb_per_write_unit
        + mode.dynamodb.read_units * PRICES.dynamodb_per_read_unit
    )
    streamed = {
        name: usage.invocations[name] for name in STREAM_FUNCTIONS if name in usage.invocations
    }
    return UnitCosts(gb_s, dynamodb, streamed, mode.events_put_per_run, detections)


def threadline_rows(design: Design, arch: str) -> list[dict[str, Any]]:
    """The design at every length and tool-round count; measured rows where the bench ran it."""
    measured = {(run.length_s, run.tool_rounds): run for run in design.mode.runs}
    detections = _detections_by_regime(design, measured)
    units = unit_costs(design.mode, detections)
    rows = []
    for length in RUN_LENGTHS_S:
        for rounds in TOOL_ROUNDS:
            modelled = walk(design.settings, design.wait_mode, length, rounds)
            run = measured.get((length, rounds))
            row = {
                "design": design.name,
                "run_length_s": length,
                "tool_rounds": rounds,
                "measured": run is not None,
                "modelled_cost_per_1000_runs_usd": round(
                    walk_cost_usd(modelled, units, PRICES, arch), 4
                ),
            }
            if run is not None:
                row.update(_measured_figures(run, units, arch))
            else:
                row.update(
                    cost_per_1000_runs_usd=row["modelled_cost_per_1000_runs_usd"],
                    detection_delay_s=_modelled_detection(modelled, detections),
                    status_calls_per_run=modelled.status_calls,
                    transitions_per_run=modelled.transitions,
                    lambda_invocations_per_run=sum(modelled.invocations.values()),
                )
            rows.append(row)
    return rows


def _measured_figures(run: RunMeasurement, units: UnitCosts, arch: str) -> dict[str, Any]:
    cost = walk_cost_usd(
        Walk(
            transitions=run.state_transitions,
            express_executions=run.express_executions,
            express_seconds=run.express_seconds,
            invocations=Counter(run.invocations),
        ),
        units,
        PRICES,
        arch,
    )
    return {
        "cost_per_1000_runs_usd": round(cost, 4),
        "detection_delay_s": run.detection_delay_s,
        "status_calls_per_run": run.status_calls,
        "transitions_per_run": run.state_transitions,
        "lambda_invocations_per_run": sum(run.invocations.values()),
    }


def _detections_by_regime(
    design: Design, measured: dict[tuple[float, int], RunMeasurement]
) -> dict[str, float]:
    """The measured detection delay of runs whose end was noticed each way."""
    by_regime: dict[str, list[float]] = {}
    for (length, rounds), run in measured.items():
        regime = walk(design.settings, design.wait_mode, length, rounds).detected_by
        by_regime.setdefault(regime, []).append(run.detection_delay_s)
    return {regime: statistics.median(values) for regime, values in by_regime.items()}


def _modelled_detection(modelled: Walk, detections: dict[str, float]) -> float:
    """As measured for runs noticed the same way; a poll not measured at its interval is
    half that interval late on average."""
    if modelled.detected_by == "poll":
        return round(modelled.last_interval_s / 2, 3)
    return detections.get(modelled.detected_by, 0.0)


def loop_rows(loop: ModeResult, memory_mb: int, poll_interval_s: float) -> list[dict[str, Any]]:
    """The loop at every length: one Lambda for the whole run at `memory_mb`, a retrieve a
    poll interval; measured rows from its runs (priced at this memory)."""
    measured = {(run.length_s, run.tool_rounds): run for run in loop.runs}
    name = f"seed_loop_{memory_mb}"
    detection = statistics.median([run.detection_delay_s for run in loop.runs])
    rows = []
    for length in RUN_LENGTHS_S:
        for rounds in TOOL_ROUNDS:
            run = measured.get((length, rounds))
            seconds = run.end_to_end_s if run else length + detection
            cost = RUNS * (
                PRICES.lambda_per_request
                + seconds * memory_mb / 1024 * PRICES.lambda_per_gb_second["arm64"]
            )
            rows.append(
                {
                    "design": name,
                    "run_length_s": length,
                    "tool_rounds": rounds,
                    "measured": run is not None,
                    "cost_per_1000_runs_usd": round(cost, 4),
                    "detection_delay_s": run.detection_delay_s if run else detection,
                    "status_calls_per_run": run.status_calls
                    if run
                    else math.ceil(length / poll_interval_s),
                    "transitions_per_run": 0,
                    "lambda_invocations_per_run": 1,
                }
            )
    return rows


def goal_check(
    rows: list[dict[str, Any]],
    expected_detection_s: Mapping[str, float | None],
    design: str = "threadline",
) -> list[str]:
    """Where `design` misses the goal: at most the 512 MB loop's cost at every length and at
    most half of it from 30 s on, one-hour runs under $1 per 1,000, status calls at most the
    loop's, and an expected detection delay (`ModeResult.expected_detection_delay_s`, by
    label) at most the loop's."""
    loop = {
        (r["run_length_s"], r["tool_rounds"]): r for r in rows if r["design"] == "seed_loop_512"
    }
    ours = [r for r in rows if r["design"] == design]
    misses = []
    for row in ours:
        key = (row["run_length_s"], row["tool_rounds"])
        where = f"{row['run_length_s']} s, {row['tool_rounds']} tool rounds"
        ceiling = loop[key]["cost_per_1000_runs_usd"] * (0.5 if row["run_length_s"] >= 30 else 1)
        if row["cost_per_1000_runs_usd"] > ceiling:
            misses.append(f"{where}: ${row['cost_per_1000_runs_usd']:g} > ${ceiling:.4g}")
        if row["run_length_s"] >= 3600 and row["cost_per_1000_runs_usd"] >= 1:
            misses.append(f"{where}: ${row['cost_per_1000_runs_usd']:g} is not under $1")
        if row["status_calls_per_run"] > loop[key]["status_calls_per_run"]:
            misses.append(
                f"{where}: {row['status_calls_per_run']} status calls > the loop's "
                f"{loop[key]['status_calls_per_run']}"
            )
    ours_expected = expected_detection_s.get(design)
    loop_expected = expected_detection_s.get("runner_loop")
    if ours_expected is None or loop_expected is None:
        misses.append("expected detection delay not measured")
    elif ours_expected > loop_expected:
        misses.append(
            f"expected detection delay {ours_expected:.3f} s > the loop's {loop_expected:.3f} s"
        )
    return misses
