"""run_tool_calls runs calls concurrently and turns every failure into a readable error output."""

from __future__ import annotations

import json
import threading
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from threadline.models import ToolCall, ToolOutput
from threadline.tools import (
    ToolContext,
    ToolRegistry,
    ToolResult,
    run_tool_calls,
    tool,
)


class NoArgs(BaseModel):
    pass


class Region(BaseModel):
    region: str


class Search(BaseModel):
    limit: int
    where: Region


CALLER = ToolContext(user_id="user-1", thread_id="thread-1", run_id="run-1", assistant="tester")


def _call(name: str, arguments: Any = None, call_id: str | None = None) -> ToolCall:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return ToolCall(id=call_id or f"call_{name}", name=name, arguments=raw)


def _error(output: ToolOutput) -> dict[str, str]:
    assert output.is_error is True
    return json.loads(output.output)["error"]


@pytest.fixture
def registry() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.register
    @tool(description="Echo the search back.")
    def search(args: Search) -> ToolResult:
        return ToolResult(
            data={"limit": args.limit, "region": args.where.region},
            summary={"region": args.where.region},
        )

    @registry.register
    @tool(description="Return values JSON cannot encode natively.")
    def ledger(_args: NoArgs) -> dict[str, Any]:
        return {"day": date(2024, 2, 29), "amount": Decimal("12.50"), "note": "café"}

    @registry.register
    @tool(description="Always fails.")
    def explode(_args: NoArgs) -> None:
        raise ValueError("the flux capacitor is empty")

    @registry.register
    @tool(description="Returns something JSON cannot hold.")
    def circular(_args: NoArgs) -> list[Any]:
        loop: list[Any] = []
        loop.append(loop)
        return loop

    return registry


def test_tools_run_concurrently(registry: ToolRegistry) -> None:
    # Each tool waits for the other to arrive: run one after the other, both would time out.
    both_running = threading.Barrier(2, timeout=5)

    @registry.register
    @tool(description="Meet the other tool.")
    def rendezvous(_args: NoArgs) -> str:
        both_running.wait()
        return "met"

    outputs = run_tool_calls(
        registry,
        [_call("rendezvous", call_id="a"), _call("rendezvous", call_id="b")],
        caller=CALLER,
        timeout_seconds=10,
    )

    assert [(output.is_error, output.output) for output in outputs] == [(False, '"met"')] * 2


def test_max_workers_bounds_concurrency(registry: ToolRegistry) -> None:
    both_running = threading.Barrier(2, timeout=0.2)

    @registry.register
    @tool(description="Meet the other tool.")
    def rendezvous(_args: NoArgs) -> str:
        both_running.wait()
        return "met"

    outputs = run_tool_calls(
        registry,
        [_call("rendezvous", call_id="a"), _call("rendezvous", call_id="b")],
        caller=CALLER,
        timeout_seconds=10,
        max_workers=1,
    )

    assert [_error(output)["type"] for output in outputs] == ["tool_error", "tool_error"]
    assert "BrokenBarrierError" in _error(outputs[0])["message"]


def test_outputs_follow_call_order_not_completion_order(registry: ToolRegistry) -> None:
    finished: list[str] = []
    second_done = threading.Event()

    @registry.register
    @tool(description="Finishes after `second`.")
    def first(_args: NoArgs) -> str:
        assert second_done.wait(timeout=5)
        finished.append("first")
        return "1"

    @registry.register
    @tool(description="Finishes before `first`.")
    def second(_args: NoArgs) -> str:
        finished.append("second")
        second_done.set()
        return "2"

    outputs = run_tool_calls(
        registry,
        [_call("first"), _call("unknown"), _call("second")],
        caller=CALLER,
        timeout_seconds=10,
    )

    assert finished == ["second", "first"]
    assert [output.call_id for output in outputs] == ["call_first", "call_unknown", "call_second"]
    assert [output.output for output in outputs][::2] == ['"1"', '"2"']


def test_result_is_compact_json_with_summary(registry: ToolRegistry) -> None:
    [output] = run_tool_calls(
        registry,
        [_call("search", {"limit": 3, "where": {"region": "North"}})],
        caller=CALLER,
        timeout_seconds=5,
    )

    assert output == ToolOutput(
        call_id="call_search",
        name="search",
        output='{"limit":3,"region":"North"}',
        duration_ms=output.duration_ms,
        summary={"region": "North"},
    )
    assert output.duration_ms >= 0


