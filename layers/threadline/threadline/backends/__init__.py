"""One port, two adapters: pick the backend named by the configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from threadline.backends.base import (
    AssistantBackend,
    GeneratedFile,
    Message,
    MessagePage,
    RunContext,
    RunHandle,
    RunView,
)

if TYPE_CHECKING:
    from openai import OpenAI

__all__ = [
    "AssistantBackend",
    "GeneratedFile",
    "Message",
    "MessagePage",
    "RunContext",
    "RunHandle",
    "RunView",
    "make_backend",
]


def make_backend(name: str, client: OpenAI, default_model: str) -> AssistantBackend:
    if name == "assistants":
        from threadline.backends.assistants import AssistantsBackend

        return AssistantsBackend(client, default_model)
    from threadline.backends.responses import ResponsesBackend

    return ResponsesBackend(client, default_model)
