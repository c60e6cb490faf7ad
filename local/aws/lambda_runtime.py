"""Run moto's Lambda invocations as in-process calls of the functions' Python handlers.

moto runs Lambda code only in Docker. Its one seam below the API is the private
`LambdaFunction._invoke_lambda(self, event) -> (payload, errored, logs)` (stable since moto 4;
tests/local_aws keep a canary on it). Every invocation reaches it: boto3 `invoke`, Step
Functions tasks, S3 notifications.

Environment: os.environ is one per process and invocations arrive concurrently from Step
Functions threads, so per-invocation variables (AWS_LAMBDA_FUNCTION_NAME, ...) are NOT set;
handlers find them on the context. The caller sets the stack's union environment
(`LocalStack.environment()`) in os.environ once, before the first invocation; while
`install` is active an invocation sees only its own function's variables of them
(`local.aws.function_environment`), and makes its AWS calls with its function's role
(`local.aws.iam.gate`).

Execution environments: as Lambda does, a function runs one invocation at a time per
environment, and a concurrent invocation takes an idle environment or creates one (a cold
start). Each environment executes the handler module afresh under its own module name, with
its sibling modules of its own (`local.aws.handler_modules`: the code directory is on sys.path
while the handler loads, as in Lambda), so its module-level objects (Powertools' resolver and
routers, logger, tracer; caches) are its own, and runs
its invocations in a `contextvars.Context` of its own. The environments still share the
process: os.environ, sys.path, the layer package (imported once; its cached clients are
thread-safe) and the Powertools package. Two pieces of Powertools' process-wide state would
mix concurrent invocations, so they are kept per environment here: the event a resolver is
handling (on the `BaseRouter` class) and appended log keys (on a service's one formatter).
Still shared: Powertools' cold-start flags and its Metrics set (one for every Metrics
instance: a flush may carry another invocation's metrics). A handler imports its sibling
modules when it loads, not later (shared code belongs in the layer package).

Tracing: with `install(..., active_tracing=True)` each invocation runs in an X-Ray segment
named after the function, as Lambda opens one for a function with `Tracing: Active`; the
X-Ray recorder's configuration decides where it goes.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import re
import sys
import threading
import time
import traceback
import uuid
from abc import ABCMeta
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from moto.awslambda.models import LambdaFunction

from local.aws.function_environment import as_function, separated
from local.aws.handler_modules import HandlerImportError, load_handler_module
from local.aws.iam.gate import Principal, acting_as
from local.aws.records import FunctionSpec
from threadline.runtime import start_environment

Handler = Callable[[Any, "LambdaContext"], Any]
InvocationResult = tuple[str, bool, str]  # (payload, errored, logs), as moto expects


@dataclass(frozen=True)
class LambdaContext:
    """The attributes and method of the Python runtime's context object."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float  # time.monotonic() at which the function's Timeout runs out
    identity: None = None
    client_context: None = None
    tenant_id: None = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class _HandlerLoadError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _error_payload(
    error_type: str, message: str, request_id: str, stack_trace: list[str] | None = None
) -> str:
    # The shape the Python runtime reports; Step Functions matches Retry/Catch on errorType.
    return json.dumps(
        {
            "errorMessage": message,
            "errorType": error_type,
            "requestId": request_id,
            "stackTrace": stack_trace or [],
        }
    )


@dataclass(frozen=True)
class _Environment:
    """One execution environment: its own instance of the handler module and its own context
    variables, which persist from one of its invocations to the next, as in a process."""

    module_name: str
    handler: Handler
    context: contextvars.Context


@dataclass
class _EnvironmentPool:
    """A function's environments that are not running an invocation."""

    idle: list[_Environment] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> _Environment | None:
        with self.lock:
            return self.idle.pop() if self.idle else None

    def give_back(self, environment: _Environment) -> None:
        with self.lock:
            self.idle.append(environment)


Death = Literal["before_work", "after_work", "timed_out"]


