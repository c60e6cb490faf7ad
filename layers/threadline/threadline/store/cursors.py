"""Opaque pagination cursors: the caller gets a token, never our key structure."""

from __future__ import annotations

import base64
import binascii
import json

from threadline.errors import InvalidRequestError


def encode_cursor(position: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": position}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, prefix: str = "") -> str:
    """The position a cursor stands for; InvalidRequestError if it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidRequestError("invalid_cursor", "the pagination cursor is not valid") from None
    if not isinstance(position, str) or not position.startswith(prefix):
        raise InvalidRequestError("invalid_cursor", "the pagination cursor is not valid")
    return position
