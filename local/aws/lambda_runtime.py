"""Run moto's Lambda invocations as in-process calls of the functions' Python handlers.

moto runs Lambda code only in Docker. Its one seam below the API is the private
`LambdaFunction._invoke_lambda(self, event) -> (payload, errored, logs)` (stable since moto 4;
tests/local_aws keep a canary on it). Every invocation reaches it: boto3 `invoke`, Step
Functions tasks, S3 notifications.

Environment: os.environ is one per process and invocations arrive concurrently from Step
Functions threads, so per-invocation variables (AWS_LAMBDA_FUNCTION_NAME, ...) are NOT set;
handlers find them on the context. The caller sets the stack's union environment
(`LocalStack.environment()`) in os.environ once, before the first invocation.

Handlers share os.environ, sys.path and the process, so each function's handler module is
loaded under its own module name; a function's sibling modules are not importable (shared
code belongs in the layer package).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.awslambda.models import LambdaFunction

from local.aws.records import FunctionSpec

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


class _InProcessRuntime:
    def __init__(self, registry: Mapping[str, FunctionSpec]) -> None:
        self._registry = registry
        self._handlers: dict[str, Handler] = {}
        self._module_names: list[str] = []
        self._load_lock = threading.Lock()

    def invoke(self, function_name: str, event: Any) -> InvocationResult:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        spec = self._registry.get(function_name)
        if spec is None:
            message = f"no in-process handler is registered for function {function_name!r}"
            return _error_payload("Local.FunctionNotRegistered", message, request_id), True, ""
        try:
            handler = self._handler(spec)
        except _HandlerLoadError as error:
            return _error_payload(error.error_type, str(error), request_id), True, ""
        # moto hands over the string "{}" when the request had no payload.
        event = {} if event == "{}" else event
        try:
            result = handler(event, _context(spec, request_id, started))
        except Exception as error:
            stack_trace = traceback.format_tb(error.__traceback__)
            payload = _error_payload(type(error).__name__, str(error), request_id, stack_trace)
            return payload, True, _logs(spec, request_id, started)
        try:
            payload = json.dumps(result)  # plain json.dumps, as the Lambda runtime marshals
        except (TypeError, ValueError) as error:
            message = f"Unable to marshal response: {error}"
            payload = _error_payload("Runtime.MarshalError", message, request_id)
            return payload, True, _logs(spec, request_id, started)
        return payload, False, _logs(spec, request_id, started)

    def unload(self) -> None:
        with self._load_lock:
            for module_name in self._module_names:
                sys.modules.pop(module_name, None)
            self._module_names.clear()
            self._handlers.clear()

    def _handler(self, spec: FunctionSpec) -> Handler:
        # One lock for loading: a function's module is executed once (its cold start), even
        # when its first invocations arrive concurrently.
        with self._load_lock:
            if spec.name not in self._handlers:
                self._handlers[spec.name] = self._load(spec)
            return self._handlers[spec.name]

    def _load(self, spec: FunctionSpec) -> Handler:
        module_path, _, attribute = spec.handler.rpartition(".")
        source = spec.code_dir / f"{module_path.replace('.', '/')}.py"
        # Unique per function and per load: every function has an `app.py`.
        identifier = re.sub(r"\W", "_", spec.name)
        module_name = f"_lambda_{identifier}_{uuid.uuid4().hex[:8]}"
        module_spec = importlib.util.spec_from_file_location(module_name, source)
        if module_spec is None or module_spec.loader is None:
            raise _HandlerLoadError("Runtime.ImportModuleError", f"cannot load {source}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module  # as a real import would (dataclasses, pydantic)
        try:
            module_spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[module_name]
            message = f"Unable to import module '{module_path}': {error}"
            raise _HandlerLoadError("Runtime.ImportModuleError", message) from error
        self._module_names.append(module_name)
        handler = getattr(module, attribute, None)
        if not callable(handler):
            message = f"Handler '{attribute}' missing on module '{module_path}'"
            raise _HandlerLoadError("Runtime.HandlerNotFound", message)
        return handler


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
def install(registry: Mapping[str, FunctionSpec]) -> Iterator[None]:
    """Route moto's Lambda invocations of the registered functions (by function name) to their
    handlers while the context is active; handler modules are unloaded on exit."""
    runtime = _InProcessRuntime(registry)
    original = LambdaFunction.__dict__["_invoke_lambda"]

    def invoke_in_process(function: LambdaFunction, event: Any = None) -> InvocationResult:
        return runtime.invoke(function.function_name, event)

    LambdaFunction._invoke_lambda = invoke_in_process  # type: ignore[method-assign]
    try:
        yield
    finally:
        LambdaFunction._invoke_lambda = original  # type: ignore[method-assign]
        runtime.unload()
