"""Opaque identifiers that sort by creation time (so newest-first listings are key order)."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """`prefix_` + 12 hex digits of epoch milliseconds + 10 random hex digits."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(5)}"
