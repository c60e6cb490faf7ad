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
