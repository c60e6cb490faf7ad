from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from local.aws import LocalStack, provision
from local.aws.template import load_template
from tests.local_aws.conftest import REGION

REPO = Path(__file__).parents[2]
TEMPLATE = REPO / "template.yaml"
needs_the_product = pytest.mark.skipif(
    not (REPO / "functions" / "start_run" / "app.py").exists(),
    reason="the product's functions (functions/start_run/app.py, ...) are not written yet",
)


@needs_the_product
def test_the_real_template_provisions_in_moto(aws: None) -> None:
    stack = provision(TEMPLATE)

    declared = load_template(TEMPLATE)["Resources"]
    declared_functions = {
        logical_id
        for logical_id, resource in declared.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert set(stack.functions) == declared_functions
    stack.environment()  # raises if two functions disagree on a shared variable

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table = dynamodb.describe_table(TableName=stack.resources["Table"])["Table"]
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == [
        "ByActivity",
        "ByLockExpiry",
    ]
    ttl = dynamodb.describe_time_to_live(TableName=stack.resources["Table"])
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"

    s3 = boto3.client("s3", region_name=REGION)
    assert s3.get_bucket_versioning(Bucket=stack.resources["FilesBucket"])["Status"] == "Enabled"
    logging = s3.get_bucket_logging(Bucket=stack.resources["FilesBucket"])["LoggingEnabled"]
    assert logging["TargetBucket"] == stack.resources["AccessLogsBucket"]
    (access_logs,) = boto3.client("logs", region_name=REGION).describe_log_groups(
        logGroupNamePrefix=stack.resources["ApiAccessLogGroup"]
    )["logGroups"]
    assert access_logs["retentionInDays"] == 30

    # By default nothing reserves concurrency (a new account's quota of 10 has none to spare).
    assert _reserved_concurrency(stack) == {}

    sfn = boto3.client("stepfunctions", region_name=REGION)
    described = sfn.describe_state_machine(stateMachineArn=stack.state_machines["RunStateMachine"])
    definition = json.loads(described["definition"])
    invoked = {
        state.get("Parameters", {}).get("FunctionName", state["Resource"])
        for state in definition["States"].values()
        if "Resource" in state
    }
    assert invoked <= {spec.arn for spec in stack.functions.values()}
    assert all("${" not in str(value) for value in stack.outputs.values())


@needs_the_product
def test_api_concurrency_limit_reserves_the_request_facing_functions(aws: None) -> None:
    stack = provision(TEMPLATE, parameters={"ApiConcurrencyLimit": "5"})

    assert _reserved_concurrency(stack) == {"ApiFunction": 5, "OpenAIWebhookFunction": 5}


def _reserved_concurrency(stack: LocalStack) -> dict[str, int]:
    client = boto3.client("lambda", region_name=REGION)
    reserved = {
        logical_id: client.get_function_concurrency(FunctionName=spec.name).get(
            "ReservedConcurrentExecutions"
        )
        for logical_id, spec in stack.functions.items()
    }
    return {logical_id: value for logical_id, value in reserved.items() if value is not None}
