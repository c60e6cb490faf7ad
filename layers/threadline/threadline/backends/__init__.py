"""One port, two adapters: pick the backend named by the configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from threadline.backends.base import (
    AssistantBackend,
    GeneratedFile,
    RunContext,
    RunHandle,
    RunOwner,
    RunView,
)

if TYPE_CHECKING:
    from openai import OpenAI

__all__ = [
    "AssistantBackend",
    "GeneratedFile",
    "RunContext",
    "RunHandle",
    "RunOwner",
    "RunView",
    "make_backend",
]


def make_backend(
    name: str, client: OpenAI, default_model: str, *, mcp_secrets_prefix: str = ""
) -> AssistantBackend:
    backend: AssistantBackend
    if name == "assistants":
        from threadline.backends.assistants import AssistantsBackend

        backend = AssistantsBackend(client, default_model)
    else:
        from threadline.backends.responses import ResponsesBackend
        from threadline.secret_strings import secret_json_object

        backend = ResponsesBackend(
            client,
            default_model,
            secret_headers=lambda name: secret_json_object(mcp_secrets_prefix + name),
        )
    return traced(backend)


def traced(backend: AssistantBackend) -> AssistantBackend:
    """Every port call becomes an X-Ray subsegment (`## ResponsesBackend.get_run`, ...), so
    the time a run spends waiting on OpenAI shows in the trace next to the AWS calls."""
    from aws_lambda_powertools import Tracer

    tracer = Tracer()
    for method in _port_methods():
        setattr(backend, method, tracer.capture_method(getattr(backend, method)))
    return backend


def _port_methods() -> list[str]:
    return [
        name
        for name, member in vars(AssistantBackend).items()
        if callable(member) and not name.startswith("_")
    ]
