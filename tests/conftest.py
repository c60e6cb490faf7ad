"""Shared fixtures: a moto-backed table created from template.yaml's own definition."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.aws.atomic_dynamodb import atomic_item_writes
from local.aws.template import load_template

REPO = Path(__file__).resolve().parent.parent

# Never reach real AWS from tests, whatever the machine's configuration says.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="Threadline",
    POWERTOOLS_SERVICE_NAME="threadline",
)
os.environ.pop("OPENAI_API_KEY", None)


def template() -> dict[str, Any]:
    return load_template(REPO / "template.yaml")


def table_properties() -> dict[str, Any]:
    return template()["Resources"]["Table"]["Properties"]


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws(), atomic_item_writes():
        yield


@pytest.fixture
def table(aws: None) -> Any:
    """The Threadline table as template.yaml declares it (keys, GSIs), in moto."""
    properties = table_properties()
    client = boto3.client("dynamodb")
    client.create_table(
        TableName="threadline-test",
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
        BillingMode=properties["BillingMode"],
    )
    return boto3.resource("dynamodb").Table("threadline-test")
