"""A run goes on when the execution environment of any of its steps dies (out of memory or
time: Lambda.Unknown), before its work or after it (the work done, the answer lost): the
step is retried, and the run completes as if nothing had happened - its message once in the
thread, each token counted once, its thread released. Runs start in the Express tier and are
handed to the Standard one, in push mode with webhooks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.aws.lambda_runtime import Death
from local.openai_server import Step
from local.stack_session import LocalThreadline, local_threadline
from tests.integration.conftest import RunDriver
from tests.integration.run_checks import assert_completed_cleanly

# Every task the run passes through, in the Express tier and after its hand-off.
STEPS = (
    "StartRunFunction",
    "CheckRunFunction",
    "ProcessToolCallsFunction",
    "HandOffRunFunction",
    "FinishRunFunction",
)


@pytest.fixture(scope="module")
def product() -> Iterator[LocalThreadline]:
    parameters = {"Backend": "responses", "ExpressTierSeconds": "2", "RunWaitMode": "push"}
    with local_threadline(parameters=parameters, webhooks=True) as session:
        yield session


@pytest.mark.parametrize("when", ["before_work", "after_work"])
def test_a_run_survives_an_environment_dying_at_each_step(driver: RunDriver, when: Death) -> None:
    product = driver.product
    server = product.openai
    assert server is not None
    thread = driver.new_thread()
    # Tools asked for in the Express stretch's last minute (all of a 2 s one) run after the
    # hand-off: the run passes through every step.
    server.script.extend(
        [Step.call("get_table_schema", {"table_name": "sales"}), Step.say("42")],
        key=thread.remote_id,
    )
    for logical_id in STEPS:
        product.lambda_deaths.plan(product.stack.function(logical_id).name, when)
    execution = product.start_run(thread.thread_id, driver.user_id, "How many?", tier="express")
    run_id = execution.rsplit(":", 1)[1]
    product.wait_for_run(run_id)
    assert server.flush_webhooks()

    died = {name for name, death in product.lambda_deaths.died if death == when}
    assert died == {product.stack.function(logical_id).name for logical_id in STEPS}
    assert_completed_cleanly(server, thread, run_id, question="How many?", answer="42")
