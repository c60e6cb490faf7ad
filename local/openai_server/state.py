"""In-memory stores and benchmark counters. The server guards `State` with one lock."""

from __future__ import annotations

import copy
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from local.openai_server.engine import Event, Outcome


@dataclass
class Turn:
    """A model turn decided when it started and revealed once `finish_at` has passed."""

    outcome: Outcome
    started_at: float
    finish_at: float  # inf for Step.hang()


@dataclass
class StoredFile:
    body: dict[str, Any]  # FileObject, or a container file object
    data: bytes


@dataclass
class ResponseRecord:
    body: dict[str, Any]
    input_items: list[dict[str, Any]]
    context: list[dict[str, Any]]  # every item the model saw, this input included
    turn: Turn
    # Created with `stream: true` (and `background`): only such a response streams again.
    streamed: bool = False
    # The id its answer's message will have: a stream names it before the answer is done.
    message_id: str = field(default_factory=lambda: f"msg_{uuid.uuid4().hex[:24]}")


@dataclass
class ConversationRecord:
    body: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class VectorStoreFileRecord:
    """A file in a vector store, `in_progress` until `ready_at` (server clock), then
    `completed`, or `failed` with `error` as its last_error when that is set."""

    body: dict[str, Any]
    ready_at: float
    error: dict[str, str] | None = None


@dataclass
class VectorStoreRecord:
    body: dict[str, Any]
    files: dict[str, VectorStoreFileRecord] = field(default_factory=dict)


@dataclass
class ContainerRecord:
    body: dict[str, Any]
    files: dict[str, StoredFile] = field(default_factory=dict)


@dataclass
class ThreadRecord:
    body: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    active_run_id: str | None = None


@dataclass
class RunRecord:
    body: dict[str, Any]
    turn: Turn
    events: list[Event] = field(default_factory=list)  # this run's own calls and outputs
    pending_call_ids: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class State:
    responses: dict[str, ResponseRecord] = field(default_factory=dict)
    conversations: dict[str, ConversationRecord] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    vector_stores: dict[str, VectorStoreRecord] = field(default_factory=dict)
    containers: dict[str, ContainerRecord] = field(default_factory=dict)
    assistants: dict[str, dict[str, Any]] = field(default_factory=dict)
    threads: dict[str, ThreadRecord] = field(default_factory=dict)
    runs: dict[str, RunRecord] = field(default_factory=dict)
    moving: set[str] = field(default_factory=set)  # response/run ids the ticker must advance


@dataclass
class ObjectStats:
    created_at: float
    retrieves: int = 0
    retrieved_at: list[float] = field(default_factory=list)  # server clock, in order
    finished_at: float | None = None  # when the model finished its latest turn (server clock)


class Stats:
    """Thread-safe counters for benchmarks: per response/run id, per endpoint (requests that
    reached it: an injected `http_error` or `reset` does not) and per injected fault kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.objects: dict[str, ObjectStats] = {}
        self.endpoints: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()

    def count_endpoint(self, endpoint: str) -> None:
        with self._lock:
            self.endpoints[endpoint] += 1

    def count_fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def created(self, object_id: str, at: float) -> None:
        with self._lock:
            self.objects[object_id] = ObjectStats(created_at=at)

    def retrieved(self, object_id: str, at: float) -> None:
        with self._lock:
            if object_id in self.objects:
                self.objects[object_id].retrieves += 1
                self.objects[object_id].retrieved_at.append(at)

    def finished(self, object_id: str, at: float) -> None:
        with self._lock:
            if object_id in self.objects:
                self.objects[object_id].finished_at = at

    def retrieves(self, object_id: str) -> int:
        with self._lock:
            entry = self.objects.get(object_id)
            return entry.retrieves if entry else 0

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "endpoints": dict(self.endpoints),
                "faults": dict(self.faults),
                "objects": {key: copy.deepcopy(vars(value)) for key, value in self.objects.items()},
            }

    def reset(self) -> None:
        with self._lock:
            self.objects.clear()
            self.endpoints.clear()
            self.faults.clear()
