"""Where moto is more lenient than AWS, the local stack is made as strict: the product meets
these checks here as it would when deployed.

- A Fail state's ErrorPath and CausePath must each resolve to a string; on AWS anything
  else (null included) ends the execution in States.Runtime, whatever the state says.
- A PutEvents request's entries total under 256 KB (EventBridge's sizing: Time 14 bytes,
  the UTF-8 bytes of Source, DetailType, Detail and Resources); a larger request is refused
  whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from moto.events.exceptions import ValidationException
from moto.events.models import EventsBackend
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.fail.state_fail import StateFail
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails


def _runtime_failure(env: Environment, cause: str) -> FailureEventException:
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=StatesErrorNameType.StatesRuntime),
            event_type=HistoryEventType.TaskFailed,
            # moto's TypedDicts are total; an event carries one of their keys.
            event_details=cast(
                EventDetails,
                {
                    "taskFailedEventDetails": TaskFailedEventDetails(
                        error=StatesErrorNameType.StatesRuntime.to_name(), cause=cause
                    )
                },
            ),
        )
    )


def _strict_fail_state(original: Any) -> Any:
    def evaluate(self: StateFail, env: Environment) -> None:
        for declaration, field in ((self.error, "ErrorPath"), (self.cause, "CausePath")):
            if declaration is None:
                continue
            declaration.eval(env=env)
            value = env.stack.pop()
            if not isinstance(value, str):
                raise _runtime_failure(
                    env,
                    f"An error occurred while executing the state '{self.name}'. The {field} "
                    f"field cannot be resolved to a string: {value!r}",
                )
        original(self, env)

    return evaluate


PUT_EVENTS_BYTES = 256 * 1024


def _sized_put_events(original: Any) -> Any:
    def put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        size = sum(
            (14 if event.get("Time") else 0)
            + sum(
                len(str(event.get(key) or "").encode())
                for key in ("Source", "DetailType", "Detail")
            )
            + sum(len(resource.encode()) for resource in event.get("Resources") or [])
            for event in events
        )
        if size >= PUT_EVENTS_BYTES:
            raise ValidationException("Total size of the entries in the request is over the limit.")
        result: list[dict[str, Any]] = original(self, events)
        return result

    return put_events


@contextmanager
def enforced() -> Iterator[None]:
    """Apply AWS's checks to moto while the context is active."""
    patches = [
        (StateFail, "_eval_state", _strict_fail_state),
        (EventsBackend, "put_events", _sized_put_events),
    ]
    originals = [(owner, name, owner.__dict__[name]) for owner, name, _wrap in patches]
    for owner, name, wrap in patches:
        setattr(owner, name, wrap(owner.__dict__[name]))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