def test_dates_and_decimals_are_serialised_as_strings(registry: ToolRegistry) -> None:
    [output] = run_tool_calls(registry, [_call("ledger")], caller=CALLER, timeout_seconds=5)

    assert output.is_error is False
    assert json.loads(output.output) == {"day": "2024-02-29", "amount": "12.50", "note": "café"}
    assert output.summary == {}


def test_empty_arguments_mean_no_arguments(registry: ToolRegistry) -> None:
    [output] = run_tool_calls(registry, [_call("ledger", "")], caller=CALLER, timeout_seconds=5)

    assert output.is_error is False


def test_unknown_tool(registry: ToolRegistry) -> None:
    [output] = run_tool_calls(registry, [_call("rm_rf")], caller=CALLER, timeout_seconds=5)

    error = _error(output)
    assert error["type"] == "unknown_tool"
    assert "'rm_rf'" in error["message"]
    assert "search" in error["message"]  # tells the model what it can call instead


@pytest.mark.parametrize("arguments", ["not json", '{"limit": 3', "{'limit': 3}"])
def test_arguments_that_are_not_json(registry: ToolRegistry, arguments: str) -> None:
    [output] = run_tool_calls(
        registry, [_call("search", arguments)], caller=CALLER, timeout_seconds=5
    )

    error = _error(output)
    assert error["type"] == "invalid_arguments"
    assert "not valid JSON" in error["message"]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"limit": "many", "where": {"region": "North"}}, "limit"),
        ({"limit": 3}, "where"),
        ({"limit": 3, "where": {"region": 7}}, "where.region"),
    ],
)
def test_validation_errors_name_the_field(
    registry: ToolRegistry, arguments: dict[str, Any], field: str
) -> None:
    [output] = run_tool_calls(
        registry, [_call("search", arguments)], caller=CALLER, timeout_seconds=5
    )

    error = _error(output)
    assert error["type"] == "invalid_arguments"
    assert f"{field}: " in error["message"]


def test_tool_exception_becomes_tool_error(registry: ToolRegistry) -> None:
    [output] = run_tool_calls(registry, [_call("explode")], caller=CALLER, timeout_seconds=5)

    assert _error(output) == {
        "type": "tool_error",
        "message": "ValueError: the flux capacitor is empty",
    }


def test_unserialisable_result_becomes_tool_error(registry: ToolRegistry) -> None:
    [output] = run_tool_calls(registry, [_call("circular")], caller=CALLER, timeout_seconds=5)

    assert _error(output)["type"] == "tool_error"


def test_timeout_does_not_wait_for_the_stuck_tool(registry: ToolRegistry) -> None:
    release = threading.Event()
    finished = threading.Event()

    @registry.register
    @tool(description="Blocks until released.")
    def stuck(_args: NoArgs) -> str:
        release.wait(timeout=30)
        finished.set()
        return "too late"

    try:
        stuck_output, search_output = run_tool_calls(
            registry,
            [_call("stuck"), _call("search", {"limit": 1, "where": {"region": "West"}})],
            caller=CALLER,
            timeout_seconds=0.2,
        )
        # run_tool_calls returned while the tool was still blocked.
        assert not finished.is_set()
    finally:
        release.set()

    error = _error(stuck_output)
    assert error["type"] == "timeout"
    assert "0.2 s" in error["message"]
    assert stuck_output.duration_ms >= 200
    assert search_output.is_error is False


def test_tool_timeout_shorter_than_the_batch_wins(registry: ToolRegistry) -> None:
    release = threading.Event()

    @registry.register
    @tool(description="Blocks until released.", timeout_seconds=0.1)
    def impatient(_args: NoArgs) -> str:
        release.wait(timeout=30)
        return "too late"

    try:
        [output] = run_tool_calls(registry, [_call("impatient")], caller=CALLER, timeout_seconds=30)
    finally:
        release.set()

    assert _error(output) == {
        "type": "timeout",
        "message": "the tool did not finish within 0.1 s",
    }


def test_no_calls_means_no_outputs(registry: ToolRegistry) -> None:
    assert run_tool_calls(registry, [], caller=CALLER, timeout_seconds=1) == []


def _limit(args: Search) -> int:
    return args.limit


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(["search", "nope"]), arguments=st.text())
def test_never_raises_whatever_the_model_sends(name: str, arguments: str) -> None:
    registry = ToolRegistry()
    registry.register(tool(name="search", description="Echo the limit.")(_limit))
    [output] = run_tool_calls(registry, [_call(name, arguments)], caller=CALLER, timeout_seconds=5)

    assert output.call_id == f"call_{name}"
    if output.is_error:
        assert _error(output)["type"] in {"unknown_tool", "invalid_arguments"}
