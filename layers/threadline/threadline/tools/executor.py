"""Run the model's tool calls concurrently and turn every outcome into a ToolOutput.

Nothing here raises: an unknown tool, bad arguments, a failing tool or a timeout becomes an
error output (`{"error": {"type": ..., "message": ...}}`) that the model can read and act on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

from threadline.errors import loggable
from threadline.models import ToolCall, ToolOutput
from threadline.tools.registry import InvalidArguments, Tool, ToolContext, ToolRegistry, ToolResult

logger = logging.getLogger(__name__)

ToolErrorType = Literal["unknown_tool", "invalid_arguments", "tool_error", "timeout"]


def run_tool_calls(
    registry: ToolRegistry,
    calls: list[ToolCall],
    *,
    caller: ToolContext,
    timeout_seconds: float,
    max_workers: int = 8,
) -> list[ToolOutput]:
    """Run `calls` concurrently for `caller` and return one output per call, in call order.

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
            context = dataclasses.replace(caller, call_id=call.id)
            future = pool.submit(_invoke, tool, call, args, context)
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


def _prepare(registry: ToolRegistry, call: ToolCall) -> tuple[Tool, Any] | ToolOutput:
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
        args = tool.parse_arguments(call.arguments)
    except InvalidArguments as error:
        return _error_output(
            call,
            "invalid_arguments",
            f"invalid arguments for {call.name}: {error}",
            started=started,
        )
    return tool, args


def _invoke(tool: Tool, call: ToolCall, args: Any, context: ToolContext) -> ToolOutput:
    started = time.monotonic()
    try:
        result = tool.call(args, context)
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
