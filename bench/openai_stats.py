"""What the local OpenAI server counted for one run: its status calls, when the model
finished its last turn, and when the run's objects were checked."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from local.openai_server import OpenAIServer


@dataclass(frozen=True)
class RemoteRunStats:
    status_calls: int  # retrieves of the run's responses (or its Assistants run)
    model_finished_at: float  # the server's clock when the model finished the last turn
    remote_objects: int  # responses (each announced by one webhook where they are on)
    # Between consecutive checks of each object while it went (from its creation to the first
    # check after the model finished it): the orchestrator's polling, as OpenAI saw it.
    check_intervals_s: tuple[float, ...]
    # From the model finishing the last turn to the first check after it (None: never checked).
    first_check_after_finish_s: float | None

    def check_latency_s(self, detection_delay_s: float) -> float | None:
        """From the first check after the model finished to the orchestrator knowing it."""
        if self.first_check_after_finish_s is None:
            return None
        return round(detection_delay_s - self.first_check_after_finish_s, 3)


def remote_run_stats(server: OpenAIServer, thread_remote_id: str) -> RemoteRunStats:
    """Stats of every response of the thread's chain (its metadata names the thread), or every
    run of the Assistants thread, that `thread_remote_id` names (each benchmark run has a
    thread of its own)."""
    with server.lock:
        object_ids = [
            response_id
            for response_id, record in server.state.responses.items()
            if (record.body.get("metadata") or {}).get("thread") == thread_remote_id
        ] + [
            run_id
            for run_id, record in server.state.runs.items()
            if record.body["thread_id"] == thread_remote_id
        ]
    objects = server.stats.snapshot()["objects"]
    finished = [objects[object_id]["finished_at"] for object_id in object_ids]
    if not object_ids or None in finished:
        raise RuntimeError(f"the model has not finished every turn on {thread_remote_id}")
    last = max(object_ids, key=lambda object_id: objects[object_id]["finished_at"])
    first_check = _first_check_after_finish(objects[last])
    return RemoteRunStats(
        status_calls=sum(objects[object_id]["retrieves"] for object_id in object_ids),
        model_finished_at=max(finished),
        remote_objects=len(object_ids),
        check_intervals_s=tuple(
            interval for object_id in object_ids for interval in _intervals(objects[object_id])
        ),
        first_check_after_finish_s=None
        if first_check is None
        else first_check - objects[last]["finished_at"],
    )


def _first_check_after_finish(entry: dict[str, Any]) -> float | None:
    return next((at for at in entry["retrieved_at"] if at >= entry["finished_at"]), None)


def _intervals(entry: dict[str, Any]) -> list[float]:
    """The intervals between the object's creation and its checks, up to the first check
    after it finished."""
    last = _first_check_after_finish(entry)
    times = [
        entry["created_at"],
        *(at for at in entry["retrieved_at"] if last is not None and at <= last),
    ]
    return [later - earlier for earlier, later in itertools.pairwise(times)]
