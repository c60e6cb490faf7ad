"""moto's DynamoDB under concurrent use, as the local stack runs it: a read never sees an item
half written by another thread's update (moto serialises its live item after the read)."""

from __future__ import annotations

import threading
from typing import Any

import boto3

from local.aws.atomic_dynamodb import atomic_item_writes
from tests.local_aws.conftest import REGION

WRITES = 120
KEY = {"PK": {"S": "run"}}


def test_reads_during_writes_see_whole_items(aws: None) -> None:
    client = boto3.client("dynamodb", region_name=REGION)
    errors: list[BaseException] = []
    with atomic_item_writes():
        client.create_table(
            TableName="items",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName="items", Item={**KEY, "approvals": {"M": {}}})
        writing = threading.Event()

        def write() -> None:
            writing.set()
            for index in range(WRITES):  # each write adds an entry to the map
                client.update_item(
                    TableName="items",
                    Key=KEY,
                    UpdateExpression="SET approvals.#call = :entry",
                    ExpressionAttributeNames={"#call": f"call_{index}"},
                    ExpressionAttributeValues={":entry": {"M": {"n": {"N": str(index)}}}},
                )

        def read() -> None:
            writing.wait(5)
            while writer.is_alive():
                try:
                    item: dict[str, Any] = client.get_item(TableName="items", Key=KEY)["Item"]
                    assert all("n" in entry["M"] for entry in item["approvals"]["M"].values())
                except BaseException as error:
                    errors.append(error)
                    return

        writer = threading.Thread(target=write)
        readers = [threading.Thread(target=read) for _ in range(3)]
        for thread in [writer, *readers]:
            thread.start()
        for thread in [writer, *readers]:
            thread.join(timeout=60)
        final = client.get_item(TableName="items", Key=KEY)["Item"]

    assert errors == []
    assert len(final["approvals"]["M"]) == WRITES
