"""Table streams on the local stack: each write moto commits reaches the subscribed functions
once, in order, through their filters; a refused write streams nothing; a failed record is
retried from where it failed, then given up to the OnFailure destination."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.aws import Delivery, LocalStack, deliver_s3_notifications
from local.aws.atomic_dynamodb import atomic_item_writes
from local.aws.dynamodb_streams import deliver_table_streams
from tests.local_aws.conftest import FIXTURES, REGION, installed_stack


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with (
        atomic_item_writes(),
        installed_stack(FIXTURES / "event_sources.yaml", "streams", monkeypatch) as provisioned,
        deliver_table_streams(provisioned.event_sources),
        deliver_s3_notifications(provisioned) as sources,
    ):
        sources.retry_delays = (0.01,)
        yield provisioned


@pytest.fixture
def dynamodb() -> Any:
    return boto3.client("dynamodb", region_name=REGION)


def delivered_to(stack: LocalStack, function: str) -> list[Delivery]:
    stack.event_sources.wait_idle(10)
    return [d for d in stack.event_sources.deliveries() if d.function_logical_id == function]


def changes(delivery: Delivery) -> list[tuple[str, str, str | None, str | None]]:
    """(event name, key, old kind, new kind) of each record the function received."""
    return [
        (
            record["eventName"],
            record["dynamodb"]["Keys"]["PK"]["S"],
            record["dynamodb"].get("OldImage", {}).get("kind", {}).get("S"),
            record["dynamodb"].get("NewImage", {}).get("kind", {}).get("S"),
        )
        for record in delivery.event["Records"]
    ]


def put(table: str, key: str, kind: str) -> dict[str, Any]:
    return {"TableName": table, "Item": {"PK": {"S": key}, "kind": {"S": kind}}}


def test_each_committed_write_is_streamed_once_and_refused_ones_never(
    stack: LocalStack, dynamodb: Any
) -> None:
    table = stack.resources["ChangesTable"]
    dynamodb.put_item(**put(table, "a", "first"))
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.put_item(
            **put(table, "a", "again"), ConditionExpression="attribute_not_exists(PK)"
        )
    # moto writes b before it finds a's condition refused: neither may be streamed.
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": put(table, "b", "new")},
                {
                    "Put": {
                        **put(table, "a", "x"),
                        "ConditionExpression": "kind = :k",
                        "ExpressionAttributeValues": {":k": {"S": "nope"}},
                    }
                },
            ]
        )
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": put(table, "b", "second")},
            {"Delete": {"TableName": table, "Key": {"PK": {"S": "a"}}}},
        ]
    )

    first, committed = delivered_to(stack, "ChangesFunction")
    assert changes(first) == [("INSERT", "a", None, "first")]
    assert changes(committed) == [("INSERT", "b", None, "second"), ("REMOVE", "a", "first", None)]
    stream_arn = first.event["Records"][0]["eventSourceARN"]
    assert stream_arn.startswith(f"arn:aws:dynamodb:{REGION}:")
    assert "/stream/" in stream_arn


def test_a_filtered_subscription_gets_only_the_records_its_pattern_passes(
    stack: LocalStack, dynamodb: Any
) -> None:
    table = stack.resources["ChangesTable"]
    for key, kind in (("a", "unwanted"), ("b", "wanted"), ("c", "other")):
        dynamodb.put_item(**put(table, key, kind))

    (only,) = delivered_to(stack, "WantedChangesFunction")
    assert changes(only) == [("INSERT", "b", None, "wanted")]


def test_a_reported_failure_is_retried_from_that_record_then_given_up(
    stack: LocalStack, dynamodb: Any
) -> None:
    table = stack.resources["ChangesTable"]
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": put(table, "a", "fine")},
            {"Put": put(table, "b", "refused")},
            {"Put": put(table, "c", "fine")},
        ]
    )

    (delivery,) = delivered_to(stack, "ChangesFunction")
    assert delivery.attempts == 2  # MaximumRetryAttempts: 1
    assert changes(delivery) == [("INSERT", "b", None, "refused"), ("INSERT", "c", None, "fine")]
    assert delivery.on_failure is not None
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName=delivery.on_failure.rsplit(":", 1)[1])["QueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
    failure = json.loads(message["Body"])
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    info = failure["DDBStreamBatchInfo"]
    records = delivery.event["Records"]
    assert info["batchSize"] == 2
    assert info["startSequenceNumber"] == records[0]["dynamodb"]["SequenceNumber"]
