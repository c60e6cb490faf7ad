"""Threadline's orchestration measured on the local stack, as a function of the stack's
parameters: the default (Responses backend, polling state machine), `{"Backend":
"assistants"}` and `{"RunWaitMode": "push"}` are each one call."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from bench.aws_meter import metered_aws
from bench.execution_history import read_history
from bench.measurements import ModeResult, RunMeasurement
from bench.openai_stats import remote_run_stats
from bench.stack_runs import (
    StackRun,
    history,
    local_server,
    prepare_runs,
    start_executions,
    thread_locks_held,
    wait_for_executions,
    warm_up,
)
from bench.workload import Profile, RunScript
from local.stack_session import LocalThreadline, local_threadline
from threadline import runtime


def measure_threadline(
    profile: Profile,
    scripts: list[RunScript],
    *,
    label: str,
    parameters: Mapping[str, str] | None = None,
) -> ModeResult:
    """Run every script concurrently through the state machine of a stack deployed with the
    profile's poll settings and `parameters`."""
    stack_parameters = {**profile.poll_parameters(), **(parameters or {})}
    with metered_aws() as meter, local_threadline(parameters=stack_parameters) as product:
        server = local_server(product)
        warm_up(product)
        runs = prepare_runs(product, scripts)
        webhooks_before = server.webhook_dispatcher.delivered
        with meter.window():
            wall_started = time.monotonic()
            arns = start_executions(product, runs)
            descriptions = wait_for_executions(product, arns)
            wall_time = time.monotonic() - wall_started
            server.flush_webhooks()  # so the last webhook's Lambda invocation is metered
        webhooks = server.webhook_dispatcher.delivered - webhooks_before
        measurements = [
            _measure_run(product, run, description)
            for run, description in zip(runs, descriptions, strict=True)
        ]
        backend = runtime.current().backend().name
        locks_held = thread_locks_held(runs)
        functions = {
            spec.name: (spec.logical_id, spec.memory) for spec in product.stack.functions.values()
        }
    return ModeResult(
        label=label,
        description=f"Threadline state machine, {backend} backend, "
        + ", ".join(f"{name}={value}" for name, value in stack_parameters.items()),
        runs=measurements,
        lambda_usage=meter.lambda_per_run(len(runs), functions),
        dynamodb=meter.dynamodb_per_run(len(runs)),
        wall_time_s=wall_time,
        details={
            "backend": backend,
            "stack_parameters": stack_parameters,
            "thread_locks_held": locks_held,
            "webhooks_per_run": webhooks / len(runs),  # each an API Gateway request (unpriced)
        },
    )


def _measure_run(
    product: LocalThreadline, run: StackRun, description: dict[str, Any]
) -> RunMeasurement:
    facts = read_history(history(product, description["executionArn"]))
    record = runtime.current().run_store().get(run.thread.thread_id, run.run_id)
    stats = remote_run_stats(local_server(product), run.thread.remote_id)
    if facts.terminal_known_at is None:
        raise RuntimeError(f"no task of {run.run_id} reported the end of the run")
    return RunMeasurement(
        run_index=run.script.index,
        status=record.status.value,
        tool_rounds=record.tool_rounds,
        status_calls=stats.status_calls,
        state_transitions=facts.state_transitions,
        lambda_invocations=facts.lambda_invocations,
        detection_delay_s=round(facts.terminal_known_at - stats.model_finished_at, 3),
        end_to_end_s=round((description["stopDate"] - description["startDate"]).total_seconds(), 3),
    )
