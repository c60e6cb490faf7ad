"""Tools implemented by another Lambda function, named in an assistant's file.

ProcessToolCalls invokes the function synchronously with

    {"tool": name, "arguments": {...}, "caller": {user_id, thread_id, run_id, assistant, call_id}}

and gives the model whatever JSON it returns. A function error (an exception, its own timeout)
becomes an error output the model can read, as does a call that outlives the tool's
`timeout_seconds`. A step can be retried, so a tool may be invoked more than once for one
call: `caller.call_id` is the same every time, for a tool with side effects to deduplicate on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, field_validator

from threadline.tools.registry import Tool, ToolContext, parse_json_object
from threadline.tools.strict_schema import strict_schema_problems

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

# A Lambda function's name, partial or full ARN, or name with a version or alias.
_FUNCTION = (
    r"^(arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?"
    r"[a-zA-Z0-9_-]{1,64}(:[a-zA-Z0-9_$-]{1,128})?$"
)


class LambdaToolConfig(BaseModel):
    """A Lambda tool as an assistant's file declares it."""

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str = Field(min_length=1)
    function: str = Field(
        pattern=_FUNCTION,
        description="The function's name or ARN, or a name the deployment's TOOL_FUNCTIONS maps.",
    )
    parameters: dict[str, Any] = Field(description="The strict JSON schema of the arguments.")
    # At most the deployment's ToolTimeoutSeconds, whatever this says.
    timeout_seconds: float = Field(default=20, gt=0, le=900)
    requires_approval: bool = False

    @field_validator("parameters")
    @classmethod
    def _strict(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        problems = strict_schema_problems(parameters)
        if problems:
            raise ValueError("not a strict schema: " + "; ".join(problems))
        return parameters


class LambdaToolError(RuntimeError):
    """The function failed: its error type and message, for the model."""


@dataclass(frozen=True, kw_only=True)
class LambdaTool(Tool):
    function_name: str
    schema: dict[str, Any]
    client: Callable[[], LambdaClient]

    @classmethod
    def of(
        cls,
        config: LambdaToolConfig,
        client: Callable[[], LambdaClient],
        functions: Mapping[str, str],
    ) -> LambdaTool:
        """The tool `config` declares; `functions` maps the names the deployment gives its
        tool functions to their ARNs."""
        return cls(
            name=config.name,
            description=config.description,
            timeout_seconds=config.timeout_seconds,
            requires_approval=config.requires_approval,
            function_name=functions.get(config.function, config.function),
            schema=config.parameters,
            client=client,
        )

    @property
    def parameters(self) -> dict[str, Any]:
        return self.schema

    def parse_arguments(self, arguments: str) -> dict[str, Any]:
        return parse_json_object(arguments)

    def call(self, arguments: Any, context: ToolContext) -> Any:
        payload = {"tool": self.name, "arguments": arguments, "caller": context.caller()}
        answer = self.client().invoke(
            FunctionName=self.function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(payload).encode(),
        )
        body = answer["Payload"].read()
        if "FunctionError" in answer:
            raise LambdaToolError(_describe_failure(body))
        return json.loads(body) if body else None


def _describe_failure(body: bytes) -> str:
    """The runtime's error payload, as `{errorType}: {errorMessage}`."""
    try:
        error = json.loads(body)
        return f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}".strip()
    except (ValueError, AttributeError):
        return body.decode(errors="replace")[:500]
