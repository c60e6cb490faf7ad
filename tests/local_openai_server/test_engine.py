"""The scripted model's decisions, without HTTP."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Literal

import pytest
from openai import pydantic_function_tool
from pydantic import BaseModel, Field

from local.openai_server.engine import (
    DEFAULT_PLAYBOOK,
    Event,
    ModelInput,
    Rule,
    Script,
    Step,
    count_tokens,
    respond,
)

ANALYST = ("query_database", "get_table_schema")


def ask(text: str, tools: tuple[str, ...] = ANALYST, **kwargs: object) -> ModelInput:
    return ModelInput(events=[Event("user", text)], tool_names=tools, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("question", "expected_calls"),
    [
        ("Show me revenue by region", [("query_database", "GROUP BY region")]),
        ("What are our TOP PRODUCTS?", [("query_database", "JOIN products")]),
        ("monthly trend please", [("query_database", "strftime")]),
        ("how many customers per region", [("query_database", "FROM customers")]),
        ("which tables exist?", [("get_table_schema", "sales"), ("get_table_schema", "products")]),
    ],
)
def test_default_playbook(question: str, expected_calls: list[tuple[str, str]]) -> None:
    outcome = respond(ask(question), None, DEFAULT_PLAYBOOK)
    assert outcome.kind == "calls"
    assert [c.name for c in outcome.calls] == [name for name, _ in expected_calls]
    for call, (_, hint) in zip(outcome.calls, expected_calls, strict=True):
        assert hint in call.arguments


def test_no_second_playbook_call_for_the_same_question() -> None:
    events = [
        Event("user", "sales by region"),
        Event("call", '{"query": "..."}', "call_1", "query_database"),
        Event("output", json.dumps([[1, 2]] * 4), "call_1"),
    ]
    outcome = respond(ModelInput(events=events, tool_names=ANALYST), None, DEFAULT_PLAYBOOK)
    assert outcome.kind == "text"
    assert outcome.text.startswith("Here is what I found with query_database: 4 rows — [[1,2]")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ('{"rows": [{"a": 1}], "row_count": 1}', 'query_database: 1 rows — [{"a":1}]'),
        ('{"error": "no such column: x"}', 'the tool failed with error "no such column: x"'),
        ("plain words", "query_database: plain words"),
        ('{"columns": ["id"]}', 'query_database: {"columns":["id"]}'),
    ],
)
def test_summary_of_outputs(output: str, expected: str) -> None:
    events = [
        Event("user", "q"),
        Event("call", "{}", "c1", "query_database"),
        Event("output", output, "c1"),
    ]
    assert expected in respond(ModelInput(events=events), None, []).text


def test_summary_covers_only_the_latest_batch() -> None:
    events = [
        Event("user", "q"),
        Event("call", "{}", "old", "get_table_schema"),
        Event("output", '"old result"', "old"),
        Event("call", "{}", "new1", "query_database"),
        Event("call", "{}", "new2", "query_database"),
        Event("output", "[1]", "new1"),
        Event("output", "[2, 3]", "new2"),
    ]
    text = respond(ModelInput(events=events), None, []).text
    assert "old result" not in text
    assert "1 rows" in text
    assert "2 rows" in text


def test_outputs_sent_after_a_new_question_are_still_summarised() -> None:
    events = [
        Event("user", "q1"),
        Event("call", "{}", "c1", "query_database"),
        Event("user", "and also"),
        Event("output", "[1, 2]", "c1"),
    ]
    assert "query_database: 2 rows" in respond(ModelInput(events=events), None, []).text


def test_fallbacks() -> None:
    assert respond(ask("hello", tools=()), None, DEFAULT_PLAYBOOK).text == "You said: hello"
    long_text = respond(ask("x" * 500), None, []).text
    assert len(long_text) < 250
    assert long_text.endswith("…")
    files = respond(ask("what's in my file?", attached_filenames=("a.csv",)), None, []).text
    assert files == "The attached files are: a.csv."


def test_scripted_step_wins_over_playbook() -> None:
    outcome = respond(ask("sales by region"), Step.say("scripted"), DEFAULT_PLAYBOOK)
    assert (outcome.kind, outcome.text) == ("text", "scripted")


def test_custom_playbook_rule() -> None:
    playbook = [Rule(r"weather", [("get_weather", {"city": "Oslo"})])]
    outcome = respond(ask("Weather?", tools=("get_weather",)), None, playbook)
    assert [(c.name, json.loads(c.arguments)) for c in outcome.calls] == [
        ("get_weather", {"city": "Oslo"})
    ]


def test_usage_follows_text_length() -> None:
    short = respond(ModelInput(events=[Event("user", "hi")]), None, [])
    longer = respond(
        ModelInput(events=[Event("user", "hi" * 100)], instructions="be kind"), None, []
    )
    assert short.input_tokens == count_tokens("hi")
    assert longer.input_tokens == count_tokens("be kind" + "hi" * 100)
    assert longer.output_tokens > short.output_tokens


def test_script_keys_and_order() -> None:
    script = Script()
    script.push(Step.say("any 1"))
    script.push(Step.say("for t1"), key="t1")
    script.push(Step.say("any 2"))
    taken = [script.take("t2"), script.take("t1"), script.take("t1"), script.take(None)]
    assert [step.text if step else None for step in taken] == ["any 1", "for t1", "any 2", None]
    assert len(script) == 0


def test_http_error_step_is_not_a_model_turn() -> None:
    with pytest.raises(ValueError, match="not a model turn"):
        respond(ask("hi"), Step.http_error(429), [])


class Format(BaseModel):
    kind: Literal["csv", "tsv"]
    header: bool


class ExportArgs(BaseModel):
    """The arguments of a user's own tool, as the registry describes them (strict)."""

    query: str
    rows: int
    format: Format
    note: str | None


