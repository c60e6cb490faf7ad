"""The OpenAI client: key from the environment locally, from Secrets Manager in AWS."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from threadline.errors import ConfigurationError
from threadline.secret_strings import secret_string
from threadline.settings import Settings

if TYPE_CHECKING:
    from openai import OpenAI


def openai_api_key(settings: Settings) -> str:
    local_key = os.environ.get("OPENAI_API_KEY")
    if local_key:
        return local_key
    if not settings.openai_api_key_secret_name:
        raise ConfigurationError(
            "no OpenAI API key: set OPENAI_API_KEY or OPENAI_API_KEY_SECRET_NAME"
        )
    return secret_string(settings.openai_api_key_secret_name, holding="an API key")


def make_openai_client(settings: Settings) -> OpenAI:
    from openai import OpenAI

    return OpenAI(
        api_key=openai_api_key(settings),
        base_url=str(settings.openai_base_url) if settings.openai_base_url else None,
        # The state machine owns retries (visible, and no Lambda time spent sleeping).
        max_retries=0,
        timeout=settings.openai_timeout_seconds,
    )
