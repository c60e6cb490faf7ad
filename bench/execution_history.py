"""What an execution's history says about its run: state transitions, Lambda invocations, and
when the state machine first knew the run had ended."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from threadline.models import RunStatus

LAMBDA_SCHEDULED = {"LambdaFunctionScheduled", "TaskScheduled"}
SUCCEEDED_DETAILS = {
    "LambdaFunctionSucceeded": "lambdaFunctionSucceededEventDetails",
    "TaskSucceeded": "taskSucceededEventDetails",
}


@dataclass(frozen=True)
class ExecutionFacts:
    state_transitions: int  # states entered (a retried state is entered again)
    lambda_invocations: Counter[str]  # Lambda functions scheduled, by function ARN or name
    terminal_known_at: float | None  # epoch seconds of the task that first saw the end


def read_history(events: list[dict[str, Any]]) -> ExecutionFacts:
    transitions = 0
    invocations: Counter[str] = Counter()
    terminal_known_at: float | None = None
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            transitions += 1
        elif kind in LAMBDA_SCHEDULED and (function := _scheduled_lambda(event)):
            invocations[function] += 1
        elif terminal_known_at is None and _reports_terminal_status(event):
            terminal_known_at = event["timestamp"].timestamp()
    return ExecutionFacts(transitions, invocations, terminal_known_at)


def _scheduled_lambda(event: dict[str, Any]) -> str | None:
    """The function a scheduled task invokes (its ARN or name), None if it is no Lambda."""
    details = event.get("taskScheduledEventDetails")
    if details is None:
        return str(event["lambdaFunctionScheduledEventDetails"]["resource"])
    if details.get("resourceType") != "lambda":
        return None
    return str(json.loads(details.get("parameters") or "{}").get("FunctionName", "lambda"))


def _reports_terminal_status(event: dict[str, Any]) -> bool:
    """A task's result (the run state every task returns) with a terminal run status."""
    details_key = SUCCEEDED_DETAILS.get(event["type"])
    if details_key is None:
        return False
    output = json.loads(event[details_key].get("output") or "null")
    if isinstance(output, dict) and isinstance(output.get("Payload"), dict):
        output = output["Payload"]  # arn:aws:states:::lambda:invoke wraps the result
    status = output.get("status") if isinstance(output, dict) else None
    with contextlib.suppress(ValueError):
        return status is not None and RunStatus(status).is_terminal
    return False