EXPORT = {
    "type": "function",
    "name": "export_table",
    "description": "Export a query result into a downloadable spreadsheet.",
    "parameters": ExportArgs.model_json_schema(),
    "strict": True,
}


def offered(question: str, *tools: dict[str, object], assistants: bool = False) -> ModelInput:
    shaped = [
        {"type": "function", "function": {k: v for k, v in t.items() if k != "type"}}
        if assistants
        else t
        for t in tools
    ]
    names = tuple(str(t["name"]) for t in tools)
    return ask(question, names, tools_json=json.dumps(shaped))


@pytest.mark.parametrize("assistants", [False, True])
def test_any_offered_tool_is_called_when_the_question_names_it(assistants: bool) -> None:
    question = "Please export_table 'SELECT region FROM sales' for 12 rows as tsv"
    outcome = respond(offered(question, EXPORT, assistants=assistants), None, DEFAULT_PLAYBOOK)
    (call,) = outcome.calls
    assert call.name == "export_table"
    arguments = ExportArgs.model_validate_json(call.arguments)  # as the tool will parse them
    assert arguments.query == "SELECT region FROM sales"
    assert arguments.rows == 12
    assert arguments.format == Format(kind="tsv", header=True)


def test_a_question_speaking_of_a_tools_description_calls_it_and_others_do_not() -> None:
    asked = respond(offered("export that 'SELECT 1' result", EXPORT), None, DEFAULT_PLAYBOOK)
    assert [call.name for call in asked.calls] == ["export_table"]
    # Without the text its arguments need, a question of its kind is no argument.
    unquoted = respond(offered("export that result please", EXPORT), None, DEFAULT_PLAYBOOK)
    assert (unquoted.kind, unquoted.calls) == ("text", ())
    within_a_word = respond(offered("our exported_tables", EXPORT), None, DEFAULT_PLAYBOOK)
    assert within_a_word.calls == ()
    unrelated = respond(offered("what a lovely afternoon", EXPORT), None, DEFAULT_PLAYBOOK)
    assert (unrelated.kind, unrelated.calls) == ("text", ())
    not_offered = respond(
        ModelInput(events=[Event("user", "export_table now")], tools_json=json.dumps([EXPORT])),
        None,
        DEFAULT_PLAYBOOK,
    )
    assert not_offered.calls == ()  # tool_choice none: listed, not offered


class Node(BaseModel):
    label: Annotated[str, Field(max_length=5)]
    parent: Node | None


class Awkward(BaseModel):
    only: Literal["only"]
    rating: Annotated[int, Field(ge=1, le=10)]
    tags: Annotated[list[str], Field(min_length=2)]
    day: date
    node: Node
    maybe: str | None


def test_arguments_satisfy_strict_schemas_with_bounds_constants_and_recursion() -> None:
    awkward = pydantic_function_tool(Awkward, name="rate_it", description="Rate a thing.")
    for raw in (awkward["function"]["parameters"], Awkward.model_json_schema()):
        question = "rate_it 'lovely' with 20 stars"
        tool = {"type": "function", "name": "rate_it", "description": "x", "parameters": raw}
        (call,) = respond(offered(question, tool), None, DEFAULT_PLAYBOOK).calls
        arguments = Awkward.model_validate_json(call.arguments)
        assert (arguments.only, arguments.rating, arguments.tags) == ("only", 10, ["lovely"] * 2)
        assert arguments.node == Node(label="lovel", parent=None)
    nullable_list_type = {
        "type": "function",
        "name": "note_it",
        "description": "x",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": ["string", "null"]}, "b": True},
        },
    }
    (call,) = respond(offered("note_it 'x'", nullable_list_type), None, DEFAULT_PLAYBOOK).calls
    assert json.loads(call.arguments)["a"] == "x"
