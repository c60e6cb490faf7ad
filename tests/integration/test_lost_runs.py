"""A run whose execution dies is finished by the FinishLostRuns schedule once its thread's
lock lease ends. On the local stack the execution that dies right after StartRun is
played by invoking StartRun alone: the run is started remotely, and nothing drives it on;
an Express execution that outlives its five minutes by one whose limit is a second."""

from __future__ import annotations

import time

from local.aws import fire_schedule, service_limits
from local.openai_server import Step
from local.stack_session import LocalThreadline
from tests.integration.conftest import RunDriver
from threadline import runtime
from threadline.ids import new_id
from threadline.models import RunStatus
from threadline.threads.records import Thread


def end_lease(product: LocalThreadline, thread: Thread) -> None:
    """The thread's lock lease ends, as it would a run timeout and a margin later."""
    product.table.update_item(
        Key={"PK": f"USER#{thread.user_id}", "SK": f"THREAD#{thread.thread_id}"},
        UpdateExpression="SET lock_expires_at = :past, GSI2SK = :past",
        ExpressionAttributeValues={":past": int(time.time()) - 1},
    )


def test_a_run_whose_execution_died_after_starting_it_is_finished_and_its_thread_freed(
    driver: RunDriver,
) -> None:
    product = driver.product
    assert product.openai is not None
    thread = driver.new_thread()
    product.openai.script.push(Step.say("never seen").taking(600), key=thread.remote_id)
    run_id = new_id("run")
    product.stack.invoke(
        "StartRunFunction",
        {
            "run_id": run_id,
            "thread_id": thread.thread_id,
            "user_id": thread.user_id,
            "message": "Think for a long while",
            "tier": "express",
        },
    )
    runs = runtime.current().run_store()
    threads = runtime.current().thread_store()
    assert runs.get(thread.thread_id, run_id).remote_run_id is not None

    assert fire_schedule(product.stack, "FinishLostRunsFunction")["finished"] == 0, (
        "the lease has not ended: the run may still be going"
    )
    end_lease(product, thread)
    report = fire_schedule(product.stack, "FinishLostRunsFunction")

    assert report["finished"] == 1
    record = runs.get(thread.thread_id, run_id)
    assert record.status is RunStatus.FAILED
    assert "ExecutionLost" in (record.reason or "")
    assert threads.get(thread.user_id, thread.thread_id).active_run_id is None
    assert record.remote_run_id is not None
    remote = (
        product.openai.state.responses.get(record.remote_run_id)
        or (product.openai.state.runs[record.remote_run_id])
    )
    assert remote.body["status"] in ("cancelled", "cancelling"), "the remote run is stopped"

    product.openai.script.push(Step.say("back again"), key=thread.remote_id)
    _description, after = driver.run(thread, "Are you there?")
    assert after.status is RunStatus.COMPLETED


def test_a_run_whose_express_execution_timed_out_is_finished_and_its_thread_freed(
    driver: RunDriver,
) -> None:
    """No Express path outlives five minutes (tests/test_first_deploy.py adds up the worst):
    if one did, Step Functions would end it TIMED_OUT, the run unfinished."""
    product = driver.product
    assert product.openai is not None
    thread = driver.new_thread()
    product.openai.script.push(Step.say("never seen").taking(600), key=thread.remote_id)
    with service_limits.enforced(express_execution_seconds=1):
        execution = driver.start(thread, "Think for a long while", tier="express")
        assert product.wait_for_execution(execution, timeout=10)["status"] == "TIMED_OUT"
    run_id = execution.rsplit(":", 1)[1]
    runs = runtime.current().run_store()
    assert runs.get(thread.thread_id, run_id).status is RunStatus.IN_PROGRESS

    end_lease(product, thread)
    assert fire_schedule(product.stack, "FinishLostRunsFunction")["finished"] == 1

    record = runs.get(thread.thread_id, run_id)
    assert record.status is RunStatus.FAILED
    assert "ExecutionLost" in (record.reason or "")
    assert (
        runtime.current().thread_store().get(thread.user_id, thread.thread_id).active_run_id is None
    )
