"""ToolRegistry describes its tools to both OpenAI APIs with strict schemas and unique names."""

from __future__ import annotations

import json
from typing import Literal

import openai
import pytest
from pydantic import BaseModel, Field

from threadline.tools import (
    DATA_ANALYST_TABLES,
    Tool,
    ToolRegistry,
    build_data_analyst_tools,
    resolve_database,
)
from threadline.tools.registry import responses_function_tool


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
            Tool(name="forecast", description="Weather forecast.", args_model=Forecast,
                 function=forecast),
            Tool(name="ping", description="Check the line.", args_model=Nothing, function=ping),
        ]
    )  # fmt: skip


def test_the_sdk_shapes_responses_function_tool_relies_on() -> None:
    """`responses_function_tool` lifts the public helper's nested function one level up, to
    the Responses shape: this fails if the SDK changes either."""
    from openai.types.responses import FunctionToolParam

    public = openai.pydantic_function_tool(Forecast, name="forecast", description="Forecast.")
    assert set(public) == {"type", "function"}
    assert public["type"] == "function"
    assert set(public["function"]) == {"name", "strict", "parameters", "description"}
    assert public["function"]["strict"] is True
    responses_keys = FunctionToolParam.__required_keys__ | FunctionToolParam.__optional_keys__
    assert {"type", "name", "strict", "parameters", "description"} <= responses_keys


def test_responses_definitions_match_the_sdk_helper(registry: ToolRegistry) -> None:
    """The SDK's own (private) Responses helper builds the same; if it moves, this test goes,
    and the one above still guards the shape."""
    from openai.lib._tools import pydantic_responses_function_tool

    assert responses_function_tool(Forecast, "forecast", "Weather forecast.") == (
        pydantic_responses_function_tool(Forecast, name="forecast", description="Weather forecast.")
    )
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
            Tool(name="ping", description="Again.", args_model=Nothing, function=ping)
        )
    with pytest.raises(ValueError, match="already registered"):
        registry.tool(description="Again.")(ping)

    assert registry.names() == ["forecast", "ping"]


def test_lookup(registry: ToolRegistry) -> None:
    tool = registry.get("ping")

    assert tool is not None
    assert tool.function is ping
    assert registry.get("pong") is None


def test_decorator_infers_name_description_and_model() -> None:
    registry = ToolRegistry()

    decorated = registry.tool(timeout_seconds=4)(forecast)

    assert decorated is forecast
    assert registry.get("forecast") == Tool(
        name="forecast",
        description="Weather forecast for a city.",
        args_model=Forecast,
        function=forecast,
        timeout_seconds=4,
    )


def test_decorator_needs_a_pydantic_parameter() -> None:
    registry = ToolRegistry()

    def untyped(args):  # type: ignore[no-untyped-def]
        """No model."""
        return args

    def two(first: Forecast, second: Forecast) -> None:
        """Too many parameters."""

    for function in (untyped, two):
        with pytest.raises(TypeError, match="pydantic model"):
            registry.tool()(function)


def test_decorator_needs_a_description() -> None:
    with pytest.raises(ValueError, match="description"):
        ToolRegistry().tool()(ping)


@pytest.mark.parametrize("name", ["", "has space", "dots.are.bad", "x" * 65])
def test_tool_names_follow_openai_rules(name: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        Tool(name=name, description="Bad name.", args_model=Nothing, function=ping)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout_seconds"):
        Tool(name="ping", description="Ping.", args_model=Nothing, function=ping, timeout_seconds=0)


@pytest.fixture(scope="module")
def analyst() -> ToolRegistry:
    return build_data_analyst_tools(resolve_database(None))


def test_data_analyst_tools(analyst: ToolRegistry) -> None:
    assert analyst.names() == ["query_database", "get_table_schema"]


def test_data_analyst_descriptions_name_every_table(analyst: ToolRegistry) -> None:
    query, schema = analyst.definitions("responses")

    for table in DATA_ANALYST_TABLES:
        assert table in query["description"]
        assert table in schema["description"]
    sales_columns = "sales(id, sale_date, customer_id, product_id, quantity, amount, region)"
    assert sales_columns in query["description"]
    assert "200 rows" in query["description"]


def test_data_analyst_schema_tool_only_accepts_known_tables(analyst: ToolRegistry) -> None:
    _, schema = analyst.definitions("assistants")
    table_name = schema["function"]["parameters"]["properties"]["table_name"]

    assert sorted(table_name["enum"]) == sorted(DATA_ANALYST_TABLES)
