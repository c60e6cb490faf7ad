"""A background response streamed as OpenAI streams one: numbered server-sent events, the
answer's text in deltas while the model writes (before the response completes), the same
events again after `starting_after`, for the real SDK over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from local.openai_server import OpenAIServer, Step, sdk_client
from local.openai_server.streaming import plan
from tests.local_openai_server.conftest import FakeClock

QUESTION = "Tell me something nice about the weather today please"


def streamed(client: openai.OpenAI, **create: Any) -> str:
    """Create a background response with `stream: true`, as a caller that reads only its
    first event (the id) and hangs up: the response goes on."""
    with client.responses.create(model="m", background=True, stream=True, **create) as events:
        first = next(iter(events))
    assert first.type == "response.created"
    return first.response.id


@pytest.fixture
def served() -> Iterator[openai.OpenAI]:
    server = OpenAIServer(latency_seconds=0.3)
    base_url = server.start_background()
    try:
        yield openai.OpenAI(api_key="local", base_url=base_url, max_retries=0)
    finally:
        server.stop()


def test_the_text_is_due_in_pieces_before_the_response_completes(clock: FakeClock) -> None:
    server = OpenAIServer(latency_seconds=10, clock=clock)
    client = sdk_client(server)
    created = streamed(client, input=QUESTION)
    turn = server.state.responses[created].turn

    events = plan(server.state.responses[created])
    deltas = [e for e in events if e.event["type"] == "response.output_text.delta"]
    clock.advance(10)
    done = client.responses.retrieve(created)

    assert len(deltas) > 1
    assert all(turn.started_at < e.visible_at < turn.finish_at for e in deltas)
    assert "".join(e.event["delta"] for e in deltas) == done.output_text
    assert [e.event["sequence_number"] for e in plan(server.state.responses[created])] == list(
        range(len(plan(server.state.responses[created])))
    )


def test_a_stream_resumes_after_the_last_event_seen(served: openai.OpenAI) -> None:
    created = streamed(served, input=QUESTION)

    events = list(served.responses.retrieve(created, stream=True))
    resumed = list(served.responses.retrieve(created, stream=True, starting_after=5))

    numbers = [event.sequence_number for event in events]
    assert numbers == list(range(len(events)))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == events[-1].response.output_text  # type: ignore[union-attr]
    assert [(e.sequence_number, e.type) for e in resumed] == [
        (e.sequence_number, e.type) for e in events[6:]
    ]


def test_calls_arrive_whole_at_the_end(served: openai.OpenAI) -> None:
    created = streamed(
        served,
        input="What is our revenue by region?",
        tools=[
            {
                "type": "function",
                "name": "query_database",
                "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
            }
        ],
    )

    types = [event.type for event in served.responses.retrieve(created, stream=True)]

    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.output_item.done",
        "response.completed",
    ]


@pytest.mark.parametrize(
    ("background", "after"), [(False, "0"), (True, "0"), (True, "nine")],
    ids=["foreground", "not-created-streaming", "bad-cursor"],
)  # fmt: skip
def test_bad_stream_requests_are_refused(
    served: openai.OpenAI, background: bool, after: str
) -> None:
    created = served.responses.create(model="m", input="hi", background=background)
    if after == "nine":
        created = served.responses.retrieve(streamed(served, input="hi"))

    with pytest.raises(openai.BadRequestError):
        served.get(
            f"/responses/{created.id}",
            cast_to=object,
            options={"params": {"stream": "true", "starting_after": after}},
        )


def test_a_scripted_failure_ends_the_stream_failed() -> None:
    server = OpenAIServer(latency_seconds=0.1)
    base_url = server.start_background()
    try:
        client = openai.OpenAI(api_key="local", base_url=base_url, max_retries=0)
        conversation = client.conversations.create()
        server.script.push(Step.fail("server_error", "boom"), key=conversation.id)
        created = streamed(client, input="hi", conversation=conversation.id)
        types = [event.type for event in client.responses.retrieve(created, stream=True)]
    finally:
        server.stop()

    assert types == ["response.created", "response.in_progress", "response.failed"]


def test_only_a_background_response_is_created_streaming(served: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        served.responses.create(model="m", input="hi", stream=True)
