from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from local.aws import LocalStack, UnsupportedResource, provision
from local.aws.records import HttpRoute, S3Subscription, ScheduleSpec
from tests.local_aws.conftest import FIXTURES, REGION


def test_table_is_created_with_its_keys_index_and_ttl(stack: LocalStack) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table_name = stack.resources["Table"]
    table = dynamodb.describe_table(TableName=table_name)["Table"]

    assert table_name.startswith("fixture-Table-")
    assert table["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "ByOwner"
    assert index["KeySchema"] == [{"AttributeName": "OwnerId", "KeyType": "HASH"}]
    assert index["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["title"]}
    ttl = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_bucket_is_created_versioned_and_usable_despite_its_transport_policy(
    stack: LocalStack,
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    bucket = stack.resources["Bucket"]

    assert bucket == "fixture-test-123456789012"  # BucketName: fixture-${Stage}-${AWS::AccountId}
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    s3.put_object(Bucket=bucket, Key="probe.txt", Body=b"ok")
    assert s3.get_object(Bucket=bucket, Key="probe.txt")["Body"].read() == b"ok"


def test_globals_are_merged_into_each_function(stack: LocalStack) -> None:
    prepare = stack.functions["PrepareFunction"]
    finish = stack.functions["FinishFunction"]

    assert prepare.environment == {
        "TABLE_NAME": stack.resources["Table"],
        "BUCKET_NAME": stack.resources["Bucket"],
        "GREETING": "hello",
        "RETENTION_DAYS": "7",
        "STAGE_LABEL": "testing",
        "PREPARE_ONLY": "yes",
    }
    assert "PREPARE_ONLY" not in finish.environment
    assert (prepare.timeout, prepare.memory) == (10, 256)
    assert (finish.timeout, finish.memory) == (20, 256)
    configuration = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=finish.name
    )
    assert configuration["Runtime"] == "python3.13"
    assert configuration["Timeout"] == 20
    assert configuration["Environment"]["Variables"] == dict(finish.environment)
    assert configuration["FunctionArn"] == finish.arn


def test_parameter_overrides_flow_into_conditions_and_environment(aws: None) -> None:
    stack = provision(FIXTURES / "template.yaml", parameters={"Stage": "prod", "Greeting": "hi"})

    environment = stack.functions["PrepareFunction"].environment
    assert environment["GREETING"] == "hi"
    assert environment["STAGE_LABEL"] == "production"
    assert "TestOnly" not in stack.outputs


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"Stage": "staging"}, "is not one of"),
        ({"RetentionDays": "0"}, "is below"),
        ({"Unknown": "x"}, "no parameters named"),
    ],
)
def test_invalid_parameters_are_refused(
    aws: None, parameters: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        provision(FIXTURES / "template.yaml", parameters=parameters)


def test_outputs_are_resolved(stack: LocalStack) -> None:
    api_id = stack.http_apis["Api"].api_id
    assert stack.outputs == {
        "TableName": stack.resources["Table"],
        "ApiUrl": f"https://{api_id}.execute-api.us-east-1.amazonaws.com/test",
        "FinishFunctionArn": stack.functions["FinishFunction"].arn,
        "TestOnly": "fixture-only-test",
    }


def test_state_machine_is_created_with_its_substitutions(stack: LocalStack) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    described = sfn.describe_state_machine(stateMachineArn=stack.state_machines["RunStateMachine"])

    assert stack.functions["PrepareFunction"].arn in described["definition"]
    assert stack.functions["FinishFunction"].arn in described["definition"]
    assert "${" not in described["definition"]
    assert described["type"] == "STANDARD"


def test_function_triggers_are_recorded(stack: LocalStack) -> None:
    assert sorted(stack.http_routes, key=lambda route: route.path) == [
        HttpRoute("GET", "/health", "UploadFunction", "Api", authorizer=None),
        HttpRoute("POST", "/runs/{run_id}/finish", "FinishFunction", "Api", authorizer="Jwt"),
    ]
    assert {route.path: route.auth_required for route in stack.http_routes} == {
        "/health": False,
        "/runs/{run_id}/finish": True,
    }
    authorizer = stack.http_apis["Api"].authorizers["Jwt"]
    assert authorizer.issuer == "https://issuer.example.com"
    assert authorizer.audience == ("threadline",)
    (nightly,) = stack.schedules
    assert nightly == ScheduleSpec(
        function_logical_id="FinishFunction",
        event_name="Nightly",
        source="aws.events",
        resource_arn=nightly.resource_arn,
        expression="rate(1 day)",
        input='{"run_id": "nightly"}',
        enabled=True,
    )
    assert nightly.resource_arn.startswith(f"arn:aws:events:{REGION}:123456789012:rule/")
    assert stack.s3_subscriptions == [
        S3Subscription(
            "UploadFunction",
            "BucketNotification0",
            stack.resources["Bucket"],
            ("s3:ObjectCreated:*",),
            prefix="uploads/",
            suffix=".csv",
        )
    ]


def test_environment_refuses_conflicting_values(stack: LocalStack) -> None:
    finish = stack.functions["FinishFunction"]
    stack.functions["FinishFunction"] = replace(
        finish, environment={**finish.environment, "GREETING": "bye"}
    )

    with pytest.raises(ValueError, match="GREETING"):
        stack.environment()


def _write_template(directory: Path, resources: str) -> Path:
    path = directory / "template.yaml"
    path.write_text(
        'AWSTemplateFormatVersion: "2010-09-09"\n'
        "Transform: AWS::Serverless-2016-10-31\n"
        f"Resources:\n{resources}"
    )
    return path


def test_unsupported_resource_type_is_named_before_anything_is_created(
    aws: None, tmp_path: Path
) -> None:
    template = _write_template(
        tmp_path,
        "  Table:\n"
        "    Type: AWS::DynamoDB::Table\n"
        "    Properties:\n"
        "      AttributeDefinitions: [{AttributeName: PK, AttributeType: S}]\n"
        "      KeySchema: [{AttributeName: PK, KeyType: HASH}]\n"
        "      BillingMode: PAY_PER_REQUEST\n"
        "  Jobs:\n"
        "    Type: AWS::Kinesis::Stream\n",
    )

    with pytest.raises(
        UnsupportedResource, match=r"Jobs: resource type AWS::Kinesis::Stream"
    ) as error:
        provision(template)
    assert (error.value.logical_id, error.value.resource_type) == (
        "Jobs",
        "resource type AWS::Kinesis::Stream",
    )
    assert boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"] == []


def test_missing_handler_file_fails_loudly(aws: None, tmp_path: Path) -> None:
    (tmp_path / "functions" / "empty").mkdir(parents=True)
    template = _write_template(
        tmp_path,
        "  EmptyFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      CodeUri: functions/empty/\n"
        "      Handler: app.handler\n"
        "      Runtime: python3.13\n",
    )

    with pytest.raises(
        FileNotFoundError, match=r"EmptyFunction: handler app.handler needs .*app.py"
    ):
        provision(template)


def test_provision_refuses_to_run_without_moto(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(RuntimeError, match="moto"):
        provision(_write_template(tmp_path, "  Topic:\n    Type: AWS::SNS::Topic\n"))
