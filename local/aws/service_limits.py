"""Where moto is more lenient than AWS, the local stack is made as strict: the product meets
these checks here as it would when deployed.

- A Fail state's ErrorPath and CausePath must each resolve to a string; on AWS anything
  else (null included) ends the execution in States.Runtime, whatever the state says.
- A PutEvents request's entries total under 256 KB (EventBridge's sizing: Time 14 bytes,
  the UTF-8 bytes of Source, DetailType, Detail and Resources); a larger request is refused
  whole.
- A StartExecution input is at most 262,144 bytes of UTF-8 (ValidationException, as for any
  request member over its length). moto checks a state's output itself
  (States.DataLimitExceeded).
- moto runs every execution as Standard: an execution is given its state machine's type, so
  that the two checks below tell Express from Standard.
- A Standard execution's history holds 25,000 events: the event that would be the 25,000th
  fails the execution instead (States.Runtime, "The execution reached the maximum number of
  history events (25000)."), its ExecutionFailed event the last.
- An Express execution runs for at most five minutes: then it ends TIMED_OUT, as an execution
  past its own TimeoutSeconds does.
- A Lambda Invoke request's payload is at most 6 MB (6,291,456 bytes) for a synchronous
  invocation and 1 MB (1,048,576 bytes) for an Event invocation: a larger one is refused
  with 413 RequestEntityTooLargeException. (moto answers a response over about 6 MB with
  Function.ResponseSizeTooLarge itself.)
- A DynamoDB expression (condition, update, key condition, filter, projection) is at most
  4 KB of UTF-8; a transaction takes at most 100 items (moto allows 25 in TransactGetItems)
  of at most 4 MB together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from moto.awslambda.responses import LambdaResponse
from moto.core.exceptions import JsonRESTError
from moto.dynamodb import responses as dynamodb_responses
from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.responses import DynamoHandler
from moto.events.exceptions import ValidationException
from moto.events.models import EventsBackend
from moto.stepfunctions.exceptions import ValidationException as StatesValidationException
from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.parser.api import (
    ExecutionFailedEventDetails,
    HistoryEventType,
    StateMachineType,
    TaskFailedEventDetails,
)
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
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
from moto.stepfunctions.parser.asl.component.program.program import Program
from moto.stepfunctions.parser.asl.component.state.fail.state_fail import StateFail
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.evaluation_details import StateMachineDetails
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

EXPRESS_EXECUTION_SECONDS = 300
HISTORY_EVENTS = 25_000
EXECUTION_INPUT_BYTES = 262_144
PUT_EVENTS_BYTES = 256 * 1024
INVOKE_PAYLOAD_BYTES = {"RequestResponse": 6_291_456, "DryRun": 6_291_456, "Event": 1_048_576}
EXPRESSION_BYTES = 4_096
TRANSACTION_ITEMS = 100
TRANSACTION_BYTES = 4 * 1024 * 1024

Patch = tuple[type, str, Callable[[Any], Any]]


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


def _sized_execution_input(original: Any) -> Any:
    def start_execution(
        self: StepFunctionsParserBackend,
        state_machine_arn: str,
        name: str | None = None,
        execution_input: str | None = None,
        trace_header: str | None = None,
    ) -> Any:
        if execution_input is not None and len(execution_input.encode()) > EXECUTION_INPUT_BYTES:
            raise StatesValidationException(
                "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                f"Member must have length less than or equal to {EXECUTION_INPUT_BYTES}"
            )
        return original(self, state_machine_arn, name, execution_input, trace_header)

    return start_execution


def _typed_execution(original: Any) -> Any:
    def state_machine_details(self: Execution) -> StateMachineDetails:
        details: StateMachineDetails = original(self)
        # The parser's executions hold the models of moto's backend, which know their type.
        machine = cast(StateMachine, self.state_machine)
        return StateMachineDetails(
            arn=details.arn,
            name=details.name,
            typ=StateMachineType(machine.type),
            definition=details.definition,
        )

    return state_machine_details


class _BoundedHistory(EventManager):
    """A Standard execution's events: once `limit - 1` are recorded, the next fails the
    execution and is not recorded; its ExecutionFailed event is the last."""

    _ENDINGS = frozenset(
        {
            HistoryEventType.ExecutionFailed,
            HistoryEventType.ExecutionAborted,
            HistoryEventType.ExecutionTimedOut,
            HistoryEventType.ExecutionSucceeded,
        }
    )

    def __init__(self, env: Environment, limit: int) -> None:
        super().__init__(cloud_watch_logging_session=env.cloud_watch_logging_session)
        self._env = env
        self._limit = limit
        self._recorded = 0

    def add_event(self, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int:
        if self._recorded >= self._limit - 1 and event_type not in self._ENDINGS:
            cause = f"The execution reached the maximum number of history events ({self._limit})."
            if self._env.is_running():
                self._env.set_error(
                    ExecutionFailedEventDetails(
                        error=StatesErrorNameType.StatesRuntime.to_name(), cause=cause
                    )
                )
            return self._recorded
        self._recorded += 1
        event_id: int = super().add_event(context, event_type, *args, **kwargs)
        return event_id


def _bounded_history(limit: int) -> Callable[[Any], Any]:
    def wrap(original: Any) -> Any:
        def evaluation_environment(self: ExecutionWorker) -> Environment:
            env: Environment = original(self)
            if env.execution_type == StateMachineType.STANDARD:
                env.event_manager = _BoundedHistory(env, limit)
            return env

        return evaluation_environment

    return wrap


def _bounded_express(seconds: int) -> Callable[[Any], Any]:
    def wrap(original: Any) -> Any:
        def evaluate(self: Program, env: Environment) -> None:
            if env.execution_type == StateMachineType.EXPRESS and not env.is_frame():
                own = self.timeout_seconds.timeout_seconds if self.timeout_seconds else seconds
                # The parsed program is the execution's own: its timeout can be lowered.
                vars(self)["timeout_seconds"] = TimeoutSeconds(min(own, seconds))
            original(self, env)

        return evaluate

    return wrap


class _RequestTooLarge(JsonRESTError):
    code = 413

    def __init__(self, message: str) -> None:
        super().__init__("RequestEntityTooLargeException", message)


def _sized_invoke(original: Any) -> Any:
    def invoke(self: LambdaResponse) -> Any:
        invocation_type = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        body = self.body or b""
        size = len(body.encode() if isinstance(body, str) else body)
        limit = INVOKE_PAYLOAD_BYTES.get(invocation_type)
        if limit is not None and size > limit:
            # Lambda's wording (as ASFHyP3/hyp3#2241 quotes it for an Event invocation).
            raise _RequestTooLarge(
                f"{size} byte payload is too large for the {invocation_type} invocation type "
                f"(limit {limit} bytes)"
            )
        return original(self)

    return invoke


def _expressions(request: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Each (name, text) of a request's expressions, those of its transaction's or batch's
    parts included."""
    for name, value in request.items():
        if name.endswith("Expression") and isinstance(value, str):
            yield name, value
    parts = [
        operation
        for item in request.get("TransactItems") or []
        for operation in item.values()
        if isinstance(operation, dict)
    ]
    parts += [
        table for table in (request.get("RequestItems") or {}).values() if isinstance(table, dict)
    ]
    for part in parts:
        yield from _expressions(part)


