"""Secrets Manager secrets that hold one plain string (the OpenAI API key, the webhook secret)."""

from __future__ import annotations

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
