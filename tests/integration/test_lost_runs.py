"""A run whose execution dies is finished by the FinishLostRuns schedule once its thread's
lock lease ends. On the local stack the execution that dies right after StartRun is
played by invoking StartRun alone: the run is started remotely, and nothing drives it on."""

from __future__ import annotations

import time

from local.aws import fire_schedule
from local.openai_server import Step
from tests.integration.conftest import RunDriver
from threadline import runtime
from threadline.ids import new_id
from threadline.models import RunStatus


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
    # Its lease ends (as it would a run timeout and a margin later).
    product.table.update_item(
        Key={"PK": f"USER#{thread.user_id}", "SK": f"THREAD#{thread.thread_id}"},
        UpdateExpression="SET lock_expires_at = :past, GSI2SK = :past",
        ExpressionAttributeValues={":past": int(time.time()) - 1},
    )
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