class EnvironmentDeaths:
    """Execution environments that die, on request: the next invocation of a function ends
    with `Lambda.Unknown` (what Step Functions reports for a function that ran out of memory)
    before its handler runs, or after it ran (its work done, its answer lost); or it runs out
    of time (`timed_out`: its work done, `Sandbox.Timedout` reported, as on python3.13). The
    environment is gone: the function's next invocation is a cold start."""

    def __init__(self) -> None:
        self._planned: dict[str, list[Death]] = {}
        self._lock = threading.Lock()
        self.died: list[tuple[str, Death]] = []  # (function name, when), in order

    def plan(self, function_name: str, when: Death, *, times: int = 1) -> None:
        with self._lock:
            self._planned.setdefault(function_name, []).extend([when] * times)

    def take(self, function_name: str) -> Death | None:
        with self._lock:
            planned = self._planned.get(function_name)
            if not planned:
                return None
            when = planned.pop(0)
            self.died.append((function_name, when))
            return when


class _InProcessRuntime:
    def __init__(self, registry: Mapping[str, FunctionSpec], *, active_tracing: bool) -> None:
        self.deaths = EnvironmentDeaths()
        self._registry = registry
        self._active_tracing = active_tracing
        self._pools = {function_name: _EnvironmentPool() for function_name in registry}
        self._every_variable = frozenset(
            name for spec in registry.values() for name in spec.environment
        )
        self._module_names: list[str] = []
        self._undo_scoping: list[Callable[[], None]] = []
        # Cold starts run one at a time: first imports of the shared layer package from several
        # threads at once can meet the import system's deadlock avoidance, which hands one of
        # them a half-initialised module.
        self._load_lock = threading.Lock()

    def invoke(self, function_name: str, event: Any) -> InvocationResult:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        spec = self._registry.get(function_name)
        if spec is None:
            message = f"no in-process handler is registered for function {function_name!r}"
            return _error_payload("Local.FunctionNotRegistered", message, request_id), True, ""
        pool = self._pools[function_name]
        try:
            environment = pool.take() or self._cold_start(spec)
        except _HandlerLoadError as error:
            return _error_payload(error.error_type, str(error), request_id), True, ""
        death = self.deaths.take(function_name)
        if death is None:
            try:
                return self._run(spec, environment, event, request_id, started)
            finally:
                pool.give_back(environment)
        if death == "before_work":
            message = "the execution environment died (before work)"
            return _error_payload("Lambda.Unknown", message, request_id), True, ""
        self._run(spec, environment, event, request_id, started)
        if death == "timed_out":
            return _timed_out(spec, request_id), True, ""
        message = "the execution environment died (after work)"
        return _error_payload("Lambda.Unknown", message, request_id), True, ""

    def _as(
        self,
        spec: FunctionSpec,
        principal: Principal,
        handler: Handler,
        event: Any,
        context: LambdaContext,
    ) -> Any:
        """Run the handler as Lambda does: with the function's own environment variables,
        its AWS calls made with the function's role."""
        with as_function(spec.environment, self._every_variable), acting_as(principal):
            return handler(event, context)

    def unload(self) -> None:
        with self._load_lock:
            for module_name in self._module_names:
                sys.modules.pop(module_name, None)
            self._module_names.clear()
            for pool in self._pools.values():
                pool.idle.clear()
            for undo in reversed(self._undo_scoping):
                undo()
            self._undo_scoping.clear()

    def _run(
        self,
        spec: FunctionSpec,
        environment: _Environment,
        event: Any,
        request_id: str,
        started: float,
    ) -> InvocationResult:
        # moto hands over the string "{}" when the request had no payload.
        event = {} if event == "{}" else event
        lambda_context = _context(spec, request_id, started)
        principal = Principal(name=spec.logical_id, role_arn=spec.role_arn, session=spec.name)
        try:
            with self._segment(spec):
                result = environment.context.run(
                    self._as, spec, principal, environment.handler, event, lambda_context
                )
        except Exception as error:
            stack_trace = traceback.format_tb(error.__traceback__)
            payload = _error_payload(type(error).__name__, str(error), request_id, stack_trace)
            return payload, True, _logs(spec, request_id, started)
        # Lambda stops a function at its timeout: whatever it did, its answer is lost. (An
        # in-process handler cannot be stopped; one that ran over is reported as stopped.)
        if time.monotonic() > lambda_context.deadline:
            return _timed_out(spec, request_id), True, _logs(spec, request_id, started)
        try:
            # As python3.13's runtime marshals a result (awslambdaric's Encoder): non-ASCII
            # characters as they are, not escaped, which counts against the 6 MB response.
            payload = json.dumps(result, ensure_ascii=False)
        except (TypeError, ValueError) as error:
            message = f"Unable to marshal response: {error}"
            payload = _error_payload("Runtime.MarshalError", message, request_id)
            return payload, True, _logs(spec, request_id, started)
        return payload, False, _logs(spec, request_id, started)

    def _segment(self, spec: FunctionSpec) -> contextlib.AbstractContextManager[Any]:
        if not self._active_tracing:
            return contextlib.nullcontext()
        from aws_xray_sdk.core import xray_recorder

        return xray_recorder.in_segment(spec.name)

    def _cold_start(self, spec: FunctionSpec) -> _Environment:
        context = contextvars.Context()
        context.run(_ENVIRONMENT_LOG_KEYS.set, {})
        # Its own clients, stores and caches, as a process of its own has: what it builds
        # with its role is not what another function built with another.
        context.run(start_environment)
        with self._load_lock:
            module_name, handler = context.run(self._load, spec)
            self._module_names.append(module_name)
            # After each load: it may have made a new Powertools logger, or imported the router.
            self._undo_scoping.extend(_scope_powertools_state_to_environments())
        return _Environment(module_name, handler, context)

    def _load(self, spec: FunctionSpec) -> tuple[str, Handler]:
        module_path, _, attribute = spec.handler.rpartition(".")
        # Unique per function and per environment: every function has an `app.py`.
        identifier = re.sub(r"\W", "_", spec.name)
        module_name = f"_lambda_{identifier}_{uuid.uuid4().hex[:8]}"
        try:
            module = load_handler_module(spec.code_dir, module_path, module_name)
        except HandlerImportError as error:
            message = f"Unable to import module '{module_path}': {error}"
            raise _HandlerLoadError("Runtime.ImportModuleError", message) from error
        handler = getattr(module, attribute, None)
        if not callable(handler):
            del sys.modules[module_name]
            message = f"Handler '{attribute}' missing on module '{module_path}'"
            raise _HandlerLoadError("Runtime.HandlerNotFound", message)
        return module_name, handler


