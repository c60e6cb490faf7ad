"""Faults of the platform around a run, on a stack that starts runs in the Express tier (a
2 s stretch) and hands them to the Standard one, in push mode with webhooks:

- An execution environment of any step dies (out of memory: Lambda.Unknown), before its work
  or after it (the work done, the answer lost), or runs out of time (Sandbox.Timedout, its
  work done): the step is retried (in the Express tier, one that timed out goes on in
  Standard), and the run completes as if nothing had happened - its message once in the
  thread, each token counted once, its thread released.
- A deploy while runs are going: an execution keeps the definition it started with and calls
  the functions' new code; a run the Express tier hands on crosses into the Standard
  machine's new definition. The run starts on the definitions of the last landed release
  (`tests/fixtures/released/`, refreshed when a release lands) and the stack is redeployed
  with the current ones while it runs."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.aws.lambda_runtime import Death
from local.openai_server import Step
from local.stack_session import LocalThreadline, local_threadline
from tests.conftest import REPO
from tests.integration.conftest import RunDriver
from tests.integration.run_checks import assert_completed_cleanly
from threadline import runtime
from threadline.errors import NotFoundError

# Every task of the Express tier, and ProcessToolCalls and FinishRun after the hand-off (the
# push wait's WaitForWebhook is left out: a death after its work leaves the wait to its timeout).
STEPS = (
    "StartRunFunction",
    "CheckRunFunction",
    "ProcessToolCallsFunction",
    "HandOffRunFunction",
    "FinishRunFunction",
)
RELEASED = REPO / "tests" / "fixtures" / "released"
CURRENT = REPO / "statemachine"
DEFINITIONS = {"RunStateMachine": "run.asl.json", "RunExpressStateMachine": "run_express.asl.json"}


@pytest.fixture(scope="module")
def product() -> Iterator[LocalThreadline]:
    parameters = {"Backend": "responses", "ExpressTierSeconds": "2", "RunWaitMode": "push"}
    with local_threadline(parameters=parameters, webhooks=True) as session:
        yield session


@pytest.mark.parametrize("when", ["before_work", "after_work", "timed_out"])
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
    # A StartRun that timed out in the Express tier goes on in Standard at once, where the
    # webhook wakes the run: no CheckRun runs.
    ran = [step for step in STEPS if when != "timed_out" or step != "CheckRunFunction"]
    for logical_id in ran:
        product.lambda_deaths.plan(product.stack.function(logical_id).name, when)
    execution = product.start_run(thread.thread_id, driver.user_id, "How many?", tier="express")
    run_id = execution.rsplit(":", 1)[1]
    product.wait_for_run(run_id)
    assert server.flush_webhooks()

    died = {name for name, death in product.lambda_deaths.died if death == when}
    assert died == {product.stack.function(logical_id).name for logical_id in ran}
    assert_completed_cleanly(server, thread, run_id, question="How many?", answer="42")


def deploy(product: LocalThreadline, definitions: Path) -> None:
    """Update both run state machines to the definitions in `definitions`, as a deploy does."""
    for logical_id, filename in DEFINITIONS.items():
        definition = re.sub(
            r"\$\{(\w+Function)Arn\}",
            lambda match: product.stack.function(match.group(1)).arn,
            (definitions / filename).read_text(),
        ).replace("${Partition}", "aws")
        product.sfn.update_state_machine(
            stateMachineArn=product.stack.state_machines[logical_id], definition=definition
        )


def wait_until_started(thread_id: str, run_id: str) -> None:
    """Until StartRun has started the model: the run is going."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(NotFoundError):
            if runtime.current().run_store().get(thread_id, run_id).remote_run_id:
                return
        time.sleep(0.02)
    raise TimeoutError(f"run {run_id} did not start")


def test_a_run_started_before_a_deploy_finishes_after_it(driver: RunDriver) -> None:
    product = driver.product
    server = product.openai
    assert server is not None
    thread = driver.new_thread()
    server.script.extend(
        [Step.call("get_table_schema", {"table_name": "sales"}).taking(1), Step.say("42")],
        key=thread.remote_id,
    )
    deploy(product, RELEASED)
    try:
        execution = product.start_run(thread.thread_id, driver.user_id, "How many?", tier="express")
        run_id = execution.rsplit(":", 1)[1]
        wait_until_started(thread.thread_id, run_id)
    finally:
        deploy(product, CURRENT)
    product.wait_for_run(run_id)
    assert server.flush_webhooks()

    assert_completed_cleanly(server, thread, run_id, question="How many?", answer="42")
