"""The deployment's assistants and their tools: user code and data in an assistants folder.

The folder is a Python package (`assistants/` at the top of the project; the build puts it in
the layer). Each `<name>.json` in it is an assistant; each module in it is imported, and the
`@tool` functions it defines become the tools an assistant may name. `ASSISTANTS_DIR` points at
another folder. Loading checks what a run would trip over later: an assistant naming a tool
that does not exist, two tools with one name, a Lambda tool's schema that OpenAI's strict mode
refuses. A Python tool's schema comes from the OpenAI SDK, which only the functions that talk
to OpenAI load: it is checked when a run's tools are put together, and by the tests.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from threadline.errors import ConfigurationError, InvalidRequestError
from threadline.tools.lambda_tools import LambdaTool, LambdaToolConfig
from threadline.tools.registry import FunctionTool, ToolRegistry
from threadline.tools.strict_schema import strict_schema_problems

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

ASSISTANTS_PACKAGE = "assistants"


class McpServerConfig(BaseModel):
    """A remote MCP server the model may use (a hosted `mcp` tool of the Responses API)."""

    model_config = ConfigDict(extra="forbid")

    server_label: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    server_url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2048)
    server_description: str | None = None
    allowed_tools: list[str] | None = Field(default=None, description="None: every tool.")
    # "always", "never", or OpenAI's filter ({"never": {"tool_names": [...]}}).
    require_approval: Literal["always", "never"] | dict[str, Any] = "always"
    headers_secret: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9/_+=.@-]{1,200}$",
        description="A Secrets Manager secret holding a JSON object of HTTP headers to send "
        "(e.g. Authorization): its name under the deployment's `threadline/<Stage>/mcp/`, "
        "read when a response is created; never kept in the file.",
    )


class AssistantConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    display_name: str
    model: str | None = None  # None: the deployment's default model
    instructions: str
    tools: list[str] = Field(
        default_factory=list, description="Python tools (`@tool` functions), by name."
    )
    lambda_tools: list[LambdaToolConfig] = Field(default_factory=list)
    mcp_servers: list[McpServerConfig] = Field(default_factory=list)
    hosted_tools: list[Literal["code_interpreter", "file_search"]] = Field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """Changes whenever the configuration does (names a remote assistant's version)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Catalogue:
    assistants: dict[str, AssistantConfig]
    tools: dict[str, FunctionTool]  # the Python tools the folder's modules define, by name

    def schema_problems(self, names: Iterable[str] | None = None) -> list[str]:
        """Why the named Python tools' (all by default) schemas are not strict-valid."""
        return [
            f"tool {name}: {problem}"
            for name in (self.tools if names is None else names)
            for problem in strict_schema_problems(self.tools[name].parameters)
        ]

    def tools_for(
        self,
        assistant: AssistantConfig,
        lambda_client: Callable[[], LambdaClient],
        functions: Mapping[str, str],
    ) -> ToolRegistry:
        """The tools the assistant names: its Python tools and its Lambda tools (`functions`:
        the deployment's tool functions by the names the files give them)."""
        problems = self.schema_problems(assistant.tools)
        if problems:
            raise ConfigurationError(f"assistant {assistant.name}: " + "; ".join(problems))
        return ToolRegistry(
            [
                *(self.tools[name] for name in assistant.tools),
                *(
                    LambdaTool.of(config, lambda_client, functions)
                    for config in assistant.lambda_tools
                ),
            ]
        )


def load_assistants(directory: Path) -> dict[str, AssistantConfig]:
    """The assistant files of the folder at `directory`, without importing its modules;
    ConfigurationError listing every problem found."""
    problems: list[str] = []
    assistants: dict[str, AssistantConfig] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            config = AssistantConfig.model_validate_json(path.read_text())
        except ValidationError as error:
            problems.append(f"{path.name}: {error}")
            continue
        if config.name != path.stem:
            problems.append(f"{path.name}: its name is {config.name!r}, not {path.stem!r}")
        problems.extend(f"{path.name}: names {name!r} twice" for name in _twice(config))
        assistants[config.name] = config
    if not assistants:
        problems.append(f"no assistant (<name>.json) in {directory}")
    if problems:
        raise ConfigurationError("assistants: " + "\n".join(problems))
    return assistants


def load_catalogue(directory: Path) -> Catalogue:
    """The assistants and the Python tools of the package at `directory` (its modules
    imported); ConfigurationError listing every problem found."""
    problems: list[str] = []
    tools = _python_tools(directory, problems)
    try:
        assistants = load_assistants(directory)
    except ConfigurationError as error:
        problems.append(str(error).removeprefix("assistants: "))
        assistants = {}
    problems.extend(
        f"{name}.json: names no tool {tool!r}"
        for name, config in assistants.items()
        for tool in config.tools
        if tool not in tools
    )
    if problems:
        raise ConfigurationError("assistants: " + "\n".join(problems))
    return Catalogue(assistants=assistants, tools=tools)


def _python_tools(directory: Path, problems: list[str]) -> dict[str, FunctionTool]:
    """Import the package's modules and collect the tools they define."""
    parent = str(directory.parent.resolve())
    if parent not in sys.path:
        sys.path.append(parent)
    tools: dict[str, FunctionTool] = {}
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = importlib.import_module(f"{directory.name}.{path.stem}")
        for value in vars(module).values():
            if not isinstance(value, FunctionTool) or tools.get(value.name) is value:
                continue
            if value.name in tools:
                problems.append(f"{path.name}: a second tool named {value.name!r}")
                continue
            tools[value.name] = value
    return tools


def _twice(config: AssistantConfig) -> list[str]:
    names = [*config.tools, *(lambda_tool.name for lambda_tool in config.lambda_tools)]
    return [name for name in sorted(set(names)) if names.count(name) > 1]


def assistants_directory() -> Path:
    """`ASSISTANTS_DIR`, or the `assistants` package wherever it is importable."""
    configured = os.environ.get("ASSISTANTS_DIR")
    if configured:
        return Path(configured)
    spec = importlib.util.find_spec(ASSISTANTS_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ConfigurationError("no assistants package found; set ASSISTANTS_DIR")
    return Path(locations[0])


@cache
def catalogue() -> Catalogue:
    """The assistants and their tools (for the steps that run tools, and GET /assistants)."""
    return load_catalogue(assistants_directory())


@cache
def assistants() -> dict[str, AssistantConfig]:
    """The assistants alone: what reads a name or a model imports no tool code."""
    return load_assistants(assistants_directory())


def load_assistant(name: str) -> AssistantConfig:
    try:
        return assistants()[name]
    except KeyError:
        known = ", ".join(sorted(assistants()))
        raise InvalidRequestError(
            "unknown_assistant", f"unknown assistant {name!r}; known: {known}"
        ) from None
