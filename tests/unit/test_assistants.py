"""The assistants folder: what ships loads cleanly, and every mistake a user can make in it is
caught when it loads, with the file and the problem named."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from assistants.data_analyst import TABLES
from threadline.assistant_config import assistants_directory, load_assistants, load_catalogue
from threadline.errors import ConfigurationError
from threadline.models import ToolCall
from threadline.tools import ToolContext, ToolRegistry, run_tool_calls
from threadline.tools.strict_schema import strict_schema_problems

CALLER = ToolContext(user_id="user-1", thread_id="thread-1", run_id="run-1", assistant="analyst")
ANSWER_TOOL = """
from pydantic import BaseModel
from threadline.tools import tool


class Question(BaseModel):
    text: str


@tool(description="Answer a question.")
def answer(args: Question) -> str:
    return args.text
"""


def _assistant(**fields: Any) -> str:
    return json.dumps(
        {"name": "helper", "display_name": "Helper", "instructions": "Help."} | fields
    )


def _folder(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    """A package named `name` (unique per test: modules are imported by package name)."""
    folder = tmp_path / name
    folder.mkdir()
    for filename, text in files.items():
        (folder / filename).write_text(textwrap.dedent(text))
    return folder


def _problems(folder: Path) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_catalogue(folder)
    return str(caught.value)


def test_the_shipped_assistants_load_with_strict_tools() -> None:
    """Fails when a shipped assistant names a tool that does not exist or a tool's schema is
    not one OpenAI's strict mode accepts."""
    catalogue = load_catalogue(assistants_directory())

    analyst = catalogue.assistants["data_analyst"]
    assert analyst.tools == ["query_database", "get_table_schema", "export_query_csv"]
    assert [tool.name for tool in analyst.lambda_tools] == ["get_sales_target"]
    assert catalogue.schema_problems() == []


def test_a_loaded_folder_offers_its_tools(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        "offers_tools",
        {"helper.json": _assistant(tools=["answer"]), "answering.py": ANSWER_TOOL},
    )

    catalogue = load_catalogue(folder)

    assert list(catalogue.assistants) == ["helper"]
    assert list(catalogue.tools) == ["answer"]
    [output] = run_tool_calls(
        ToolRegistry([catalogue.tools["answer"]]),
        [ToolCall(id="call-1", name="answer", arguments='{"text": "42"}')],
        caller=CALLER,
        timeout_seconds=5,
    )
    assert json.loads(output.output) == "42"


def test_an_assistant_naming_a_missing_tool_is_refused(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        "missing_tool",
        {"helper.json": _assistant(tools=["answer", "forecast"]), "answering.py": ANSWER_TOOL},
    )

    assert "helper.json: names no tool 'forecast'" in _problems(folder)


def test_a_tool_whose_schema_is_not_strict_is_refused(tmp_path: Path) -> None:
    loose = """
        from pydantic import BaseModel
        from threadline.tools import tool


        class Tally(BaseModel):
            counts: dict[str, int]


        @tool(description="Add the counts up.")
        def tally(args: Tally) -> int:
            return sum(args.counts.values())
    """
    folder = _folder(
        tmp_path, "loose_schema", {"helper.json": _assistant(tools=["tally"]), "tally.py": loose}
    )
    catalogue = load_catalogue(folder)

    problem = "tool tally: $.properties.counts: objects need additionalProperties: false"
    assert catalogue.schema_problems() == [problem]
    with pytest.raises(ConfigurationError, match="assistant helper: " + re.escape(problem)):
        catalogue.tools_for(catalogue.assistants["helper"], _no_lambda, {})


def _no_lambda() -> Any:
    raise AssertionError("no Lambda tool is called")


def test_two_tools_with_one_name_are_refused(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        "two_names",
        {"helper.json": _assistant(), "first.py": ANSWER_TOOL, "second.py": ANSWER_TOOL},
    )

    assert "second.py: a second tool named 'answer'" in _problems(folder)


def test_a_lambda_tool_needs_a_strict_schema_and_a_unique_name(tmp_path: Path) -> None:
    lambda_tool = {
        "name": "answer",
        "description": "Answer in another function.",
        "function": "arn:aws:lambda:eu-west-1:123456789012:function:answer",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
    }
    folder = _folder(
        tmp_path,
        "lambda_tools",
        {
            "helper.json": _assistant(tools=["answer"], lambda_tools=[lambda_tool]),
            "answering.py": ANSWER_TOOL,
        },
    )

    problems = _problems(folder)

    assert "not a strict schema" in problems
    assert "objects need additionalProperties: false" in problems
    assert "every property must be required (not required: text)" in problems
    strict = lambda_tool | {
        "parameters": lambda_tool["parameters"]
        | {"required": ["text"], "additionalProperties": False}
    }
    (folder / "helper.json").write_text(_assistant(tools=["answer"], lambda_tools=[strict]))
    assert "names 'answer' twice" in _problems(folder)


