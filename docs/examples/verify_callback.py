"""A receiver's check of a Threadline callback, before it trusts the body."""

from typing import Any

from standardwebhooks import Webhook


def verified_callback(secret: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The callback's JSON: `type`, `timestamp` and the run view as `data`.

    `secret` is the value of the `threadline/{Stage}/callback-signing-secret` secret. A forged
    signature, or a timestamp more than five minutes from now, raises WebhookVerificationError.
    """
    payload: dict[str, Any] = Webhook(secret).verify(body, headers)
    return payload
