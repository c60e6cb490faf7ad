"""ToolRegistry describes its tools to both OpenAI APIs with strict schemas and unique names."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import openai
import pytest
from pydantic import BaseModel, Field

from threadline.tools import FunctionTool, InvalidArguments, ToolContext, ToolRegistry, tool
from threadline.tools.strict_schema import strict_schema_problems


class Forecast(BaseModel):
    city: str = Field(description="City name.")
    days: int = 3
    units: Literal["metric", "imperial"] = "metric"


class Nothing(BaseModel):
    pass


def forecast(args: Forecast) -> dict[str, object]:
    """Weather forecast for a city."""
    return {"city": args.city, "days": args.days}


def ping(_args: Nothing) -> str:
    return "pong"


@pytest.fixture
def registry() -> ToolRegistry:
    return ToolRegistry(
        [
            FunctionTool(name="forecast", description="Weather forecast.", args_model=Forecast,
                         function=forecast, arguments_parameter="args"),
            FunctionTool(name="ping", description="Check the line.", args_model=Nothing,
                         function=ping, arguments_parameter="_args"),
        ]
    )  # fmt: skip


def test_responses_definitions_match_the_sdk_helper(registry: ToolRegistry) -> None:
    """The SDK builds the Responses shape only in a private module; if it moves, this test
    goes, and the shape test below still guards the definitions."""
    from openai.lib._tools import pydantic_responses_function_tool

    assert registry.definitions("responses") == [
        pydantic_responses_function_tool(
            Forecast, name="forecast", description="Weather forecast."
        ),
        pydantic_responses_function_tool(Nothing, name="ping", description="Check the line."),
    ]


def test_assistants_definitions_match_the_sdk_helper(registry: ToolRegistry) -> None:
    assert registry.definitions("assistants") == [
        openai.pydantic_function_tool(Forecast, name="forecast", description="Weather forecast."),
        openai.pydantic_function_tool(Nothing, name="ping", description="Check the line."),
    ]


def test_definitions_have_the_shape_each_api_expects(registry: ToolRegistry) -> None:
    responses = registry.definitions("responses")[0]
    assistants = registry.definitions("assistants")[0]

    assert responses["type"] == "function"
    assert responses["name"] == "forecast"
    assert assistants["type"] == "function"
    assert set(assistants) == {"type", "function"}
    assert assistants["function"]["name"] == "forecast"
    assert assistants["function"]["parameters"] == responses["parameters"]


@pytest.mark.parametrize("api", ["responses", "assistants"])
def test_definitions_are_strict_plain_json(registry: ToolRegistry, api: str) -> None:
    for definition in registry.definitions(api):  # type: ignore[arg-type]
        function = definition if api == "responses" else definition["function"]
        parameters = function["parameters"]

        assert function["strict"] is True
        assert parameters["additionalProperties"] is False
        # Strict mode demands every property be listed as required, defaults or not.
        assert sorted(parameters["required"]) == sorted(parameters["properties"])
        assert type(definition) is dict
        assert json.loads(json.dumps(definition)) == definition


def test_unknown_api_is_refused(registry: ToolRegistry) -> None:
    with pytest.raises(ValueError, match="chat"):
        registry.definitions("chat")  # type: ignore[arg-type]


def test_names_are_unique(registry: ToolRegistry) -> None:
    with pytest.raises(ValueError, match="already registered"):
        registry.register(
            FunctionTool(name="ping", description="Again.", args_model=Nothing, function=ping)
        )
    with pytest.raises(ValueError, match="already registered"):
        registry.register(tool(description="Again.")(ping))

    assert registry.names() == ["forecast", "ping"]


def test_lookup(registry: ToolRegistry) -> None:
    tool = registry.get("ping")

    assert tool is not None
    assert tool.function is ping
    assert registry.get("pong") is None


def test_decorator_infers_name_description_and_model() -> None:
    decorated = tool(timeout_seconds=4, requires_approval=True)(forecast)

    assert decorated == FunctionTool(
        name="forecast",
        description="Weather forecast for a city.",
        args_model=Forecast,
        function=forecast,
        arguments_parameter="args",
        timeout_seconds=4,
        requires_approval=True,
    )
    assert tool(forecast).requires_approval is False


def test_a_tool_may_ask_whom_the_call_is_for() -> None:
    def whose(args: Nothing, context: ToolContext) -> str:
        """Name the caller."""
        return f"{context.user_id}/{context.call_id}"

    context = ToolContext(user_id="u", thread_id="t", run_id="r", assistant="a", call_id="c")
    decorated = tool(whose)

    assert decorated.context_parameter == "context"
    assert decorated.call(decorated.parse_arguments(""), context) == "u/c"
    assert tool(description="Ping.")(ping).call(Nothing(), context) == "pong"


def test_arguments_may_be_type_hints_instead_of_a_model() -> None:
    def greet(
        caller: ToolContext,
        name: Annotated[str, Field(description="Whom to greet.")],
        times: int | None,
    ) -> str:
        """Greet someone."""
        return f"{caller.user_id} greets {name} x{times}"

    decorated = tool(greet)
    context = ToolContext(user_id="u", thread_id="t", run_id="r", assistant="a")

    schema = decorated.parameters
    assert schema["properties"]["name"]["description"] == "Whom to greet."
    assert sorted(schema["required"]) == ["name", "times"]  # strict: all of them
    assert strict_schema_problems(schema) == []
    assert "caller" not in schema["properties"]
    assert decorated.call(decorated.parse_arguments('{"name": "Ada", "times": 2}'), context) == (
        "u greets Ada x2"
    )
    with pytest.raises(InvalidArguments, match="name"):
        decorated.parse_arguments('{"times": 2}')


def test_a_model_may_come_after_the_context() -> None:
    def whose(context: ToolContext, args: Nothing) -> str:
        """Name the caller."""
        return context.user_id

    decorated = tool(whose)
    context = ToolContext(user_id="u", thread_id="t", run_id="r", assistant="a")

    assert decorated.call(decorated.parse_arguments("{}"), context) == "u"


def test_decorator_needs_typed_parameters_and_one_context_at_most() -> None:
    def untyped(args):  # type: ignore[no-untyped-def]
        """No type hint."""
        return args

    def two_contexts(first: ToolContext, second: ToolContext) -> None:
        """Two contexts."""

    for function in (untyped, two_contexts):
        with pytest.raises(TypeError, match="type hint"):
            tool(function)


def test_decorator_refuses_what_it_could_not_call_or_strict_mode_refuses() -> None:
    def defaulted(city: str, days: int = 3) -> None:
        """A default the model would never leave out."""

    def positional(city: str, /) -> None:
        """Not passable by name."""

    def many(*cities: str) -> None:
        """Not passable by name."""

    def reserved(model_config: str) -> None:
        """A name pydantic keeps for itself."""

    for function, problem in [
        (defaulted, "default"),
        (positional, "by name"),
        (many, "by name"),
        (reserved, "usable name"),
    ]:
        with pytest.raises(TypeError, match=problem):
            tool(function)


def test_decorator_needs_a_description() -> None:
    with pytest.raises(ValueError, match="description"):
        tool(ping)


@pytest.mark.parametrize("name", ["", "has space", "dots.are.bad", "x" * 65])
def test_tool_names_follow_openai_rules(name: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        FunctionTool(name=name, description="Bad name.", args_model=Nothing, function=ping)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout_seconds"):
        FunctionTool(
            name="ping", description="Ping.", args_model=Nothing, function=ping, timeout_seconds=0
        )