def test_a_file_must_be_named_as_its_assistant_and_valid(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        "misnamed",
        {"other.json": _assistant(), "broken.json": '{"name": "broken"}'},
    )

    problems = _problems(folder)

    assert "other.json: its name is 'helper', not 'other'" in problems
    assert "broken.json:" in problems
    assert "instructions" in problems


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    assert "no assistant" in _problems(_folder(tmp_path, "empty_folder", {}))


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ([], "must be a JSON object"),
        ({"anyOf": [{"type": "object"}]}, "root must be an object"),
        (
            {"type": "object", "properties": {}, "required": [], "additionalProperties": False,
             "allOf": []},
            "allOf is not supported",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "text"}}, "required": ["a"],
             "additionalProperties": False},
            "unknown type text",
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}, "required": ["a"],
             "additionalProperties": False},
            "names no definition",
        ),
        (
            {"type": "object", "properties": {"a": {}}, "required": ["a"],
             "additionalProperties": False},
            "needs a type",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "integer", "default": 1}},
             "required": ["a"], "additionalProperties": False},
            "default is not supported",
        ),
    ],
)  # fmt: skip
def test_strict_schema_problems(schema: Any, problem: str) -> None:
    assert any(problem in each for each in strict_schema_problems(schema))


def test_nesting_deeper_than_ten_objects_is_refused() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(12):
        schema = {
            "type": "object",
            "properties": {"inner": schema},
            "required": ["inner"],
            "additionalProperties": False,
        }

    assert any("nested deeper than 10" in each for each in strict_schema_problems(schema))


@pytest.fixture(scope="module")
def analyst() -> ToolRegistry:
    catalogue = load_catalogue(assistants_directory())
    return ToolRegistry(
        catalogue.tools[name] for name in catalogue.assistants["data_analyst"].tools
    )


def _run(analyst: ToolRegistry, *calls: ToolCall) -> list[Any]:
    return run_tool_calls(analyst, list(calls), caller=CALLER, timeout_seconds=5)


def test_data_analyst_descriptions_name_every_table(analyst: ToolRegistry) -> None:
    query, schema, _export = analyst.definitions("responses")

    for table in TABLES:
        assert table in query["description"]
        assert table in schema["description"]
    sales_columns = "sales(id, sale_date, customer_id, product_id, quantity, amount, region)"
    assert sales_columns in query["description"]
    assert "200 rows" in query["description"]
    table_name = schema["parameters"]["properties"]["table_name"]
    assert sorted(table_name["enum"]) == sorted(TABLES)


def test_data_analyst_query(analyst: ToolRegistry) -> None:
    grouped = "SELECT region, count(*) AS sales FROM sales GROUP BY region ORDER BY region"
    crossed = "SELECT sales.id FROM sales, products"
    call = ToolCall(id="grouped", name="query_database", arguments=json.dumps({"query": grouped}))
    many = ToolCall(id="crossed", name="query_database", arguments=json.dumps({"query": crossed}))

    regions, rows = _run(analyst, call, many)

    data = json.loads(regions.output)
    assert data["columns"] == ["region", "sales"]
    assert [row[0] for row in data["rows"]] == ["East", "North", "South", "West"]
    assert sum(row[1] for row in data["rows"]) == 200
    assert regions.summary == {"sql": grouped, "row_count": 4, "truncated": False}
    assert (json.loads(rows.output)["row_count"], json.loads(rows.output)["truncated"]) == (
        200,
        True,
    )


def test_data_analyst_refusals_reach_the_model(analyst: ToolRegistry) -> None:
    drop = json.dumps({"query": "SELECT 1; DROP TABLE sales"})

    rejected, secrets = _run(
        analyst,
        ToolCall(id="drop", name="query_database", arguments=drop),
        ToolCall(id="bad", name="get_table_schema", arguments='{"table_name": "secrets"}'),
    )

    assert json.loads(rejected.output)["error"]["type"] == "tool_error"
    assert (
        "QueryRejected: only one SQL statement" in json.loads(rejected.output)["error"]["message"]
    )
    assert json.loads(secrets.output)["error"]["type"] == "invalid_arguments"


def test_data_analyst_table_schema(analyst: ToolRegistry) -> None:
    [products] = _run(
        analyst, ToolCall(id="ok", name="get_table_schema", arguments='{"table_name": "products"}')
    )

    data = json.loads(products.output)
    assert data["table"] == "products"
    assert data["row_count"] == 12
    assert data["columns"][0] == {"name": "id", "type": "INTEGER", "notnull": False, "pk": True}
    assert products.summary == {"table": "products", "row_count": 12}


def test_reading_the_assistants_imports_no_tool_code(tmp_path: Path) -> None:
    """What only needs an assistant's name or model (FinishRun's metrics, the API's start of
    a run) reads the files; the tools' modules are imported where tools run."""
    folder = _folder(
        tmp_path,
        "unimported_tools",
        {"helper.json": _assistant(tools=["answer"]), "exploding.py": "raise ImportError('no')"},
    )

    assert list(load_assistants(folder)) == ["helper"]
    with pytest.raises(ImportError):
        load_catalogue(folder)
