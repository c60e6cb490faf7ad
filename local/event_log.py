"""Threadline's events as an operator would receive them, kept in a file: a rule on the
stack's event bus sends every `threadline` event to an SQS queue, and a thread appends each
one it receives to a JSON-lines file (`make serve` keeps `.local/events.jsonl`, which
`make events` follows)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import boto3

from local.aws import LocalStack

_NAME = "local-event-log"


@contextmanager
def event_log(stack: LocalStack, path: Path, *, poll_seconds: float = 0.2) -> Iterator[None]:
    """While active, every event on the stack's bus is appended to `path` as one JSON line."""
    sqs = boto3.client("sqs")
    events = boto3.client("events")
    url = sqs.create_queue(QueueName=_NAME)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    bus = stack.resources["EventBus"]
    pattern = json.dumps({"source": ["threadline"]})
    events.put_rule(Name=_NAME, EventBusName=bus, EventPattern=pattern)
    events.put_targets(
        Rule=_NAME, EventBusName=bus, Targets=[{"Id": "log", "Arn": arn["QueueArn"]}]
    )
    stop = threading.Event()

    def drain(log: TextIO) -> None:
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                log.write(json.dumps(json.loads(message["Body"])) + "\n")
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        log.flush()

    def append() -> None:
        with path.open("a") as log:
            while not stop.wait(poll_seconds):
                drain(log)
            drain(log)  # what arrived before the stop

    worker = threading.Thread(target=append, name="event-log", daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join()
