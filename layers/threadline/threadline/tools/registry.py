"""Tools the model may call, each described to OpenAI by a strict JSON schema.

A tool is a Python function made one with `@tool` (its arguments are a pydantic model) or a
Lambda function an assistant's file names (`threadline.tools.lambda_tools`). A Python tool
takes an instance of its model - and, if it asks for it, a `ToolContext` saying whom the call
is for - and returns JSON-serialisable data, or a ToolResult when it also has a log-safe
summary for the run's timeline.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, overload

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from openai.types.beta import FunctionToolParam as AssistantsFunctionTool
    from openai.types.responses import FunctionToolParam as ResponsesFunctionTool

ArgsT = TypeVar("ArgsT", bound=BaseModel)
ToolApi = Literal["responses", "assistants"]

# OpenAI's rule for function names.
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


@dataclass(frozen=True)
class ToolResult:
    """A tool's answer: `data` goes to the model, `summary` (small, log-safe) to the timeline."""

    data: Any
    summary: dict[str, Any] = field(default_factory=dict)


class FileSaver(Protocol):
    def __call__(
        self, call_id: str, filename: str, body: bytes, content_type: str
    ) -> SavedFile: ...


@dataclass(frozen=True)
class SavedFile:
    filename: str  # as stored: reduced to safe characters, unique within the run
    bytes: int
    download_url: str  # short-lived; the run's view lists the file with a fresh one
    expires_in: int


@dataclass(frozen=True)
class ToolContext:
    """Whom a call is for: the run's owner, thread and run, and the model's id of the call
    (empty until the executor hands the context to one call)."""

    user_id: str
    thread_id: str
    run_id: str
    assistant: str
    call_id: str = ""
    files: FileSaver | None = field(default=None, repr=False, compare=False)

    def caller(self) -> dict[str, str]:
        """The identity, as a Lambda tool receives it."""
        return {
            "user_id": self.user_id,
            "thread_id": self.thread_id,
            "run_id": self.run_id,
            "assistant": self.assistant,
            "call_id": self.call_id,
        }

    def save_file(self, filename: str, body: bytes, content_type: str) -> SavedFile:
        """Hand the user a file: stored with the run's outputs, listed in its files."""
        if self.files is None:
            raise RuntimeError("this run cannot store files")
        return self.files(self.call_id, filename, body, content_type)


class InvalidArguments(ValueError):
    """The model's arguments do not fit the tool's schema; the message says how, for it."""


@dataclass(frozen=True, kw_only=True)
class Tool(ABC):
    name: str
    description: str
    # Upper bound for this tool's run; the caller's timeout applies when it is shorter.
    timeout_seconds: float | None = None
    # A person must approve each call before it runs.
    requires_approval: bool = False

    def __post_init__(self) -> None:
        if not _TOOL_NAME.fullmatch(self.name):
            raise ValueError(f"tool name {self.name!r} must match {_TOOL_NAME.pattern}")
        if not self.description.strip():
            raise ValueError(f"tool {self.name!r} needs a description")
        if self.timeout_seconds is not None and self.timeout_seconds <= 0:
            raise ValueError(f"tool {self.name!r}: timeout_seconds must be positive")

    @property
    @abstractmethod
    def parameters(self) -> dict[str, Any]:
        """The strict JSON schema of the tool's arguments."""

    @abstractmethod
    def parse_arguments(self, arguments: str) -> Any:
        """The model's JSON arguments, checked; raises InvalidArguments."""

    @abstractmethod
    def call(self, arguments: Any, context: ToolContext) -> Any:
        """Run the tool on parsed arguments; its answer, or a ToolResult."""

    @overload
    def definition(self, api: Literal["responses"]) -> ResponsesFunctionTool: ...
    @overload
    def definition(self, api: Literal["assistants"]) -> AssistantsFunctionTool: ...
    def definition(self, api: ToolApi) -> ResponsesFunctionTool | AssistantsFunctionTool:
        """The strict OpenAI function-tool definition, in the shape `api` expects."""
        if api == "responses":
            return {
                "type": "function",
                "name": self.name,
                "parameters": self.parameters,
                "strict": True,
                "description": self.description,
            }
        if api == "assistants":
            return {
                "type": "function",
                "function": {
                    "name": self.name,
                    "parameters": self.parameters,
                    "strict": True,
                    "description": self.description,
                },
            }
        raise ValueError(f"unknown OpenAI API {api!r}; expected 'responses' or 'assistants'")