def _sized_expressions(original: Any) -> Any:
    def action(self: DynamoHandler) -> Any:
        for name, text in _expressions(self.body):
            size = len(text.encode())
            if size > EXPRESSION_BYTES:
                raise MockValidationException(
                    f"Invalid {name}: Expression size has exceeded the maximum allowed size; "
                    f"expression size: {size}"
                )
        return original(self)

    return action


def _attributes_bytes(attributes: dict[str, Any] | None) -> int:
    """Attributes sized as DynamoDB sizes an item: each name's UTF-8 bytes and its value's."""
    return sum(
        len(name.encode()) + DynamoType(value).size() for name, value in (attributes or {}).items()
    )


def _sized_transaction(original: Any) -> Any:
    def transact_write_items(self: DynamoHandler) -> Any:
        size = 0
        for item in self.body.get("TransactItems") or []:
            for operation in item.values():
                size += _attributes_bytes(operation.get("Item") or operation.get("Key"))
                size += _attributes_bytes(operation.get("ExpressionAttributeValues"))
        if size > TRANSACTION_BYTES:
            raise MockValidationException("Transaction request cannot be larger than 4 MB")
        return original(self)

    return _sized_expressions(transact_write_items)


def _patches(express_execution_seconds: int, history_events: int) -> list[Patch]:
    expression_actions = (
        "get_item",
        "put_item",
        "update_item",
        "delete_item",
        "query",
        "scan",
        "batch_get_item",
        "transact_get_items",
    )
    return [
        (StateFail, "_eval_state", _strict_fail_state),
        (EventsBackend, "put_events", _sized_put_events),
        (StepFunctionsParserBackend, "start_execution", _sized_execution_input),
        (Execution, "get_start_state_machine_details", _typed_execution),
        (ExecutionWorker, "_get_evaluation_environment", _bounded_history(history_events)),
        (Program, "eval", _bounded_express(express_execution_seconds)),
        (LambdaResponse, "invoke", _sized_invoke),
        *((DynamoHandler, action, _sized_expressions) for action in expression_actions),
        (DynamoHandler, "transact_write_items", _sized_transaction),
    ]


@contextmanager
def enforced(
    *,
    express_execution_seconds: int = EXPRESS_EXECUTION_SECONDS,
    history_events: int = HISTORY_EVENTS,
) -> Iterator[None]:
    """Apply AWS's checks to moto while the context is active. A test may end Express
    executions sooner than AWS's five minutes, or Standard ones at a shorter history."""
    patches = _patches(express_execution_seconds, history_events)
    originals = [(owner, name, owner.__dict__[name]) for owner, name, _wrap in patches]
    transaction_items = dynamodb_responses.TRANSACTION_MAX_ITEMS
    for owner, name, wrap in patches:
        setattr(owner, name, wrap(owner.__dict__[name]))
    dynamodb_responses.TRANSACTION_MAX_ITEMS = TRANSACTION_ITEMS
    try:
        yield
    finally:
        dynamodb_responses.TRANSACTION_MAX_ITEMS = transaction_items
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)
