"""Start the workload's runs on the local stack the way the API does, and wait for them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bench.workload import QUESTION, WARM_UP, RunScript
from local.openai_server import OpenAIServer
from local.stack_session import LocalThreadline
from threadline import runtime
from threadline.ids import new_id
from threadline.threads.records import Thread

WAIT_MARGIN_S = 60.0  # beyond the runs' own deadline, before giving up on an execution


@dataclass(frozen=True)
class StackRun:
    script: RunScript
    user_id: str
    thread: Thread
    run_id: str


def local_server(product: LocalThreadline) -> OpenAIServer:
    if product.openai is None:
        raise SystemExit("the benchmark needs the local OpenAI server: unset OPENAI_API_KEY")
    return product.openai


def prepare_runs(product: LocalThreadline, scripts: list[RunScript]) -> list[StackRun]:
    """A user and a thread per run (as POST /threads makes them), with its turns scripted."""
    backend = runtime.current().backend()
    runs = []
    for script in scripts:
        user_id = new_id("user")
        thread, _created = (
            runtime.current()
            .thread_creator()
            .get_or_create(
                user_id,
                "bench",
                reuse_for=timedelta(hours=1),
                backend=backend.name,
                create_remote=backend.create_thread,
                delete_remote=backend.delete_thread,
            )
        )
        script.queue_on(local_server(product), thread.remote_id)
        runs.append(StackRun(script, user_id, thread, new_id("run")))
    return runs


def start_executions(product: LocalThreadline, runs: list[StackRun]) -> None:
    """Start one execution per run as the API does: named after the run, in the Express tier
    when it is on."""
    express = runtime.current().settings().express_tier_seconds > 0
    machine = "RunExpressStateMachine" if express else "RunStateMachine"
    for run in runs:
        product.sfn.start_execution(
            stateMachineArn=product.stack.state_machines[machine],
            name=run.run_id,
            input=json.dumps(
                {
                    "run_id": run.run_id,
                    "thread_id": run.thread.thread_id,
                    "user_id": run.user_id,
                    "message": QUESTION,
                    "tier": "express" if express else "standard",
                }
            ),
        )


def wait_for_runs(product: LocalThreadline, runs: list[StackRun]) -> list[dict[str, Any]]:
    """Each run's last execution's final description (they run concurrently: waiting for each
    in turn takes as long as the slowest)."""
    timeout = float(runtime.current().settings().run_timeout_seconds) + WAIT_MARGIN_S
    return [product.wait_for_run(run.run_id, timeout=timeout) for run in runs]


def run_histories(product: LocalThreadline, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """The history of each execution the run had, by state machine logical id."""
    histories = {}
    for machine in ("RunExpressStateMachine", "RunStateMachine"):
        try:
            histories[machine] = history(product, product.execution_of(machine, run_id))
        except product.sfn.exceptions.ExecutionDoesNotExist:
            continue
    return histories


def history(product: LocalThreadline, execution_arn: str) -> list[dict[str, Any]]:
    pages = product.sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return [event for page in pages for event in page["events"]]


def warm_up(product: LocalThreadline) -> None:
    """One unmeasured run through every task a measured run uses, so that the handlers are
    loaded (cold starts are measured on their own) before anything is timed."""
    warm_up_run = prepare_runs(product, [WARM_UP])
    start_executions(product, warm_up_run)
    wait_for_runs(product, warm_up_run)


def thread_locks_held(runs: list[StackRun]) -> int:
    """Threads whose record still names an active run (must be 0 once every run ended)."""
    store = runtime.current().thread_store()
    return sum(
        store.get(run.user_id, run.thread.thread_id).active_run_id is not None for run in runs
    )
