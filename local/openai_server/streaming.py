"""A background response streamed as OpenAI streams one (`GET /responses/{id}?stream=true`):
server-sent events, each with a `sequence_number`, resumable with `starting_after`.

The model's turn is decided when the response is created and revealed after its latency; a
stream shows the answer's text as it would be written over that time (its words in a few
deltas, evenly spread), then the done events and `response.completed` (or `.failed`,
`.incomplete`) with the response as retrieved. Function calls and hosted items arrive whole
at the end. A client that reconnects with `starting_after=N` gets the events after N, the
same ones: the plan depends only on the response.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from local.openai_server.state import ResponseRecord

if TYPE_CHECKING:
    from local.openai_server.server import OpenAIServer

DELTAS = 6  # the answer's text arrives in this many pieces at most
POLL_SECONDS = 0.02
TERMINAL = {"completed": "response.completed", "failed": "response.failed"}


@dataclass(frozen=True)
class PlannedEvent:
    visible_at: float  # server clock
    event: dict[str, Any]


def stream_events(
    srv: OpenAIServer, record: ResponseRecord, starting_after: int, advance: Any
) -> Iterator[bytes]:
    """The response's events after `starting_after`, each once it is due, until it ends."""
    sent = starting_after
    while True:
        with srv.lock:
            advance(srv, record)
            ended = record.body["status"] not in ("queued", "in_progress")
            now = srv.clock()
            due = [
                planned.event
                for planned in plan(record)
                if planned.event["sequence_number"] > sent and (ended or planned.visible_at <= now)
            ]
        for event in due:
            yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
            sent = event["sequence_number"]
        if ended:
            return
        time.sleep(POLL_SECONDS)


def plan(record: ResponseRecord) -> list[PlannedEvent]:
    """Every event of the response, numbered, with when it is due."""
    body, turn = record.body, record.turn
    start, finish = turn.started_at, turn.finish_at
    snapshot = {**body, "status": "in_progress", "output": [], "usage": None}
    events: list[tuple[float, dict[str, Any]]] = [
        (start, {"type": "response.created", "response": {**snapshot, "status": "queued"}}),
        (start, {"type": "response.in_progress", "response": snapshot}),
    ]
    text = turn.outcome.text if turn.outcome.kind == "text" else ""
    if text:
        # Hosted items (MCP calls, code interpreter) come before the message in the output.
        index = len(turn.outcome.mcp_items) + (turn.outcome.image is not None)
        events += _text_events(record.message_id, index, text, start, finish)
    if body["status"] in TERMINAL:
        events += [(finish, event) for event in _items_done(body, record.message_id, text)]
        events.append((finish, {"type": TERMINAL[body["status"]], "response": body}))
    elif body["status"] == "incomplete":
        events.append((finish, {"type": "response.incomplete", "response": body}))
    return [
        PlannedEvent(at, {**event, "sequence_number": number})
        for number, (at, event) in enumerate(events)
    ]


def _text_events(
    message_id: str, index: int, text: str, start: float, finish: float
) -> list[tuple[float, dict[str, Any]]]:
    """The message opened at once, and its text in pieces spread over the turn."""
    item = {"type": "message", "id": message_id, "role": "assistant", "content": [],
            "status": "in_progress"}  # fmt: skip
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    events: list[tuple[float, dict[str, Any]]] = [
        (start, {"type": "response.output_item.added", "output_index": index, "item": item}),
        (start, {"type": "response.content_part.added", "item_id": message_id,
                 "output_index": index, "content_index": 0, "part": part}),
    ]  # fmt: skip
    pieces = _pieces(text, DELTAS)
    span = finish - start if finish != float("inf") else 0.0
    for number, piece in enumerate(pieces, start=1):
        events.append(
            (
                start + span * number / (len(pieces) + 1),
                {
                    "type": "response.output_text.delta",
                    "item_id": message_id,
                    "output_index": index,
                    "content_index": 0,
                    "delta": piece,
                    "logprobs": [],
                },
            )
        )
    return events


def _items_done(body: dict[str, Any], message_id: str, text: str) -> list[dict[str, Any]]:
    """The done events of each output item, in output order (a streamed message's text is
    closed first)."""
    events: list[dict[str, Any]] = []
    for index, item in enumerate(body["output"]):
        if item["id"] == message_id and text:
            part = item["content"][0]
            events += [
                {"type": "response.output_text.done", "item_id": message_id,
                 "output_index": index, "content_index": 0, "text": part["text"], "logprobs": []},
                {"type": "response.content_part.done", "item_id": message_id,
                 "output_index": index, "content_index": 0, "part": part},
            ]  # fmt: skip
        else:
            events.append(
                {"type": "response.output_item.added", "output_index": index, "item": item}
            )
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    return events


def _pieces(text: str, most: int) -> list[str]:
    """The text cut at word boundaries into at most `most` pieces that join back to it."""
    words = text.split(" ")
    size = max(1, -(-len(words) // most))
    chunks = [" ".join(words[at : at + size]) for at in range(0, len(words), size)]
    return [chunk + (" " if index < len(chunks) - 1 else "") for index, chunk in enumerate(chunks)]
