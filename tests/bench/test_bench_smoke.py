"""The benchmark harness runs end to end in its quick mode and writes every figure it promises.

No figure is checked against a threshold: benchmarks report, tests don't time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PER_MODE_KEYS = (
    "status_calls_per_run",
    "detection_delay_s",
    "expected_detection_delay_s",
    "end_to_end_s",
    "transitions_per_run",
    "lambda_invocations_per_run",
    "tool_rounds_per_run",
    "cost_per_1000_runs_usd",
)
THROUGHPUT_KEYS = ("runs", "wall_time_s", "runs_per_s", "terminal_runs", "thread_locks_held")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("bench") / "results.json"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(["layers/threadline", "."])}
    environment.pop("OPENAI_API_KEY", None)  # the harness needs the local OpenAI server
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads(output.read_text())


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def test_every_mode_reports_its_figures(results: dict[str, Any]) -> None:
    modes = ["runner_loop", *results["ratios_to_runner_loop"]]
    assert "threadline" in modes
    missing = [
        f"{mode}.{key}"
        for mode in modes
        for key in PER_MODE_KEYS
        if not is_number(results[mode].get(key))
    ]
    assert missing == []


@pytest.mark.parametrize("key", ["cold_import_ms", "libraries_import_ms"])
def test_every_function_of_the_template_has_import_times(results: dict[str, Any], key: str) -> None:
    functions = set(results["cold_start"])
    assert functions
    assert set(results[key]) == functions
    assert all(is_number(value) for value in results[key].values())


def test_the_profile_and_throughput_are_recorded(results: dict[str, Any]) -> None:
    assert results["profile"]["name"] == "quick"
    assert is_number(results["profile"]["time_scale"])
    assert all(is_number(results["throughput"][key]) for key in THROUGHPUT_KEYS)
    assert results["throughput"]["thread_locks_held"] == 0
    assert results["problems"] == []


BY_RUN_LENGTH_KEYS = {
    "design",
    "run_length_s",
    "tool_rounds",
    "measured",
    "cost_per_1000_runs_usd",
    "detection_delay_s",
    "status_calls_per_run",
    "transitions_per_run",
    "lambda_invocations_per_run",
}


def test_every_design_has_every_run_length_measured_or_modelled(results: dict[str, Any]) -> None:
    rows = results["by_run_length"]
    designs = {row["design"] for row in rows}
    assert {"seed_loop_512", "seed_loop_256", "threadline"} <= designs
    lengths = {row["run_length_s"] for row in rows}
    assert lengths == {5, 10, 30, 60, 120, 300, 900, 3600}
    for design in designs:
        cells = {(r["run_length_s"], r["tool_rounds"]) for r in rows if r["design"] == design}
        assert cells == {(length, k) for length in lengths for k in (0, 1, 3)}, design
    assert all(set(row) >= BY_RUN_LENGTH_KEYS for row in rows)
    assert all(is_number(row["cost_per_1000_runs_usd"]) for row in rows)
    measured = {(r["design"], r["run_length_s"], r["tool_rounds"]) for r in rows if r["measured"]}
    assert ("threadline", 5, 0) in measured
    assert ("seed_loop_512", 30, 1) in measured
    assert isinstance(results["goal"], list)


def test_threadline_pays_for_publishing_each_runs_start_and_end(results: dict[str, Any]) -> None:
    threadline = results["threadline"]
    assert threadline["events_put_per_run"] >= 2  # Run Started, and how it ended
    assert threadline["lambda_per_run"]["invocations"]["PublishEventsFunction"] > 0
