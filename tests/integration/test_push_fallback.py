"""Push mode's safety net: a lost webhook delays a run, never strands it.

Its own module: it needs a stack whose webhook wait is short, and stacks must not overlap.
"""

from __future__ import annotations

from local.openai_server import Step
from local.stack_session import local_threadline
from tests.integration.conftest import RunDriver
from threadline.ids import new_id


def test_lost_webhook_falls_back_to_one_check() -> None:
    with local_threadline(
        parameters={"RunWaitMode": "push", "WebhookWaitSeconds": "1"}
    ) as short_wait:
        openai = short_wait.openai
        openai.webhook_sender = lambda url, body, headers: None  # every webhook is lost
        driver = RunDriver(product=short_wait, user_id=new_id("user"))
        thread = driver.new_thread()
        openai.script.push(Step.say("found anyway"), key=thread.remote_id)
        description, run = driver.run(thread, "Anyone?")
        assert description["status"] == "SUCCEEDED"
        assert run.output_text == "found anyway"
        states = short_wait.entered_states(description["executionArn"])
        assert "CheckRun" in states, "the wait timed out and the machine checked the run"
