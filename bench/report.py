"""Print the results document as tables."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


def say(text: str = "") -> None:
    """Write to the real stdout: the handlers' logs go to the log file while the stack runs."""
    print(text, file=sys.__stdout__, flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(headers), *([_cell(value) for value in row] for row in rows)]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    lines = [_line(row, widths) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    """The first column left-aligned, the figures right-aligned."""
    return "  ".join(
        value.ljust(width) if column == 0 else value.rjust(width)
        for column, (value, width) in enumerate(zip(values, widths, strict=True))
    )


def print_report(document: dict[str, Any], mode_labels: list[str]) -> None:
    profile = document["profile"]
    say(
        f"\nProfile {profile['name']!r}: a run of each length "
        f"{', '.join(f'{length:g}' for length in profile['run_lengths_s'])} s with each of "
        f"{', '.join(map(str, profile['tool_round_counts']))} tool rounds (the length split "
        f"evenly between the model's turns); runner loop polls every "
        f"{profile['runner_poll_interval']:g} s; stacks deployed with "
        + ", ".join(f"{k}={v}" for k, v in profile["stack_parameters"].items())
    )
    if profile["time_scale"] != 1:
        say(
            f"  Every duration is scaled by {profile['time_scale']:g} (latencies, runner interval, "
            "poll settings); Wait states take whole seconds, so the state machine's scaled "
            "waits are rounded. Times below are as measured, not rescaled."
        )
    _print_runs(document, mode_labels)
    _print_summary(document, mode_labels)
    _print_costs(document, mode_labels)
    _print_run_lengths(document, mode_labels)
    _print_cold_starts(document)
    _print_throughput(document["throughput"])
    for problem in document["problems"]:
        say(f"PROBLEM: {problem}")


def _print_runs(document: dict[str, Any], labels: list[str]) -> None:
    rows = [
        [
            label,
            run["run_index"],
            run["length_s"],
            run["status"],
            run["tool_rounds"],
            run["status_calls"],
            run["lambda_invocations"],
            run["state_transitions"],
            run["detection_delay_s"],
            run["end_to_end_s"],
        ]
        for label in labels
        for run in document[label]["per_run"]
    ]
    say("\nPer run")
    say(
        table(
            [
                "mode",
                "run",
                "length s",
                "status",
                "tool rounds",
                "status calls",
                "Lambda inv.",
                "transitions",
                "detect delay s",
                "end-to-end s",
            ],
            rows,
        )
    )


def _print_summary(document: dict[str, Any], labels: list[str]) -> None:
    rows = []
    for label in labels:
        mode = document[label]
        dynamodb = mode["dynamodb_per_run"]
        rows.append(
            [
                label,
                mode["backend"],
                mode["status_calls_per_run"],
                mode["lambda_invocations_per_run"],
                mode["transitions_per_run"],
                mode["tool_rounds_per_run"],
                f"{mode['detection_delay_s']:.2f} ({mode['detection_delay_max_s']:.2f})",
                f"{mode['end_to_end_s']:.2f} ({mode['end_to_end_max_s']:.2f})",
                mode["lambda_per_run"]["requests"],
                mode["lambda_per_run"]["gb_seconds"],
                f"{dynamodb['write_units']:g}/{dynamodb['read_units']:g}",
            ]
        )
    say(
        "\nPer mode (counts: mean per run; times: median (max); Lambda inv. from the execution "
        "history, Lambda req. and GB-s metered on every invocation)"
    )
    say(
        table(
            [
                "mode",
                "backend",
                "status calls",
                "Lambda inv.",
                "transitions",
                "tool rounds",
                "detect delay s",
                "end-to-end s",
                "Lambda req.",
                "GB-s",
                "DDB WRU/RRU",
            ],
            rows,
        )
    )
    for label in labels:
        durations = ", ".join(
            f"{name} {ms:g}"
            for name, ms in document[label]["lambda_per_run"]["billed_ms_median"].items()
        )
        say(f"  {label} billed ms per invocation (median): {durations}")
    ratio_rows = [
        [
            label,
            *(ratios[name] for name in ("status_calls", "detection_delay", "end_to_end", "cost")),
        ]
        for label, ratios in document["ratios_to_runner_loop"].items()
    ]
    say("\nRatios, mode ÷ runner loop")
    say(table(["mode", "status calls", "detection delay", "end-to-end", "cost"], ratio_rows))


def _print_costs(document: dict[str, Any], labels: list[str]) -> None:
    prices = document["prices"]
    lam = document["lambda"]
    say(
        f"\nModelled AWS cost per 1,000 runs, USD ({prices['region']}, prices read "
        f"{prices['read_on']}; Lambda {lam['architecture']} {lam['memory_mb']} MB; no free tier)"
    )
    rows = [
        [label, *document[label]["cost_breakdown_per_1000_runs_usd"].values()] for label in labels
    ]
    say(
        table(
            [
                "mode",
                "Step Functions",
                "Lambda requests",
                "Lambda GB-s",
                "DynamoDB",
                "events",
                "WebSocket",
                "total",
            ],
            rows,
        )
    )
    say("  runner loop: one Lambda per run for the whole run (billed = end-to-end time)")
    for label in labels:
        stream = document[label].get("stream")
        if stream:
            say(
                f"  {label}: every run watched from its start - {stream['messages_per_run']:.1f} "
                f"WebSocket messages, {stream['text_pieces_per_run']:.1f} text pieces and "
                f"{stream['connection_minutes_per_run']:.2f} connection minutes per run; "
                f"{stream['runs_with_text_before_end']} runs showed text before their end"
            )
    for label in labels:
        webhooks = document[label].get("webhooks_per_run")
        if webhooks:
            say(
                f"  {label}: plus {webhooks:g} webhook requests per run through the HTTP API "
                "(API Gateway is not in the price table)"
            )


def _print_run_lengths(document: dict[str, Any], labels: list[str]) -> None:
    """Every design at every length: cost for each tool-round count, then the 1-round run's
    detection delay, status calls and transitions; * marks a measured figure."""
    rows = document["by_run_length"]
    rounds = sorted({row["tool_rounds"] for row in rows})
    middle = rounds[len(rounds) // 2]
    say(
        "\nBy run length (USD per 1,000 runs; * measured on the local stack, the rest "
        f"modelled from the measured runs; detection, status calls, transitions: {middle} tool "
        "round(s))"
    )
    for design in dict.fromkeys(row["design"] for row in rows):
        cells = {(r["run_length_s"], r["tool_rounds"]): r for r in rows if r["design"] == design}
        lengths = sorted({length for length, _ in cells})
        table_rows = []
        for length in lengths:
            one = cells[(length, middle)]
            mark = "*" if one["measured"] else ""
            table_rows.append(
                [
                    f"{length:g} s",
                    *(
                        f"{cells[(length, k)]['cost_per_1000_runs_usd']:.4f}"
                        + ("*" if cells[(length, k)]["measured"] else "")
                        for k in rounds
                    ),
                    f"{one['detection_delay_s']:.2f}{mark}",
                    f"{one['status_calls_per_run']}{mark}",
                    f"{one['transitions_per_run']}{mark}",
                ]
            )
        say(f"\n{design}")
        say(
            table(
                [
                    "length",
                    *(f"{k} rounds $" for k in rounds),
                    "detect s",
                    "status calls",
                    "transitions",
                ],
                table_rows,
            )
        )
    say(
        "\nExpected detection delay (the mean wait for the next check after a finish at a random "
        "moment, from every interval between checks, plus the latency to knowing): "
        + ", ".join(
            f"{label} {document[label]['expected_detection_delay_s']} s"
            for label in labels
            if document[label].get("expected_detection_delay_s") is not None
        )
    )
    misses = document["goal"]
    say(
        "\nGoal (threadline: cost at most the 512 MB loop's, half of it from 30 s; one hour "
        "under $1; detection and status calls at most the loop's): "
        + ("holds at every length" if not misses else f"missed in {len(misses)} place(s)")
    )
    for miss in misses:
        say(f"  missed: {miss}")


def _print_cold_starts(document: dict[str, Any]) -> None:
    rows = [
        [
            name,
            facts["import_ms_median"],
            facts["libraries_ms_median"],
            round(facts["import_ms_median"] - facts["libraries_ms_median"], 1),
            facts["third_party_modules"],
            "yes" if facts["openai_at_import"] else "no",
            "FLAG" if facts["flagged_openai_at_import"] else "",
        ]
        for name, facts in document["cold_start"].items()
    ]
    repeats = document["profile"]["cold_start_repeats"]
    say(f"\nCold start: handler import, median of {repeats} fresh interpreters (ms)")
    say(
        table(
            [
                "function",
                "handler import",
                "its libraries",
                "difference",
                "3rd-party modules",
                "openai",
                "flag",
            ],
            rows,
        )
    )


def _print_throughput(throughput: dict[str, Any]) -> None:
    say(
        f"\nThroughput: {throughput['runs']} concurrent runs ({throughput['tool_rounds']} tool "
        f"rounds), model latency 0: {throughput['terminal_runs']} ended in "
        f"{throughput['wall_time_s']:.2f} s = {throughput['runs_per_s']:.2f} runs/s; "
        f"statuses {throughput['execution_statuses']}; thread locks held: "
        f"{throughput['thread_locks_held']}"
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.4g}"
    return str(value)
