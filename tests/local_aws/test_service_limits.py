"""`service_limits.enforced()`: each of AWS's limits that moto does not check fails here as it
fails on AWS, just past the limit, and what is just inside it passes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local.aws import LocalStack, service_limits
from tests.local_aws.conftest import REGION

ROLE = "arn:aws:iam::123456789012:role/states"


@pytest.fixture
def limits() -> Iterator[None]:
    with service_limits.enforced(express_execution_seconds=1):
        yield


@pytest.fixture
def sfn(aws: None) -> Any:
    return boto3.client("stepfunctions", region_name=REGION)


def _machine(sfn: Any, name: str, states: dict[str, Any], machine_type: str = "STANDARD") -> str:
    definition = json.dumps({"StartAt": next(iter(states)), "States": states})
    created = sfn.create_state_machine(
        name=name, definition=definition, roleArn=ROLE, type=machine_type
    )
    return str(created["stateMachineArn"])


def _ended(sfn: Any, execution_arn: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (execution := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{execution_arn} still running"
        time.sleep(0.1)  # polling hard slows the execution (they share the interpreter)
    return dict(execution)


def _json_of_bytes(size: int) -> str:
    """A JSON object of exactly `size` bytes of UTF-8."""
    return json.dumps({"pad": "x" * (size - len('{"pad": ""}'))})


# -- Step Functions -------------------------------------------------------------------------


def test_an_execution_input_over_256_kb_is_refused(limits: None, stack: LocalStack) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = stack.state_machines["RunStateMachine"]
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=machine, input=_json_of_bytes(262_145))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "less than or equal to 262144" in refused.value.response["Error"]["Message"]

    # At the limit it starts; Prepare's output, a little larger, is over the state limit.
    started = sfn.start_execution(stateMachineArn=machine, input=_json_of_bytes(262_144))
    execution = _ended(sfn, started["executionArn"])
    assert (execution["status"], execution["error"]) == ("FAILED", "States.DataLimitExceeded")


def test_a_standard_execution_fails_at_its_25000th_history_event(limits: None, sfn: Any) -> None:
    machine = _machine(sfn, "loop", {"Again": {"Type": "Pass", "Next": "Again"}})
    execution_arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]

    execution = _ended(sfn, execution_arn)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "States.Runtime"
    assert execution["cause"] == (
        "The execution reached the maximum number of history events (25000)."
    )


def test_the_event_past_the_history_limit_is_not_recorded(aws: None, sfn: Any) -> None:
    """The whole history, at a limit short enough to read back quickly (25,000 events take
    moto seconds to return)."""
    machine = _machine(sfn, "loop", {"Again": {"Type": "Pass", "Next": "Again"}})
    with service_limits.enforced(history_events=40):
        execution_arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
        assert _ended(sfn, execution_arn)["cause"] == (
            "The execution reached the maximum number of history events (40)."
        )
    events = sfn.get_execution_history(executionArn=execution_arn)["events"]
    assert [event["id"] for event in events] == list(range(1, 41))
    assert [event["type"] for event in events[-3:]] == [
        "PassStateEntered",
        "PassStateExited",
        "ExecutionFailed",
    ]
    assert events[-1]["previousEventId"] == 39


def test_an_express_execution_times_out_at_its_limit(limits: None, sfn: Any) -> None:
    states = {"Sleep": {"Type": "Wait", "Seconds": 30, "End": True}}
    express = _machine(sfn, "sleepy-express", states, "EXPRESS")
    standard = _machine(sfn, "sleepy-standard", states)
    started = time.monotonic()
    express_arn = sfn.start_execution(stateMachineArn=express)["executionArn"]
    standard_arn = sfn.start_execution(stateMachineArn=standard)["executionArn"]

    assert _ended(sfn, express_arn)["status"] == "TIMED_OUT"
    assert time.monotonic() - started < 5
    assert sfn.describe_execution(executionArn=standard_arn)["status"] == "RUNNING"
    sfn.stop_execution(executionArn=standard_arn)


# -- Lambda ---------------------------------------------------------------------------------


def _invoke(stack: LocalStack, payload: str, invocation_type: str = "RequestResponse") -> Any:
    client = boto3.client("lambda", region_name=REGION)
    name = stack.functions["PrepareFunction"].name  # returns its event, so answers as large
    return client.invoke(FunctionName=name, Payload=payload, InvocationType=invocation_type)


@pytest.mark.parametrize(
    ("invocation_type", "limit"), [("RequestResponse", 6_291_456), ("Event", 1_048_576)]
)
def test_an_invoke_payload_over_its_limit_is_refused(
    limits: None, stack: LocalStack, invocation_type: str, limit: int
) -> None:
    with pytest.raises(ClientError) as refused:
        _invoke(stack, _json_of_bytes(limit + 1), invocation_type)
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error["Error"]["Message"] == (
        f"{limit + 1} byte payload is too large for the {invocation_type} invocation type "
        f"(limit {limit} bytes)"
    )
    answer = _invoke(stack, _json_of_bytes(limit), invocation_type)
    assert answer["StatusCode"] == (202 if invocation_type == "Event" else 200)


def test_a_response_over_6_mb_is_the_functions_error(limits: None, stack: LocalStack) -> None:
    answer = _invoke(stack, _json_of_bytes(6_291_456))  # echoed, with a few fields more

    assert answer["FunctionError"] == "Unhandled"
    assert json.loads(answer["Payload"].read()) == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size "
        "(6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }


# -- DynamoDB -------------------------------------------------------------------------------


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName="limits",
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def _refusal(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return error.value.response["Error"]["Code"], error.value.response["Error"]["Message"]


def _update(size: int) -> dict[str, Any]:
    """An update whose UpdateExpression is `size` bytes (padded with spaces, which it may)."""
    expression = "SET title = :title"
    return {
        "TableName": "limits",
        "Key": {"PK": {"S": "item"}},
        "UpdateExpression": expression + " " * (size - len(expression)),
        "ExpressionAttributeValues": {":title": {"S": "a title"}},
    }


def test_an_expression_over_4_kb_is_refused(limits: None, dynamodb: Any) -> None:
    dynamodb.update_item(**_update(4_096))
    with pytest.raises(ClientError) as refused:
        dynamodb.update_item(**_update(4_097))
    assert _refusal(refused) == (
        "ValidationException",
        "Invalid UpdateExpression: Expression size has exceeded the maximum allowed size; "
        "expression size: 4097",
    )

    # In a transaction too, whichever of its expressions it is.
    check = {
        "TableName": "limits",
        "Key": {"PK": {"S": "item"}},
        "ConditionExpression": "attribute_exists(PK)" + " " * 4_077,
    }
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=[{"ConditionCheck": check}])
    assert "Invalid ConditionExpression: Expression size has exceeded" in _refusal(refused)[1]


def _put(key: str, size: int) -> dict[str, Any]:
    return {"Put": {"TableName": "limits", "Item": {"PK": {"S": key}, "body": {"S": "x" * size}}}}


def test_a_transaction_takes_100_items_of_4_mb(limits: None, dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=[_put(f"item{n}", 40_000) for n in range(100)])
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=[_put(f"item{n}", 42_000) for n in range(100)])
    assert _refusal(refused) == (
        "ValidationException",
        "Transaction request cannot be larger than 4 MB",
    )

    gets = [{"Get": {"TableName": "limits", "Key": {"PK": {"S": f"item{n}"}}}} for n in range(101)]
    assert len(dynamodb.transact_get_items(TransactItems=gets[:100])["Responses"]) == 100
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_get_items(TransactItems=gets)
    assert "Member must have length less than or equal to 100" in _refusal(refused)[1]


def test_an_item_over_400_kb_is_refused_by_moto(dynamodb: Any) -> None:
    dynamodb.put_item(TableName="limits", Item={"PK": {"S": "item"}, "body": {"S": "x" * 400_000}})
    with pytest.raises(ClientError) as refused:
        dynamodb.put_item(
            TableName="limits", Item={"PK": {"S": "item"}, "body": {"S": "x" * 410_000}}
        )
    assert _refusal(refused) == (
        "ValidationException",
        "Item size has exceeded the maximum allowed size",
    )
    with pytest.raises(ClientError) as refused:
        dynamodb.update_item(
            TableName="limits",
            Key={"PK": {"S": "item"}},
            UpdateExpression="SET more = :more",
            ExpressionAttributeValues={":more": {"S": "x" * 10_000}},
        )
    assert _refusal(refused) == (
        "ValidationException",
        "Item size to update has exceeded the maximum allowed size",
    )


def test_every_check_is_undone_on_exit(aws: None) -> None:
    patched = service_limits._patches(
        service_limits.EXPRESS_EXECUTION_SECONDS, service_limits.HISTORY_EVENTS
    )
    before = [owner.__dict__[name] for owner, name, _wrap in patched]
    with service_limits.enforced():
        assert all(
            owner.__dict__[name] is not original
            for (owner, name, _wrap), original in zip(patched, before, strict=True)
        )
    assert [owner.__dict__[name] for owner, name, _wrap in patched] == before


def test_an_sqs_message_over_1_mib_is_refused_by_moto(aws: None) -> None:
    """SQS takes messages of up to 1 MiB (256 KB before August 2025): moto checks it."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="limits")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x" * 1_048_576)
    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1_048_577)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
