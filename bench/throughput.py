"""Throughput of the local stack: K concurrent runs with an instant model all reach a terminal
state, and no thread keeps its run lock."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench.stack_runs import (
    prepare_runs,
    start_executions,
    thread_locks_held,
    wait_for_runs,
    warm_up,
)
from bench.workload import Profile
from local.stack_session import TERMINAL_EXECUTION, local_threadline

# The model answers at once, so the state machine has no reason to wait between checks.
INSTANT_MODEL_PARAMETERS = {"PollInitialSeconds": "0", "PollMaxSeconds": "1"}


def measure_throughput(profile: Profile) -> dict[str, Any]:
    scripts = profile.instant_scripts(profile.throughput_runs)
    with local_threadline(parameters=INSTANT_MODEL_PARAMETERS) as product:
        warm_up(product)
        runs = prepare_runs(product, scripts)
        started = time.monotonic()
        start_executions(product, runs)
        descriptions = wait_for_runs(product, runs)
        wall_time = time.monotonic() - started
        locks_held = thread_locks_held(runs)
    statuses = Counter(description["status"] for description in descriptions)
    return {
        "runs": len(runs),
        "model_latency_s": 0,
        "stack_parameters": INSTANT_MODEL_PARAMETERS,
        "tool_rounds": sum(script.tool_rounds for script in scripts),
        "wall_time_s": round(wall_time, 3),
        "runs_per_s": round(len(runs) / wall_time, 3),
        "terminal_runs": sum(statuses[status] for status in TERMINAL_EXECUTION),
        "execution_statuses": dict(statuses),
        "thread_locks_held": locks_held,
    }
