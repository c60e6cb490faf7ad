"""Make moto's DynamoDB writes atomic, as DynamoDB's are.

moto evaluates a condition and applies the write without a lock, so two threads can both pass
`attribute_not_exists(...)`. Threadline's run lock and get-or-create rely on conditional
writes being atomic; serialising moto's item operations restores that guarantee locally.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

ITEM_OPERATIONS = ("put_item", "update_item", "delete_item", "get_item", "transact_write_items")
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
    originals = {name: DynamoDBBackend.__dict__[name] for name in ITEM_OPERATIONS}
    for name, operation in originals.items():
        setattr(DynamoDBBackend, name, _serialised(operation))
    try:
        yield
    finally:
        for name, operation in originals.items():
            setattr(DynamoDBBackend, name, operation)
