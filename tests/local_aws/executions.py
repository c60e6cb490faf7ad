"""Step Functions helpers for tests: run an execution to its end, clean up running ones."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from local.aws import LocalStack


def run_to_end(
    state_machine_arn: str, execution_input: dict[str, Any], name: str, region: str
) -> dict[str, Any]:
    """Start an execution and poll (bounded, tiny sleeps) until it is no longer RUNNING."""
    sfn = boto3.client("stepfunctions", region_name=region)
    execution_arn = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input)
    )["executionArn"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        execution = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            return execution
        time.sleep(0.02)
    raise AssertionError(f"execution {name} still running after 20 s")


def stop_running_executions(stack: LocalStack) -> None:
    # Executions still running when the mock ends fail noisily in moto's worker threads.
    sfn = boto3.client("stepfunctions", region_name=stack.region)
    for state_machine_arn in stack.state_machines.values():
        running = sfn.list_executions(stateMachineArn=state_machine_arn, statusFilter="RUNNING")
        for execution in running["executions"]:
            sfn.stop_execution(executionArn=execution["executionArn"])


def history(execution_arn: str, region: str) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions", region_name=region)
    return sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
