"""Asynchronous invocations through Lambda's API (`InvocationType="Event"`), as Lambda makes
them: accepted at once (202), run on their own (here a thread each, as Lambda runs them
concurrently), a failure retried as the function's EventInvokeConfig says. moto runs them
synchronously, in the caller's request; while `invoking_asynchronously` is active they are
not. Each run is a synchronous invocation through Lambda's API again, so whatever watches
that API (the bench's meter) sees it as any other."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto.awslambda.models import LambdaFunction

from local.aws.event_sources import ASYNC_RETRY_DELAYS
from local.aws.iam.gate import acting_as
from local.aws.local_stack import LocalStack

logger = logging.getLogger(__name__)
JOIN_SECONDS = 10.0


@contextmanager
def invoking_asynchronously(stack: LocalStack) -> Iterator[None]:
    """While active, Event invocations run on threads; on exit those still running are
    waited for (at most JOIN_SECONDS) before the functions are unloaded."""
    original = LambdaFunction.__dict__["invoke"]
    running: list[threading.Thread] = []

    def invoke(
        self: LambdaFunction, body: str, request_headers: Any, response_headers: Any
    ) -> str | bytes:
        if request_headers.get("x-amz-invocation-type") != "Event":
            return original(self, body, request_headers, response_headers)
        retries = stack.async_invoke_config(self.function_name).maximum_retry_attempts
        thread = threading.Thread(
            target=_run, args=(stack.region, self.function_name, body, retries), daemon=True
        )
        running.append(thread)
        thread.start()
        return b""

    LambdaFunction.invoke = invoke  # type: ignore[method-assign]
    try:
        yield
    finally:
        LambdaFunction.invoke = original  # type: ignore[method-assign]
        deadline = time.monotonic() + JOIN_SECONDS
        for thread in running:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))


@acting_as(None)  # Lambda itself runs an event, not the function that sent it
def _run(region: str, function_name: str, body: str, retries: int) -> None:
    client = boto3.client("lambda", region_name=region)
    for attempt in range(retries + 1):
        answer = client.invoke(FunctionName=function_name, Payload=body or b"{}")
        if "FunctionError" not in answer:
            return
        logger.warning("%s failed: %s", function_name, answer["Payload"].read()[:500])
        if attempt < retries:
            time.sleep(ASYNC_RETRY_DELAYS[min(attempt, len(ASYNC_RETRY_DELAYS) - 1)])
