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
from typing import Any, TextIO

import boto3

from local.aws import LocalStack


class EventQueue:
    """An SQS queue that a rule on the stack's bus sends every Threadline event to, as an
    operator subscribes."""

    def __init__(self, stack: LocalStack, name: str) -> None:
        self._sqs = boto3.client("sqs")
        self._url = self._sqs.create_queue(QueueName=name)["QueueUrl"]
        queue = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])
        queue_arn = queue["Attributes"]["QueueArn"]
        bus = stack.resources["EventBus"]
        events = boto3.client("events")
        pattern = json.dumps({"source": ["threadline"]})
        rule_arn = events.put_rule(Name=name, EventBusName=bus, EventPattern=pattern)["RuleArn"]
        # EventBridge sends to a queue only where the queue's policy lets it, for the rule.
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
        self._sqs.set_queue_attributes(
            QueueUrl=self._url, Attributes={"Policy": json.dumps(policy)}
        )
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])

    def take(self) -> list[dict[str, Any]]:
        """The events that arrived since the last take, oldest first."""
        taken = []
        while messages := self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10).get(
            "Messages"
        ):
            for message in messages:
                taken.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return taken


@contextmanager
def event_log(stack: LocalStack, path: Path, *, poll_seconds: float = 0.2) -> Iterator[None]:
    """While active, every event on the stack's bus is appended to `path` as one JSON line."""
    queue = EventQueue(stack, "local-event-log")
    stop = threading.Event()

    def drain(log: TextIO) -> None:
        log.writelines(json.dumps(event) + "\n" for event in queue.take())
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