@dataclass(frozen=True, kw_only=True)
class FunctionTool(Tool, Generic[ArgsT]):
    """A Python function; `takes_context` when it has a second parameter for a ToolContext."""

    args_model: type[ArgsT]
    function: Callable[..., Any]
    takes_context: bool = False

    @cached_property
    def parameters(self) -> dict[str, Any]:
        # The SDK's public helper makes a pydantic model's schema strict. Imported here: the
        # functions that only read the assistants never load the SDK.
        import openai

        function = openai.pydantic_function_tool(
            self.args_model, name=self.name, description=self.description
        )["function"]
        return dict(function["parameters"])

    def parse_arguments(self, arguments: str) -> ArgsT:
        try:
            # Models sometimes send an empty string for a call without arguments.
            return self.args_model.model_validate_json(arguments.strip() or "{}")
        except ValidationError as error:
            raise InvalidArguments(_describe_validation_error(error)) from None

    def call(self, arguments: Any, context: ToolContext) -> Any:
        if self.takes_context:
            return self.function(arguments, context)
        return self.function(arguments)


@overload
def tool(function: Callable[..., Any], /) -> FunctionTool[Any]: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_seconds: float | None = None,
    requires_approval: bool = False,
) -> Callable[[Callable[..., Any]], FunctionTool[Any]]: ...
def tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_seconds: float | None = None,
    requires_approval: bool = False,
) -> FunctionTool[Any] | Callable[[Callable[..., Any]], FunctionTool[Any]]:
    """Make the decorated function a tool; name and description default to its own.

    The function takes one parameter annotated with a pydantic model (the arguments), and may
    take a second annotated `ToolContext`.
    """

    def decorate(function: Callable[..., Any]) -> FunctionTool[Any]:
        args_model, takes_context = _signature_of(function)
        return FunctionTool(
            name=name or function.__name__,
            description=description or inspect.getdoc(function) or "",
            args_model=args_model,
            function=function,
            takes_context=takes_context,
            timeout_seconds=timeout_seconds,
            requires_approval=requires_approval,
        )

    return decorate(function) if function is not None else decorate


class ToolRegistry:
    """The tools one assistant can call, by unique name, in registration order."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for each in tools:
            self.register(each)

    def register(self, tool: Tool) -> Tool:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def __iter__(self) -> typing.Iterator[Tool]:
        return iter(self._tools.values())

    @overload
    def definitions(self, api: Literal["responses"]) -> list[ResponsesFunctionTool]: ...
    @overload
    def definitions(self, api: Literal["assistants"]) -> list[AssistantsFunctionTool]: ...
    def definitions(
        self, api: ToolApi
    ) -> list[ResponsesFunctionTool] | list[AssistantsFunctionTool]:
        # One comprehension per API, so the checker knows each list holds one API's shape.
        if api == "responses":
            return [each.definition(api) for each in self._tools.values()]
        return [each.definition(api) for each in self._tools.values()]


def parse_json_object(arguments: str) -> dict[str, Any]:
    """Arguments that must be a JSON object (an empty string is an empty one)."""
    try:
        parsed = json.loads(arguments.strip() or "{}")
    except ValueError as error:
        raise InvalidArguments(f"the arguments are not valid JSON ({error})") from None
    if not isinstance(parsed, dict):
        raise InvalidArguments("the arguments must be a JSON object")
    return parsed


def _describe_validation_error(error: ValidationError) -> str:
    """One clause per problem, each naming the offending field when there is one."""
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        if detail["type"] == "json_invalid":
            problems.append(f"the arguments are not valid JSON ({detail['msg']})")
            continue
        location = ".".join(str(part) for part in detail["loc"])
        problems.append(f"{location}: {detail['msg']}" if location else detail["msg"])
    return "; ".join(problems)


def _signature_of(function: Callable[..., Any]) -> tuple[type[BaseModel], bool]:
    """The pydantic model of the function's first parameter; whether a ToolContext follows."""
    parameters = list(inspect.signature(function).parameters)
    hints = typing.get_type_hints(function)
    annotation = hints.get(parameters[0]) if parameters else None
    takes_context = len(parameters) == 2 and hints.get(parameters[1]) is ToolContext
    if (
        len(parameters) not in (1, 2)
        or (len(parameters) == 2 and not takes_context)
        or not isinstance(annotation, type)
        or not issubclass(annotation, BaseModel)
    ):
        raise TypeError(
            f"tool function {function.__name__} must take one parameter annotated with a "
            "pydantic model, and may take a second annotated ToolContext"
        )
    return annotation, takes_context
