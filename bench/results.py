"""The results document (bench/results/latest.json): every mode's summary and cost, the
ratios to the runner loop, cold starts and throughput, and whatever went wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bench.cold_start import ColdStart
from bench.costs import cost_per_1000_runs
from bench.measurements import ModeResult
from bench.prices import PRICES
from bench.run_lengths import Design, goal_check, loop_rows, threadline_rows
from bench.template_facts import global_function_setting
from bench.workload import Profile, RunScript

RATIO_KEYS = {
    "status_calls": "status_calls_per_run",
    "detection_delay": "detection_delay_s",
    "end_to_end": "end_to_end_s",
    "cost": "cost_per_1000_runs_usd",
}


def build_results(  # noqa: PLR0917 - the parts of one document
    profile: Profile,
    scripts: list[RunScript],
    modes: dict[str, ModeResult],
    designs: dict[str, dict[str, str]],
    cold_starts: list[ColdStart],
    throughput: dict[str, Any],
) -> dict[str, Any]:
    """`modes` holds "runner_loop" and every Threadline mode measured on the same scripts;
    `designs` the template parameters of each Threadline mode."""
    architecture = global_function_setting("Architectures")[0]
    document: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": profile.as_json(),
        "workload": [
            {"run": s.index, "tool_rounds": s.tool_rounds, "turn_latencies_s": s.turn_latencies_s}
            for s in scripts
        ],
        "prices": PRICES.as_json(),
        "lambda": {
            "architecture": architecture,
            "memory_mb": global_function_setting("MemorySize"),
        },
    }
    for label, mode in modes.items():
        cost = cost_per_1000_runs(mode, PRICES, architecture)
        document[label] = {
            **mode.as_json(),
            "cost_per_1000_runs_usd": round(cost.total, 6),
            "cost_breakdown_per_1000_runs_usd": cost.as_json(),
        }
    document["ratios_to_runner_loop"] = {
        label: _ratios(document[label], document["runner_loop"])
        for label in modes
        if label != "runner_loop"
    }
    loop = modes["runner_loop"]
    document["by_run_length"] = [
        *loop_rows(loop, 512, profile.runner_poll_interval_s),
        *loop_rows(loop, 256, profile.runner_poll_interval_s),
        *(
            row
            for label, parameters in designs.items()
            for row in threadline_rows(Design(label, parameters, modes[label]), architecture)
        ),
    ]
    document["goal"] = goal_check(
        document["by_run_length"],
        {label: mode.expected_detection_delay_s() for label, mode in modes.items()},
    )
    document["cold_import_ms"] = {c.function: c.as_json()["import_ms_median"] for c in cold_starts}
    document["libraries_import_ms"] = {
        c.function: c.as_json()["libraries_ms_median"] for c in cold_starts
    }
    document["cold_start"] = {c.function: c.as_json() for c in cold_starts}
    document["throughput"] = throughput
    document["problems"] = _problems(scripts, modes, cold_starts, throughput)
    return document


def _ratios(mode: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    """This mode's figure divided by the runner loop's."""
    return {
        name: round(mode[key] / baseline[key], 3) if baseline[key] else None
        for name, key in RATIO_KEYS.items()
    }


def _problems(
    scripts: list[RunScript],
    modes: dict[str, ModeResult],
    cold_starts: list[ColdStart],
    throughput: dict[str, Any],
) -> list[str]:
    """Anything that makes the figures untrustworthy or breaks a promise of the product."""
    problems = []
    expected_rounds = {script.index: script.tool_rounds for script in scripts}
    for label, mode in modes.items():
        for run in mode.runs:
            if run.status != "completed" or run.tool_rounds != expected_rounds[run.run_index]:
                problems.append(
                    f"{label} run {run.run_index}: {run.status} after {run.tool_rounds} tool "
                    f"rounds (scripted {expected_rounds[run.run_index]})"
                )
        if mode.lambda_usage.unreported_invocations:
            problems.append(f"{label}: Lambda invocations without a reported duration")
        if mode.details.get("thread_locks_held"):
            problems.append(f"{label}: {mode.details['thread_locks_held']} thread locks held")
        stream = mode.details.get("stream")
        if stream and (stream["client_errors"] or stream["clients_not_done"]):
            problems.append(
                f"{label}: {stream['clients_not_done']} clients did not get their run's end "
                f"({stream['client_errors'][:3]})"
            )
    for cold_start in cold_starts:
        if cold_start.flagged:
            problems.append(f"{cold_start.function} imports the OpenAI SDK at import time")
        if cold_start.failed_library_imports:
            problems.append(
                f"{cold_start.function}: could not import {cold_start.failed_library_imports}"
            )
    if throughput["terminal_runs"] != throughput["runs"] or throughput["thread_locks_held"]:
        problems.append(
            f"throughput: {throughput['terminal_runs']}/{throughput['runs']} runs ended, "
            f"{throughput['thread_locks_held']} thread locks held"
        )
    return problems