# -- Powertools' process-wide state, made per environment ---------------------------------


class _PerEnvironment:
    """A data descriptor whose value belongs to the running environment (a context variable,
    and each environment runs in a context of its own)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._value: contextvars.ContextVar[Any] = contextvars.ContextVar(name)

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        try:
            return self._value.get()
        except LookupError:
            raise AttributeError(self._name) from None

    def __set__(self, instance: object, value: Any) -> None:
        self._value.set(value)


class _EnvironmentRouterMeta(ABCMeta):
    """Powertools' resolvers keep the event being handled and its Lambda context on the
    `BaseRouter` class, one per process (`BaseRouter.current_event = ...` in `resolve`), which
    in Lambda is one per environment. As BaseRouter's metaclass this keeps them per
    environment; the same descriptors in BaseRouter's namespace serve reads from instances."""

    current_event = _PerEnvironment("current_event")
    lambda_context = _PerEnvironment("lambda_context")


_ROUTER_STATE = ("current_event", "lambda_context")


def _scope_router_state_to_environments() -> list[Callable[[], None]]:
    module = sys.modules.get("aws_lambda_powertools.event_handler.api_gateway")
    router = getattr(module, "BaseRouter", None)
    if router is None or type(router) is not ABCMeta:  # not imported, or already scoped
        return []
    shadowed = {name: router.__dict__[name] for name in _ROUTER_STATE if name in router.__dict__}
    for name in _ROUTER_STATE:
        setattr(router, name, vars(_EnvironmentRouterMeta)[name])
    router.__class__ = _EnvironmentRouterMeta

    def undo() -> None:
        router.__class__ = ABCMeta
        for name in _ROUTER_STATE:
            delattr(router, name)
        for name, value in shadowed.items():
            setattr(router, name, value)

    return [undo]


# The running environment's log keys, by formatter (see _EnvironmentLogKeysFormatter).
_ENVIRONMENT_LOG_KEYS: contextvars.ContextVar[dict[LambdaPowertoolsFormatter, dict[str, Any]]] = (
    contextvars.ContextVar("environment_log_keys")
)


