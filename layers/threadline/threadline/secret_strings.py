"""Secrets Manager secrets that hold one plain string (the OpenAI API key, the webhook secret)
or one JSON object of strings (an MCP server's headers)."""

from __future__ import annotations

import json

from threadline.errors import ConfigurationError


def secret_string(name: str, *, holding: str) -> str:
    """The secret's string, stripped; ConfigurationError if it holds no text. `holding` says
    what it should hold, for the error ("an API key")."""
    from aws_lambda_powertools.utilities import parameters

    # Cached by Powertools for POWERTOOLS_PARAMETERS_MAX_AGE seconds across invocations.
    secret = parameters.get_secret(name)
    if not isinstance(secret, str) or not secret.strip():
        raise ConfigurationError(f"secret {name} does not hold {holding} string")
    return secret.strip()


def secret_json_object(name: str) -> dict[str, str]:
    """The secret's JSON object of strings (e.g. HTTP headers); ConfigurationError otherwise."""
    text = secret_string(name, holding="a JSON object")
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigurationError(f"secret {name} does not hold a JSON object of strings")
    return value
