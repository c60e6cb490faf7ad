from __future__ import annotations

import json

from local.aws import LocalStack
from tests.local_aws.conftest import REGION
from tests.local_aws.executions import history, run_to_end


def _run(stack: LocalStack, execution_input: dict[str, object], name: str) -> dict[str, object]:
    return run_to_end(stack.state_machines["RunStateMachine"], execution_input, name, REGION)


def _finish_attempts(execution_arn: str) -> int:
    return sum(
        1
        for event in history(execution_arn, REGION)
        if event["type"] == "LambdaFunctionScheduled"
        and "FinishFunction" in event["lambdaFunctionScheduledEventDetails"]["resource"]
    )


def test_execution_runs_end_to_end_through_the_handlers(stack: LocalStack) -> None:
    execution = _run(stack, {"run_id": "happy"}, "happy")

    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["run_id"] == "happy"
    assert output["role"] == "finish"
    assert output["attempts"] == 1
    entered = [
        event["stateEnteredEventDetails"]["name"]
        for event in history(execution["executionArn"], REGION)
        if "stateEnteredEventDetails" in event
    ]
    assert entered == ["Prepare", "Route", "Pause", "Finish"]


def test_choice_default_skips_the_rest(stack: LocalStack) -> None:
    execution = _run(stack, {"run_id": "skip", "skip": True}, "skip")

    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["next"] == "skip"
    assert _finish_attempts(execution["executionArn"]) == 0


def test_retry_matches_the_exception_class_name(stack: LocalStack) -> None:
    execution = _run(stack, {"run_id": "retried", "transient_failures": 1}, "retried")

    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["attempts"] == 2
    assert _finish_attempts(execution["executionArn"]) == 2


def test_catch_takes_over_once_retries_are_exhausted(stack: LocalStack) -> None:
    execution = _run(stack, {"run_id": "exhausted", "transient_failures": 9}, "exhausted")

    assert execution["status"] == "SUCCEEDED"
    error = json.loads(execution["output"])["error"]
    assert error["Error"] == "TransientBackendError"
    assert json.loads(error["Cause"])["errorMessage"] == "attempt 3 of run exhausted failed"
    assert _finish_attempts(execution["executionArn"]) == 3  # first try + MaxAttempts 2


def test_other_errors_are_caught_without_retry(stack: LocalStack) -> None:
    execution = _run(stack, {"run_id": "broken", "fail_with": "bad input"}, "broken")

    error = json.loads(execution["output"])["error"]
    assert error["Error"] == "ValueError"
    assert _finish_attempts(execution["executionArn"]) == 1


def test_decimal_result_fails_the_task_as_marshal_error(stack: LocalStack) -> None:
    execution = _run(stack, {"run_id": "decimal", "return_decimal": True}, "decimal")

    assert json.loads(execution["output"])["error"]["Error"] == "Runtime.MarshalError"
