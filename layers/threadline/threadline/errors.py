"""Exceptions whose class names are part of the contract with the state machine.

A Lambda error's `errorType` is the exception's class name, and the state machine's Retry and
Catch match on it, so renaming one of these is a change to statemachine/run.asl.json too.
"""

from __future__ import annotations

import traceback
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


def loggable(error: BaseException) -> dict[str, Any]:
    """What a log line may say of an error: its type and where it was raised. Not its message,
    which may quote what a user wrote, the model's arguments, or OpenAI echoing either."""
    return {
        "error_type": type(error).__name__,
        "traceback": traceback.format_tb(error.__traceback__),
    }


# A recorded reason (`code: detail`: a run's, an upload's, a cleanup failure's) keeps this many
# characters; the detail may quote OpenAI or an exception at any length.
REASON_LIMIT = 500


def short_reason(reason: str) -> str:
    """The reason as it is recorded: at most REASON_LIMIT characters."""
    return reason[:REASON_LIMIT]


def reason_code(reason: str | None) -> str | None:
    """A recorded reason's code (`code: detail`), for logs: the detail may quote an error from
    OpenAI, which can echo the input."""
    return reason and reason.partition(":")[0]


def validation_problems(error: ValidationError, *, what: str) -> str:
    """One clause per problem, each naming the offending field when there is one (never the
    value given, which may be what a user wrote); `what` names the whole, e.g. "the message".
    """
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        if detail["type"] == "json_invalid":
            problems.append(f"{what} is not valid JSON ({detail['msg']})")
            continue
        location = ".".join(str(part) for part in detail["loc"])
        problems.append(f"{location}: {detail['msg']}" if location else detail["msg"])
    return "; ".join(problems)


class ThreadlineError(Exception):
    """Base class of the errors Threadline raises on purpose."""


class ConfigurationError(ThreadlineError):
    """An environment variable is missing or invalid."""


class TransientBackendError(ThreadlineError):
    """OpenAI (or a compatible server) rate-limited us, failed with 5xx or timed out: retry.

    One class for all of them (the state machine retries on its name); `rate_limited` and
    `retry_after_seconds` (what OpenAI's Retry-After asked, if it said) tell the API's answer.
    """

    def __init__(
        self, message: str, *, rate_limited: bool = False, retry_after_seconds: float | None = None
    ) -> None:
        super().__init__(message)
        self.rate_limited = rate_limited
        self.retry_after_seconds = retry_after_seconds


class BackendRequestError(ThreadlineError):
    """OpenAI refused the request (4xx other than 429): retrying would not help."""


class NotFoundError(ThreadlineError):
    """The record does not exist, or belongs to someone else (the caller cannot tell)."""


class ThreadBusyError(ThreadlineError):
    """The thread already has an active run."""

    def __init__(self, thread_id: str, active_run_id: str | None) -> None:
        super().__init__(f"thread {thread_id} already has an active run {active_run_id}")
        self.thread_id = thread_id
        self.active_run_id = active_run_id


class QueueFullError(ThreadlineError):
    """The thread's queue of runs is at its limit."""

    def __init__(self, thread_id: str, limit: int) -> None:
        super().__init__(f"thread {thread_id} already has {limit} queued runs")
        self.thread_id = thread_id
        self.limit = limit


class InvalidRequestError(ThreadlineError):
    """The request is well-formed JSON but asks for something that cannot be done."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ConflictError(ThreadlineError):
    """The request conflicts with the state it acts on (answered twice, no longer waiting)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ServiceUnavailableError(ThreadlineError):
    """A dependency failed; the caller may retry."""


class BudgetExceededError(ThreadlineError):
    """The user spent today's token budget."""

    def __init__(self, *, used: int, budget: int, reset_at: datetime) -> None:
        super().__init__(f"daily token budget of {budget} used ({used}); resets at {reset_at}")
        self.used = used
        self.budget = budget
        self.reset_at = reset_at
