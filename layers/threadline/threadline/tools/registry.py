"""Tools the model may call: typed Python functions described to OpenAI by their pydantic model.

A tool takes one argument, an instance of its pydantic model, and returns JSON-serialisable
data - or a ToolResult when it also has a log-safe summary for the run's timeline.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast, overload

import openai
from pydantic import BaseModel

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


@dataclass(frozen=True)
class Tool(Generic[ArgsT]):
    name: str
    description: str
    args_model: type[ArgsT]
    function: Callable[[ArgsT], Any]
    # Upper bound for this tool's run; the caller's timeout applies when it is shorter.
    timeout_seconds: float | None = None

    def __post_init__(self) -> None:
        if not _TOOL_NAME.fullmatch(self.name):
            raise ValueError(f"tool name {self.name!r} must match {_TOOL_NAME.pattern}")
        if not self.description.strip():
            raise ValueError(f"tool {self.name!r} needs a description")
        if self.timeout_seconds is not None and self.timeout_seconds <= 0:
            raise ValueError(f"tool {self.name!r}: timeout_seconds must be positive")

    @overload
    def definition(self, api: Literal["responses"]) -> ResponsesFunctionTool: ...
    @overload
    def definition(self, api: Literal["assistants"]) -> AssistantsFunctionTool: ...
    def definition(self, api: ToolApi) -> ResponsesFunctionTool | AssistantsFunctionTool:
        """The strict OpenAI function-tool definition, in the shape `api` expects."""
        if api == "responses":
            return responses_function_tool(self.args_model, self.name, self.description)
        if api == "assistants":
            # The helper returns a dict subclass carrying the model; callers only need the
            # JSON, so it is copied to a plain dict.
            return openai.pydantic_function_tool(
                self.args_model, name=self.name, description=self.description
            ).copy()
        raise ValueError(f"unknown OpenAI API {api!r}; expected 'responses' or 'assistants'")


def responses_function_tool(
    args_model: type[BaseModel], name: str, description: str
) -> ResponsesFunctionTool:
    """The Responses API's strict function tool for `args_model`, from the SDK's public helper.

    The SDK builds the Responses shape only in a private module (`openai.lib._tools`), from
    the public `pydantic_function_tool`'s nested "function" (name, strict schema, description)
    lifted one level up; this does the same without the private import. The unit tests fail
    if either shape changes in the SDK.
    """
    function = openai.pydantic_function_tool(args_model, name=name, description=description)[
        "function"
    ]
    tool: ResponsesFunctionTool = {
        "type": "function",
        "name": function["name"],
        "parameters": dict(function["parameters"]),
        "strict": function["strict"],
        "description": function["description"],
    }
    return tool


class ToolRegistry:
    """The tools one assistant can call, by unique name, in registration order."""

    def __init__(self, tools: Iterable[Tool[Any]] = ()) -> None:
        self._tools: dict[str, Tool[Any]] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool[ArgsT]) -> Tool[ArgsT]:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        return tool

    def tool(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout_seconds: float | None = None,
    ) -> Callable[[Callable[[ArgsT], Any]], Callable[[ArgsT], Any]]:
        """Register the decorated function; name and description default to its own."""

        def decorate(function: Callable[[ArgsT], Any]) -> Callable[[ArgsT], Any]:
            self.register(
                Tool(
                    name=name or function.__name__,
                    description=description or inspect.getdoc(function) or "",
                    args_model=_args_model_of(function),
                    function=function,
                    timeout_seconds=timeout_seconds,
                )
            )
            return function

        return decorate

    def get(self, name: str) -> Tool[Any] | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    @overload
    def definitions(self, api: Literal["responses"]) -> list[ResponsesFunctionTool]: ...
    @overload
    def definitions(self, api: Literal["assistants"]) -> list[AssistantsFunctionTool]: ...
    def definitions(
        self, api: ToolApi
    ) -> list[ResponsesFunctionTool] | list[AssistantsFunctionTool]:
        # One comprehension per API, so the checker knows each list holds one API's shape.
        if api == "responses":
            return [tool.definition(api) for tool in self._tools.values()]
        return [tool.definition(api) for tool in self._tools.values()]


def _args_model_of(function: Callable[[ArgsT], Any]) -> type[ArgsT]:
    """The pydantic model annotated on the function's single parameter."""
    parameters = list(inspect.signature(function).parameters)
    annotation = typing.get_type_hints(function).get(parameters[0]) if parameters else None
    if (
        len(parameters) != 1
        or not isinstance(annotation, type)
        or not issubclass(annotation, BaseModel)
    ):
        raise TypeError(
            f"tool function {function.__name__} must take one parameter annotated "
            "with a pydantic model"
        )
    # The annotation, read at run time, is the parameter's type: ArgsT.
    return cast("type[ArgsT]", annotation)
