"""Meter the product's AWS usage with botocore event hooks: every DynamoDB request (with its
estimated request units), every event put on EventBridge and every Lambda invocation (with
the duration the in-process Lambda runtime reports in the log tail the meter asks for),
whichever code makes them - handlers, Step Functions tasks, webhooks, the table's stream.

The hooks go on the default boto3 session and into botocore's built-in handlers, so sessions
created while they are installed get them too (Step Functions' interpreter and Powertools
idempotency make their own). DynamoDB units assume items of at most 1 KB written and 4 KB
read: one write unit per item written (two in a transaction), one read unit per strongly
consistent read or query page, half for an eventually consistent one.
"""

from __future__ import annotations

import base64
import math
import re
import statistics
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.handlers
from botocore.model import OperationModel

from bench.measurements import DynamoDBUsage, LambdaUsage

DYNAMODB_REQUEST = "before-parameter-build.dynamodb"
LAMBDA_REQUEST = "before-parameter-build.lambda.Invoke"
LAMBDA_RESPONSE = "after-call.lambda.Invoke"
EVENTS_PUT = "before-parameter-build.events.PutEvents"
REPORTED_DURATION = re.compile(r"^REPORT .*\bDuration: ([0-9.]+) ms", re.MULTILINE)
TRANSACTION_FACTOR = 2
READS = {"GetItem", "Query", "Scan"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem"}


class AwsMeter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counting = False
        self._dynamodb_calls: Counter[str] = Counter()
        self._read_units = 0.0
        self._write_units = 0.0
        self._lambda_billed_ms: dict[str, list[int]] = {}  # by function name
        self._unreported_invocations = 0  # no REPORT line: not run by the in-process runtime
        self._events_put = 0  # EventBridge entries (each under 64 KB: one billed event)

    @contextmanager
    def window(self) -> Iterator[None]:
        """Count only the requests made while the window is open."""
        with self._lock:
            self._counting = True
        try:
            yield
        finally:
            with self._lock:
                self._counting = False

    def record_dynamodb(self, params: dict[str, Any], model: OperationModel, **_: Any) -> None:
        read_units, write_units = _units(model.name, params)
        with self._lock:
            if self._counting:
                self._dynamodb_calls[model.name] += 1
                self._read_units += read_units
                self._write_units += write_units

    def record_events(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            if self._counting:
                self._events_put += len(params.get("Entries", []))

    def events_per_run(self, runs: int) -> float:
        with self._lock:
            return self._events_put / runs

    @staticmethod
    def prepare_invoke(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        """Note the function, and ask for the log tail: its REPORT line has the duration. An
        asynchronous invocation is metered when it runs (the local runtime invokes it again)."""
        context["bench_function_name"] = str(params["FunctionName"]).rsplit(":", 1)[-1]
        context["bench_asynchronous"] = params.get("InvocationType") == "Event"
        params["LogType"] = "Tail"

    def record_lambda(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get("bench_asynchronous"):
            return
        logs = base64.b64decode(parsed.get("LogResult") or b"").decode(errors="replace")
        reported = REPORTED_DURATION.search(logs)
        with self._lock:
            if not self._counting:
                return
            if reported is None:
                self._unreported_invocations += 1
                return
            billed_ms = max(1, math.ceil(float(reported.group(1))))  # Lambda bills whole ms
            self._lambda_billed_ms.setdefault(context["bench_function_name"], []).append(billed_ms)

    def dynamodb_per_run(self, runs: int) -> DynamoDBUsage:
        with self._lock:
            return DynamoDBUsage(
                calls={
                    name: round(count / runs, 3)
                    for name, count in sorted(self._dynamodb_calls.items())
                },
                read_units=round(self._read_units / runs, 3),
                write_units=round(self._write_units / runs, 3),
            )

    def lambda_per_run(self, runs: int, functions: Mapping[str, tuple[str, int]]) -> LambdaUsage:
        """`functions` maps a deployed function name to (logical id, memory in MB)."""
        with self._lock:
            billed = {name: list(values) for name, values in self._lambda_billed_ms.items()}
            unreported = self._unreported_invocations
        return LambdaUsage(
            unreported_invocations=unreported,
            requests=sum(len(values) for values in billed.values()) / runs,
            gb_seconds=sum(
                sum(values) / 1000 * functions[name][1] / 1024 for name, values in billed.items()
            )
            / runs,
            invocations={functions[name][0]: len(values) / runs for name, values in billed.items()},
            billed_ms_median={
                functions[name][0]: statistics.median(values) for name, values in billed.items()
            },
        )


def _units(operation: str, params: dict[str, Any]) -> tuple[float, float]:
    """(read units, write units) of one request."""
    if operation in READS:
        return (1.0 if params.get("ConsistentRead") else 0.5), 0.0
    if operation in WRITES:
        return 0.0, 1.0
    transaction_items = TRANSACTION_FACTOR * len(params.get("TransactItems", []))
    batch = params.get("RequestItems", {}).values()
    units = {
        "TransactWriteItems": (0.0, transaction_items),
        "TransactGetItems": (transaction_items, 0.0),
        "BatchWriteItem": (0.0, sum(len(requests) for requests in batch)),
        "BatchGetItem": (sum(len(request.get("Keys", [])) for request in batch), 0.0),
    }
    # Anything else is a control-plane call (DescribeTable, ...), not billed per request.
    read_units, write_units = units.get(operation, (0.0, 0.0))
    return float(read_units), float(write_units)


@contextmanager
def metered_aws() -> Iterator[AwsMeter]:
    """A meter hooked into every boto3 session while the context is active."""
    meter = AwsMeter()
    # botocore calls an event's handlers with keyword arguments only.
    hooks: list[tuple[str, Callable[..., None]]] = [
        (DYNAMODB_REQUEST, meter.record_dynamodb),
        (LAMBDA_REQUEST, meter.prepare_invoke),
        (LAMBDA_RESPONSE, meter.record_lambda),
        (EVENTS_PUT, meter.record_events),
    ]
    existing_sessions = [boto3.DEFAULT_SESSION] if boto3.DEFAULT_SESSION is not None else []
    botocore.handlers.BUILTIN_HANDLERS.extend(hooks)
    for session in existing_sessions:
        for event, handler in hooks:
            session.events.register(event, handler)
    try:
        yield meter
    finally:
        for hook in hooks:
            botocore.handlers.BUILTIN_HANDLERS.remove(hook)
        for session in existing_sessions:
            for event, handler in hooks:
                session.events.unregister(event, handler)
