"""Where moto is more lenient than AWS, the local stack is made as strict: the product meets
these checks here as it would when deployed.

- A Fail state's ErrorPath and CausePath must each resolve to a string; on AWS anything
  else (null included) ends the execution in States.Runtime, whatever the state says.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

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


@contextmanager
def enforced() -> Iterator[None]:
    """Apply AWS's checks to the Step Functions interpreter while the context is active."""
    original = StateFail.__dict__["_eval_state"]
    StateFail._eval_state = _strict_fail_state(original)  # type: ignore[method-assign]
    try:
        yield
    finally:
        StateFail._eval_state = original  # type: ignore[method-assign]
