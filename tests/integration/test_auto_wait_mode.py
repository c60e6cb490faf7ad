"""RunWaitMode auto, the default: a run reads the webhook secret with its own role and,
finding a signing secret there, sleeps until OpenAI's webhook instead of polling.

Its own module: it needs a stack in auto mode, and stacks must not overlap.
"""

from __future__ import annotations

from local.openai_server import Step
from local.stack_session import local_threadline
from tests.integration.conftest import RunDriver
from threadline.ids import new_id


def test_a_stack_with_a_webhook_secret_waits_for_webhooks() -> None:
    with local_threadline(parameters={"RunWaitMode": "auto"}) as product:
        assert product.openai is not None
        driver = RunDriver(product=product, user_id=new_id("user"))
        thread = driver.new_thread()
        product.openai.script.push(Step.say("woken"), key=thread.remote_id)

        description, run = driver.run(thread, "Hello?")

        assert description["status"] == "SUCCEEDED"
        assert run.output_text == "woken"
        states = product.entered_states(description["executionArn"])
        assert "WaitForWebhook" in states
        assert "CheckRun" not in states, "the webhook woke the run: no check"
        assert product.iam is not None
        reads = [
            decision
            for decision in product.iam.decisions
            if decision.action == "secretsmanager:GetSecretValue"
            and "openai-webhook-secret" in decision.resource
        ]
        assert {decision.result for decision in reads} == {"Allowed"}
        assert "StartRunFunction" in {decision.principal for decision in reads}
