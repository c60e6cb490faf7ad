"""Make moto's DynamoDB writes atomic, as DynamoDB's are, and its reads consistent.

moto evaluates a condition and applies the write without a lock, so two threads can both pass
`attribute_not_exists(...)`. Threadline's run lock and get-or-create rely on conditional
writes being atomic; serialising moto's item operations restores that guarantee locally.
A read returns moto's live item, which its response then serialises: a write on another
thread could change the item meanwhile (a torn read, or "dictionary changed size during
iteration"), so the read requests are serialised with the writes, answer included.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler

ITEM_OPERATIONS = ("put_item", "update_item", "delete_item", "get_item", "transact_write_items")
READ_REQUESTS = ("get_item", "batch_get_item", "query", "scan", "transact_get_items")
# Every item operation holds it; table streams also hand their records on under it.
ITEM_LOCK = threading.RLock()


def _serialised(operation: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(operation)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with ITEM_LOCK:
            return operation(*args, **kwargs)

    return locked


@contextmanager
def atomic_item_writes() -> Iterator[None]:
    originals: list[tuple[type, str]] = [(DynamoDBBackend, name) for name in ITEM_OPERATIONS]
    originals += [(DynamoHandler, name) for name in READ_REQUESTS]
    saved = [(owner, name, owner.__dict__[name]) for owner, name in originals]
    for owner, name, operation in saved:
        setattr(owner, name, _serialised(operation))
    try:
        yield
    finally:
        for owner, name, operation in saved:
            setattr(owner, name, operation)
