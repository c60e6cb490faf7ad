"""DynamoDB Streams for the local stack: every write moto commits to a table with a stream
becomes one stream record, handed to the functions the template subscribes to it.

moto records a stream record as each item is written, inside a transaction too, and keeps the
records of a transaction it then refuses (it restores the table, not the stream); it also keeps
every record for ever. While a stack listens, `StreamShard.add` is replaced: a write's records
are held per thread until the outermost item operation returns, then handed on, or dropped if
it raised - a refused write or transaction streams nothing, as on DynamoDB. They are handed on
under the lock that serialises moto's item operations (`atomic_dynamodb`), so they reach the
event sources in the order the writes were made.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import StreamShard

from local.aws.atomic_dynamodb import ITEM_LOCK

if TYPE_CHECKING:
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

    from local.aws.event_sources import EventSources

logger = logging.getLogger(__name__)
WRITE_OPERATIONS = ("put_item", "update_item", "delete_item", "transact_write_items")
_FIRST_SEQUENCE_NUMBER = 100000000000000000000


def stream_record(table: Table, old: Item | None, new: Item | None, sequence: int) -> Any:
    """The record Lambda receives for one write (without `eventSourceARN`)."""
    event_name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
    some = new if new is not None else old
    if some is None:
        raise ValueError("a write has an item before it, after it, or both")
    keys = {table.hash_key_attr: some.hash_key.to_json()}
    if table.range_key_attr is not None and some.range_key is not None:
        keys[table.range_key_attr] = some.range_key.to_json()
    view = table.stream_specification["StreamViewType"]  # type: ignore[index]
    change: dict[str, Any] = {
        "ApproximateCreationDateTime": int(time.time()),
        "Keys": keys,
        "SequenceNumber": str(sequence),
        "StreamViewType": view,
    }
    if new is not None and view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        change["NewImage"] = new.to_json()["Attributes"]
    if old is not None and view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
        change["OldImage"] = old.to_json()["Attributes"]
    change["SizeBytes"] = len(str(change))
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": table.region_name,
        "dynamodb": change,
    }


class _StreamHook:
    """While any stack listens, moto's stream recording and its item writes are replaced."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[EventSources] = []
        self._originals: dict[str, Any] = {}
        self._sequence = itertools.count(_FIRST_SEQUENCE_NUMBER)
        self._writes = threading.local()  # per thread: the operation depth, records held

    def add(self, sources: EventSources) -> None:
        with self._lock:
            if not self._listeners:
                self._originals = {"add": StreamShard.add} | {
                    name: getattr(DynamoDBBackend, name) for name in WRITE_OPERATIONS
                }
                hook = self

                def add(shard: StreamShard, old: Item | None, new: Item | None) -> None:
                    hook._record(shard, old, new)

                StreamShard.add = add  # type: ignore[method-assign,assignment]
                for name in WRITE_OPERATIONS:
                    setattr(DynamoDBBackend, name, self._committing(self._originals[name]))
            self._listeners.append(sources)

    def remove(self, sources: EventSources) -> None:
        with self._lock:
            self._listeners.remove(sources)
            if not self._listeners:
                for name, original in self._originals.items():
                    setattr(StreamShard if name == "add" else DynamoDBBackend, name, original)
                self._originals = {}

    def _listening(self) -> list[EventSources]:
        with self._lock:
            return list(dict.fromkeys(self._listeners))

    def _record(self, shard: StreamShard, old: Item | None, new: Item | None) -> None:
        table = shard.table
        if not any(sources.streams(table.name) for sources in self._listening()):
            return
        record = stream_record(table, old, new, next(self._sequence))
        held: list[tuple[str, Any]] | None = getattr(self._writes, "held", None)
        if held is None:  # written outside an item operation: nothing can refuse it
            self._hand_on([(table.name, record)])
        else:
            held.append((table.name, record))

    def _committing(self, operation: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(operation)
        def write(*args: Any, **kwargs: Any) -> Any:
            with ITEM_LOCK:
                outermost = getattr(self._writes, "held", None) is None
                if outermost:
                    self._writes.held = []
                try:
                    result = operation(*args, **kwargs)
                except BaseException:
                    if outermost:
                        del self._writes.held
                    raise
                if outermost:
                    held = self._writes.held
                    del self._writes.held
                    self._hand_on(held)
                return result

        return write

    def _hand_on(self, records: list[tuple[str, Any]]) -> None:
        if not records:
            return
        for sources in self._listening():
            try:
                sources.table_written(records)
            except Exception:  # the stream is read apart from the write: the write stands
                logger.exception("the stream records of a write not queued")


_STREAM_HOOK = _StreamHook()


@contextmanager
def deliver_table_streams(sources: EventSources) -> Iterator[None]:
    """While active, writes to the tables `sources`' stack subscribes functions to reach them
    (enter it before `sources.running()`, so that the writes of the deliveries drained as
    that ends are streamed too)."""
    _STREAM_HOOK.add(sources)
    try:
        yield
    finally:
        _STREAM_HOOK.remove(sources)
