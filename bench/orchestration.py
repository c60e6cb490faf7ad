"""Threadline's orchestration measured on the local stack, as a function of the stack's
parameters: each design the bench compares (the default, no webhooks, Standard only) is one
call."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from bench.aws_meter import metered_aws
from bench.execution_history import read_history
from bench.measurements import ModeResult, RunMeasurement
from bench.openai_stats import remote_run_stats
from bench.stack_runs import (
    StackRun,
    local_server,
    prepare_runs,
    run_histories,
    start_executions,
    thread_locks_held,
    wait_for_runs,
    warm_up,
)
from bench.watchers import Watchers
from bench.workload import Profile, RunScript
from local.stack_session import LocalThreadline, local_threadline
from threadline import runtime


def measure_threadline(
    profile: Profile,
    scripts: list[RunScript],
    *,
    label: str,
    parameters: Mapping[str, str] | None = None,
    watched: bool = False,
) -> ModeResult:
    """Run every script concurrently through the state machine of a stack deployed with the
    profile's poll settings and `parameters`; `watched`: each run with a client subscribed to
    its updates over the WebSocket API from its start to its end."""
    stack_parameters = {**profile.stack_parameters(), **(parameters or {})}
    with (
        metered_aws() as meter,
        local_threadline(
            parameters=stack_parameters, websocket_port=0 if watched else None
        ) as product,
    ):
        server = local_server(product)
        warm_up(product)
        runs = prepare_runs(product, scripts)
        webhooks_before = server.webhook_dispatcher.delivered
        with meter.window():
            wall_started = time.monotonic()
            start_executions(product, runs)
            watchers = Watchers(product, runs) if watched else None
            descriptions = wait_for_runs(product, runs)
            wall_time = time.monotonic() - wall_started
            server.flush_webhooks()  # so the last webhook's Lambda invocation is metered
            if watchers is not None:  # each has its run's final view, or soon will
                watchers.join(timeout=60)
                product.stack.event_sources.wait_idle(60)
        webhooks = server.webhook_dispatcher.delivered - webhooks_before
        names = {spec.name: spec.logical_id for spec in product.stack.functions.values()}
        names.update({spec.arn: spec.logical_id for spec in product.stack.functions.values()})
        webhooks_on = webhooks > 0
        measurements = [
            _measure_run(product, run, description, names, profile, webhooks_on=webhooks_on)
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
        events_put_per_run=meter.events_per_run(len(runs)),
        wall_time_s=wall_time,
        details={
            "backend": backend,
            "stack_parameters": stack_parameters,
            "thread_locks_held": locks_held,
            "webhooks_per_run": webhooks / len(runs),  # each an API Gateway request (unpriced)
            "memory_mb": dict(functions.values()),
            **({"stream": stream_usage(watchers, len(runs))} if watchers else {}),
        },
    )


def stream_usage(watchers: Watchers, runs: int) -> dict[str, Any]:
    """Per run: WebSocket messages (both ways), connection minutes, text pieces; how many
    runs showed text before their end, and what went wrong for a client."""
    watches = watchers.watches
    return {
        "messages_per_run": sum(watch.messages for watch in watches) / runs,
        "connection_minutes_per_run": sum(watch.connected_s for watch in watches) / 60 / runs,
        "text_pieces_per_run": sum(watch.text_pieces for watch in watches) / runs,
        "runs_with_text_before_end": sum(watch.text_before_end for watch in watches),
        "client_errors": [watch.error for watch in watches if watch.error],
        "clients_not_done": sum(not watch.done.is_set() for watch in watches),
    }


def _measure_run(
    product: LocalThreadline,
    run: StackRun,
    description: dict[str, Any],
    names: dict[str, str],
    profile: Profile,
    *,
    webhooks_on: bool,
) -> RunMeasurement:
    histories = run_histories(product, run.run_id)
    facts = {machine: read_history(events) for machine, events in histories.items()}
    record = runtime.current().run_store().get(run.thread.thread_id, run.run_id)
    stats = remote_run_stats(local_server(product), run.thread.remote_id)
    known = [f.terminal_known_at for f in facts.values() if f.terminal_known_at is not None]
    if not known:
        raise RuntimeError(f"no task of {run.run_id} reported the end of the run")
    invocations: Counter[str] = Counter()
    for machine_facts in facts.values():
        for function, count in machine_facts.lambda_invocations.items():
            invocations[names.get(function, function)] += count
    if webhooks_on:  # each response's webhook invokes the webhook function once
        invocations["OpenAIWebhookFunction"] += stats.remote_objects
    express = histories.get("RunExpressStateMachine")
    started = (express or histories["RunStateMachine"])[0]["timestamp"]
    express_seconds = (express[-1]["timestamp"] - started).total_seconds() if express else 0.0
    detection = round(min(known) - stats.model_finished_at, 3)
    return RunMeasurement(
        run_index=run.script.index,
        length_s=run.script.length_s,
        status=record.status.value,
        tool_rounds=record.tool_rounds,
        status_calls=stats.status_calls,
        state_transitions=facts["RunStateMachine"].state_transitions
        if "RunStateMachine" in facts
        else 0,
        lambda_invocations=sum(invocations.values()),
        detection_delay_s=detection,
        check_intervals_s=stats.check_intervals_s,
        check_latency_s=stats.check_latency_s(detection),
        end_to_end_s=round((description["stopDate"] - started).total_seconds(), 3),
        express_executions=1 if express else 0,
        express_seconds=round(express_seconds, 3),
        invocations=dict(invocations),
    )
