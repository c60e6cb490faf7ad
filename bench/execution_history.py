"""What an execution's history says about its run: state transitions, Lambda invocations, and
when the state machine first knew the run had ended."""

from __future__ import annotations

import contextlib
import json
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
    lambda_invocations: int  # Lambda functions scheduled
    terminal_known_at: float | None  # epoch seconds of the task that first saw the end


def read_history(events: list[dict[str, Any]]) -> ExecutionFacts:
    transitions = invocations = 0
    terminal_known_at: float | None = None
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            transitions += 1
        elif kind in LAMBDA_SCHEDULED and _schedules_lambda(event):
            invocations += 1
        elif terminal_known_at is None and _reports_terminal_status(event):
            terminal_known_at = event["timestamp"].timestamp()
    return ExecutionFacts(transitions, invocations, terminal_known_at)


def _schedules_lambda(event: dict[str, Any]) -> bool:
    details = event.get("taskScheduledEventDetails")
    return details is None or details.get("resourceType") == "lambda"


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
