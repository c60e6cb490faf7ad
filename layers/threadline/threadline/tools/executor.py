"""Run the model's tool calls concurrently and turn every outcome into a ToolOutput.

Nothing here raises: an unknown tool, bad arguments, a failing tool or a timeout becomes an
error output (`{"error": {"type": ..., "message": ...}}`) that the model can read and act on.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from threadline.errors import loggable
from threadline.models import ToolCall, ToolOutput
from threadline.tools.registry import Tool, ToolRegistry, ToolResult

logger = logging.getLogger(__name__)

ToolErrorType = Literal["unknown_tool", "invalid_arguments", "tool_error", "timeout"]


def run_tool_calls(
    registry: ToolRegistry,
    calls: list[ToolCall],
    *,
    timeout_seconds: float,
    max_workers: int = 8,
) -> list[ToolOutput]:
    """Run `calls` concurrently and return one output per call, in call order.

    Every call must finish within `timeout_seconds` (or its tool's shorter timeout) of the
    start of the batch - including time spent queued when there are more calls than workers.
    """
    batch_started = time.monotonic()
    outputs: dict[int, ToolOutput] = {}
    running: list[tuple[int, ToolCall, Future[ToolOutput], float]] = []
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="threadline-tool")
    try:
        for index, call in enumerate(calls):
            prepared = _prepare(registry, call)
            if isinstance(prepared, ToolOutput):
                outputs[index] = prepared
                continue
            tool, args = prepared
            allowed_seconds = min(timeout_seconds, tool.timeout_seconds or timeout_seconds)
            future = pool.submit(_invoke, tool, call, args)
            running.append((index, call, future, allowed_seconds))
        for index, call, future, allowed_seconds in running:
            remaining = batch_started + allowed_seconds - time.monotonic()
            try:
                outputs[index] = future.result(timeout=max(remaining, 0.0))
            except TimeoutError:
                outputs[index] = _error_output(
                    call,
                    "timeout",
                    f"the tool did not finish within {allowed_seconds:g} s",
                    started=batch_started,
                )
    finally:
        # A timed-out tool cannot be stopped; leave it running rather than wait for it.
        pool.shutdown(wait=False, cancel_futures=True)
    return [outputs[index] for index in range(len(calls))]


def _prepare(registry: ToolRegistry, call: ToolCall) -> tuple[Tool[Any], BaseModel] | ToolOutput:
    """Find the tool and validate the arguments, or explain why the call cannot run."""
    started = time.monotonic()
    tool = registry.get(call.name)
    if tool is None:
        available = ", ".join(registry.names()) or "none"
        return _error_output(
            call,
            "unknown_tool",
            f"there is no tool named {call.name!r}; available tools: {available}",
            started=started,
        )
    try:
        # Models sometimes send an empty string for a call without arguments.
        args = tool.args_model.model_validate_json(call.arguments.strip() or "{}")
    except ValidationError as error:
        return _error_output(
            call,
            "invalid_arguments",
            f"invalid arguments for {call.name}: {_describe_validation_error(error)}",
            started=started,
        )
    return tool, args


def _invoke(tool: Tool[Any], call: ToolCall, args: BaseModel) -> ToolOutput:
    started = time.monotonic()
    try:
        result = tool.function(args)
        if not isinstance(result, ToolResult):
            result = ToolResult(data=result)
        return ToolOutput(
            call_id=call.id,
            name=call.name,
            output=_to_json(result.data),
            duration_ms=_milliseconds_since(started),
            summary=result.summary,
        )
    except Exception as error:
        # INFO, not WARNING: most failures are the model's own mistakes (e.g. a bad query).
        # Where, not what: the message may quote the model's arguments or the data.
        logger.info("tool raised", extra={"tool": call.name, **loggable(error)})
        message = f"{type(error).__name__}: {error}"
        return _error_output(call, "tool_error", message, started=started)


def _describe_validation_error(error: ValidationError) -> str:
    """One clause per problem, each naming the offending field when there is one."""
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        if detail["type"] == "json_invalid":
            problems.append(f"the arguments are not valid JSON ({detail['msg']})")
            continue
        field = ".".join(str(part) for part in detail["loc"])
        problems.append(f"{field}: {detail['msg']}" if field else detail["msg"])
    return "; ".join(problems)


def _error_output(
    call: ToolCall, error_type: ToolErrorType, message: str, *, started: float
) -> ToolOutput:
    return ToolOutput(
        call_id=call.id,
        name=call.name,
        output=_to_json({"error": {"type": error_type, "message": message}}),
        is_error=True,
        duration_ms=_milliseconds_since(started),
    )


def _to_json(data: Any) -> str:
    # default=str covers the dates and decimals that database rows tend to carry.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


def _milliseconds_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)
