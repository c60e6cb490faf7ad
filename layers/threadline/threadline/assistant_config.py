"""Assistants are configuration kept as data: `assistant_configs/<name>.json`."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from threadline.errors import InvalidRequestError

CONFIG_DIR = Path(__file__).parent / "assistant_configs"


class AssistantConfig(BaseModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    display_name: str
    model: str | None = None  # None: the deployment's default model
    instructions: str
    function_tools: list[str] = Field(default_factory=list)
    hosted_tools: list[Literal["code_interpreter", "file_search"]] = Field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """Changes whenever the configuration does (names a remote assistant's version)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@cache
def available_assistants() -> dict[str, AssistantConfig]:
    configs = (
        AssistantConfig.model_validate_json(path.read_text())
        for path in sorted(CONFIG_DIR.glob("*.json"))
    )
    return {config.name: config for config in configs}


def load_assistant(name: str) -> AssistantConfig:
    try:
        return available_assistants()[name]
    except KeyError:
        known = ", ".join(sorted(available_assistants()))
        raise InvalidRequestError(
            "unknown_assistant", f"unknown assistant {name!r}; known: {known}"
        ) from None
