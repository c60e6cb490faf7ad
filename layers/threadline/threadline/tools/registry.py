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

from pydantic import BaseModel, ValidationError, create_model

from threadline.errors import validation_problems

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
    """A file saved for the user: the run's view lists it, with a download URL made when the
    user reads the run (a URL made now would expire before anyone used it)."""

    filename: str  # as stored: reduced to safe characters, unique within the run
    bytes: int


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
        """Hand the user a file: stored with the run's outputs, listed in its `files`."""
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
    """A Python function. Its arguments are one pydantic model, which `arguments_parameter`
    takes, or (None) its parameters' type hints, gathered in a model made for it and passed
    as keywords; `context_parameter` names the parameter that takes a ToolContext, if one
    does."""

    args_model: type[ArgsT]
    function: Callable[..., Any]
    arguments_parameter: str | None = None
    context_parameter: str | None = None

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
            raise InvalidArguments(validation_problems(error, what="the arguments")) from None

    def call(self, arguments: Any, context: ToolContext) -> Any:
        given = {self.context_parameter: context} if self.context_parameter else {}
        if self.arguments_parameter is None:
            return self.function(
                **{field: getattr(arguments, field) for field in self.args_model.model_fields},
                **given,
            )
        return self.function(**{self.arguments_parameter: arguments}, **given)


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

    Its arguments are either one parameter annotated with a pydantic model, or parameters with
    type hints (`Annotated[str, Field(description=...)]` describes one to the model); a
    parameter annotated `ToolContext` gets whom the call is for.
    """

    def decorate(function: Callable[..., Any]) -> FunctionTool[Any]:
        args_model, arguments_parameter, context_parameter = _signature_of(function)
        return FunctionTool(
            name=name or function.__name__,
            description=description or inspect.getdoc(function) or "",
            args_model=args_model,
            function=function,
            arguments_parameter=arguments_parameter,
            context_parameter=context_parameter,
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


def _signature_of(function: Callable[..., Any]) -> tuple[type[BaseModel], str | None, str | None]:
    """The model of the function's arguments; the parameter that takes them as one model
    (None: its parameters are the arguments, passed as keywords); the parameter that takes a
    ToolContext."""
    name = function.__name__
    signature = inspect.signature(function)
    hints = typing.get_type_hints(function, include_extras=True)
    passed_by_name = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if any(parameter.kind not in passed_by_name for parameter in signature.parameters.values()):
        raise TypeError(f"tool function {name}: its parameters must be passable by name")
    context = [p for p in signature.parameters if hints.get(p) is ToolContext]
    arguments = [p for p in signature.parameters.values() if p.name not in context]
    if len(context) > 1 or any(p.name not in hints for p in arguments):
        raise TypeError(
            f"tool function {name}: every parameter needs a type hint (a pydantic model, or "
            "the argument's type), and at most one may be the ToolContext"
        )
    given = context[0] if context else None
    first = hints[arguments[0].name] if arguments else None
    if len(arguments) == 1 and isinstance(first, type) and issubclass(first, BaseModel):
        return first, arguments[0].name, given
    for parameter in arguments:
        if parameter.default is not inspect.Parameter.empty:
            raise TypeError(
                f"tool function {name}: {parameter.name} has a default, which OpenAI's strict "
                "mode refuses (the model sends every argument): make it `T | None` instead"
            )
        if parameter.name.startswith(("_", "model_")):
            raise TypeError(f"tool function {name}: {parameter.name} is not a usable name")
    fields: dict[str, Any] = {p.name: (hints[p.name], ...) for p in arguments}
    return create_model(f"{name}_arguments", **fields), None, given
