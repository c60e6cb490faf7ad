"""What the local OpenAI server counted for one run: its status calls and when the model
finished its last turn."""

from __future__ import annotations

from dataclasses import dataclass

from local.openai_server import OpenAIServer


@dataclass(frozen=True)
class RemoteRunStats:
    status_calls: int  # retrieves of the run's responses (or its Assistants run)
    model_finished_at: float  # the server's clock when the model finished the last turn
    remote_objects: int  # responses (each announced by one webhook where they are on)


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
    return RemoteRunStats(
        status_calls=sum(objects[object_id]["retrieves"] for object_id in object_ids),
        model_finished_at=max(finished),
        remote_objects=len(object_ids),
    )
