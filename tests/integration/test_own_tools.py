"""An assistant's own tools on the local stack: a Lambda tool runs in its own function, from
the template, and its answers and failures reach the model."""

from __future__ import annotations

from local.openai_server import Step
from tests.integration.conftest import RunDriver
from threadline.models import RunStatus


def test_a_lambda_tool_runs_in_its_own_function(driver: RunDriver) -> None:
    thread = driver.new_thread()
    driver.product.openai.script.push(
        Step.calls(
            [
                ("get_sales_target", {"region": "North", "year": 2027, "quarter": 4}),
                ("get_sales_target", {"region": "Atlantis", "year": 2027, "quarter": 4}),
            ]
        ),
        key=thread.remote_id,
    )

    description, run = driver.run(thread, "How does the North compare with its target?")

    assert description["status"] == "SUCCEEDED", description
    assert run.status is RunStatus.COMPLETED
    answered, failed = run.tool_calls
    assert (answered.name, answered.is_error) == ("get_sales_target", False)
    assert failed.is_error is True
    # 42,000 for a quarter of 2026, weighted 1.1 for a fourth quarter, grown 5 % a year.
    assert "48510.0" in (run.output_text or "")
    assert "ValueError: no target is set for region 'Atlantis'" in (run.output_text or "")
