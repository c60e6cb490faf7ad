"""Fixtures: a fresh server per test and the real SDK wired to it in-process."""

from __future__ import annotations

from typing import Any, TypeVar

import openai
import pytest
from pydantic import BaseModel

from local.openai_server import OpenAIServer, sdk_client

M = TypeVar("M", bound=BaseModel)

WEBHOOK_SECRET = "whsec_" + "bG9jYWwtdGVzdC13ZWJob29rLXNlY3JldA=="  # base64 of a test key
# The 1x1 PNG signature is enough: the server stores bytes, it never decodes them.
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


class FakeClock:
    """A clock tests move by hand, so latency is checked without sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server() -> OpenAIServer:
    return OpenAIServer()


@pytest.fixture
def client(server: OpenAIServer) -> openai.OpenAI:
    return sdk_client(server)


def strict(model: type[M], parsed: BaseModel) -> M:
    """Re-validate what the SDK parsed leniently, so a missing required field fails the test."""
    return model.model_validate(parsed.to_dict(mode="json"))


def function_tool(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "parameters": {"type": "object", "properties": {}},
    }
