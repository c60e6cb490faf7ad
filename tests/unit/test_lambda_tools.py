"""A Lambda tool is invoked with the parsed arguments and the caller, and whatever goes wrong
(the function raises, outlives its timeout, the arguments are not an object) becomes an error
output the model can read."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest

from threadline.models import ToolCall
from threadline.tools import LambdaTool, LambdaToolConfig, ToolContext, ToolRegistry, run_tool_calls

CALLER = ToolContext(user_id="user-1", thread_id="thread-1", run_id="run-1", assistant="analyst")
SCHEMA = {
    "type": "object",
    "properties": {"region": {"type": "string"}},
    "required": ["region"],
    "additionalProperties": False,
}


class FakeLambda:
    """Stands in for the Lambda service: records invocations, answers as told."""

    def __init__(self, answer: dict[str, Any], *, release: threading.Event | None = None) -> None:
        self.answer = answer
        self.release = release
        self.invocations: list[dict[str, Any]] = []

    def invoke(self, **request: Any) -> dict[str, Any]:
        self.invocations.append(request)
        if self.release is not None:
            self.release.wait(timeout=5)
        body = json.dumps(self.answer.get("body")).encode()
        return {"Payload": io.BytesIO(body), **self.answer.get("headers", {})}


def _tool(client: FakeLambda, **overrides: Any) -> LambdaTool:
    config = LambdaToolConfig(
        name="get_target",
        description="A region's target.",
        function="Targets",
        parameters=SCHEMA,
        **overrides,
    )
    arn = "arn:aws:lambda:us-east-1:123456789012:function:targets"
    return LambdaTool.of(config, lambda: client, {"Targets": arn})  # type: ignore[arg-type, return-value]


def _run(tool: LambdaTool, arguments: str) -> dict[str, Any]:
    [output] = run_tool_calls(
        ToolRegistry([tool]),
        [ToolCall(id="call-7", name=tool.name, arguments=arguments)],
        caller=CALLER,
        timeout_seconds=5,
    )
    return {"is_error": output.is_error, "output": json.loads(output.output)}


def test_the_function_gets_the_arguments_and_the_caller() -> None:
    client = FakeLambda({"body": {"target": 42}})

    result = _run(_tool(client), '{"region": "North"}')

    assert result == {"is_error": False, "output": {"target": 42}}
    [request] = client.invocations
    assert request["FunctionName"] == "arn:aws:lambda:us-east-1:123456789012:function:targets"
    assert request["InvocationType"] == "RequestResponse"
    assert json.loads(request["Payload"]) == {
        "tool": "get_target",
        "arguments": {"region": "North"},
        "caller": {
            "user_id": "user-1",
            "thread_id": "thread-1",
            "run_id": "run-1",
            "assistant": "analyst",
            "call_id": "call-7",
        },
    }


def test_a_function_error_is_an_output_the_model_reads() -> None:
    failure = {"errorType": "KeyError", "errorMessage": "'region'", "stackTrace": ["..."]}
    client = FakeLambda({"body": failure, "headers": {"FunctionError": "Unhandled"}})

    result = _run(_tool(client), '{"region": "North"}')

    assert result["is_error"] is True
    assert result["output"]["error"]["type"] == "tool_error"
    assert result["output"]["error"]["message"] == "LambdaToolError: KeyError: 'region'"


def test_a_tool_past_its_timeout_is_answered_with_a_timeout() -> None:
    release = threading.Event()
    client = FakeLambda({"body": {"target": 1}}, release=release)
    try:
        result = _run(_tool(client, timeout_seconds=0.1), '{"region": "North"}')
    finally:
        release.set()

    assert result["output"]["error"]["type"] == "timeout"


@pytest.mark.parametrize("arguments", ['["North"]', "{not json", '"North"'])
def test_arguments_must_be_a_json_object(arguments: str) -> None:
    client = FakeLambda({"body": {}})

    result = _run(_tool(client), arguments)

    assert result["output"]["error"]["type"] == "invalid_arguments"
    assert client.invocations == []


@pytest.mark.parametrize(
    "function",
    ["my-tool", "my-tool:live", "arn:aws:lambda:eu-west-1:123456789012:function:my-tool:3"],
)
def test_function_names_and_arns_are_accepted(function: str) -> None:
    config = LambdaToolConfig(name="t", description="d", function=function, parameters=SCHEMA)

    assert LambdaTool.of(config, FakeLambda, {}).function_name == function  # type: ignore[arg-type]


@pytest.mark.parametrize("function", ["", "has space", "arn:aws:s3:::bucket", "x" * 65])
def test_other_function_names_are_refused(function: str) -> None:
    with pytest.raises(ValueError, match="function"):
        LambdaToolConfig(name="t", description="d", function=function, parameters=SCHEMA)