class _EnvironmentLogKeysFormatter(LambdaPowertoolsFormatter):
    """Powertools keeps a logger's appended keys (user, thread, run ids) on its formatter, and
    every Logger of a service shares the formatter of the service's stdlib logger: one per
    process, which in Lambda is one per environment. Here the keys are kept per environment;
    a new environment starts from the keys the formatter was made with. A thread a handler
    starts runs in no environment and logs with those."""

    @property
    def log_format(self) -> dict[str, Any]:
        made_with: dict[str, Any] = self.__dict__["log_format"]
        by_formatter = _ENVIRONMENT_LOG_KEYS.get(None)
        if by_formatter is None:
            return made_with
        return by_formatter.setdefault(self, dict(made_with))

    @log_format.setter
    def log_format(self, keys: dict[str, Any]) -> None:
        by_formatter = _ENVIRONMENT_LOG_KEYS.get(None)
        if by_formatter is None:
            self.__dict__["log_format"] = keys
        else:
            by_formatter[self] = keys


def _scope_log_keys_to_environments() -> list[Callable[[], None]]:
    undo: list[Callable[[], None]] = []
    for candidate in list(logging.Logger.manager.loggerDict.values()):
        handler = getattr(candidate, "powertools_handler", None)
        formatter = handler.formatter if handler is not None else None
        if type(formatter) is LambdaPowertoolsFormatter:  # a custom formatter is left alone
            formatter.__class__ = _EnvironmentLogKeysFormatter
            undo.append(
                functools.partial(setattr, formatter, "__class__", LambdaPowertoolsFormatter)
            )
    return undo


def _scope_powertools_state_to_environments() -> list[Callable[[], None]]:
    """Make the Powertools state loaded so far per environment; how to undo that."""
    return _scope_router_state_to_environments() + _scope_log_keys_to_environments()


def _timed_out(spec: FunctionSpec, request_id: str) -> str:
    message = f"RequestId: {request_id} Error: Task timed out after {spec.timeout:.2f} seconds"
    return _error_payload("Sandbox.Timedout", message, request_id)


def _context(spec: FunctionSpec, request_id: str, started: float) -> LambdaContext:
    today = datetime.now(UTC).strftime("%Y/%m/%d")
    return LambdaContext(
        function_name=spec.name,
        function_version="$LATEST",
        invoked_function_arn=spec.arn,
        memory_limit_in_mb=spec.memory,
        aws_request_id=request_id,
        log_group_name=f"/aws/lambda/{spec.name}",
        log_stream_name=f"{today}/[$LATEST]{uuid.uuid4().hex}",
        deadline=started + spec.timeout,
    )


def _logs(spec: FunctionSpec, request_id: str, started: float) -> str:
    duration_ms = (time.monotonic() - started) * 1000
    return "\n".join(
        [
            f"START RequestId: {request_id} Version: $LATEST",
            f"END RequestId: {request_id}",
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Memory Size: {spec.memory} MB",
        ]
    )


@contextmanager
def install(
    registry: Mapping[str, FunctionSpec], *, active_tracing: bool = False
) -> Iterator[EnvironmentDeaths]:
    """Route moto's Lambda invocations of the registered functions (by function name) to their
    handlers while the context is active; handler modules are unloaded on exit. Yields the
    runtime's `EnvironmentDeaths`, to make invocations fail as a dying environment would.

    `active_tracing`: run each invocation in an X-Ray segment, as Lambda does for functions
    with `Tracing: Active`.
    """
    runtime = _InProcessRuntime(registry, active_tracing=active_tracing)
    original = LambdaFunction.__dict__["_invoke_lambda"]
    separating = separated()
    separating.__enter__()

    def invoke_in_process(self: LambdaFunction, event: Any = None) -> InvocationResult:
        return runtime.invoke(self.function_name, event)

    # Replacing moto's method (and putting it back) is the point; the checker refuses any
    # assignment to a method.
    LambdaFunction._invoke_lambda = invoke_in_process  # type: ignore[method-assign]
    try:
        yield runtime.deaths
    finally:
        LambdaFunction._invoke_lambda = original  # type: ignore[method-assign]
        runtime.unload()
        separating.__exit__(None, None, None)
