"""The Responses and Conversations API, driven through the real SDK."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from openai.types.conversations import Conversation, ConversationItemList
from openai.types.responses import Response

from local.openai_server import OpenAIServer, Step, sdk_client
from tests.local_openai_server.conftest import PNG, FakeClock, function_tool, strict

ANALYST_TOOLS = [function_tool("query_database"), function_tool("get_table_schema")]


def finished(client: openai.OpenAI, response_id: str) -> Response:
    """With latency 0 the first retrieve already shows the final state."""
    return strict(Response, client.responses.retrieve(response_id))


def test_background_tool_round_trip_in_a_conversation(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(metadata={"user": "u1"})
    first = client.responses.create(
        model="gpt-4.1",
        input="Show me sales by region",
        tools=ANALYST_TOOLS,
        conversation=conversation.id,
        background=True,
    )
    assert first.status == "queued"

    first = finished(client, first.id)
    assert first.status == "completed"
    [call] = first.output
    assert call.type == "function_call"
    assert call.name == "query_database"
    assert "GROUP BY region" in json.loads(call.arguments)["query"]

    rows = [{"region": "North", "revenue": 120.5}, {"region": "South", "revenue": 80.0}]
    second = client.responses.create(
        model="gpt-4.1",
        input=[
            {"type": "function_call_output", "call_id": call.call_id, "output": json.dumps(rows)}
        ],
        tools=ANALYST_TOOLS,
        conversation={"id": conversation.id},
        background=True,
    )
    second = finished(client, second.id)
    assert second.output_text.startswith("Here is what I found with query_database: 2 rows")
    assert "North" in second.output_text
    assert second.usage is not None
    assert second.usage.total_tokens == second.usage.input_tokens + second.usage.output_tokens

    items = strict(
        ConversationItemList, client.conversations.items.list(conversation.id, order="asc")
    )
    assert [item.type for item in items.data] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert items.data[-1].role == "assistant"


def test_schema_question_makes_two_parallel_calls_in_one_turn(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="gpt-4.1", input="What columns do the tables have?", tools=ANALYST_TOOLS
    )
    assert response.status == "completed"  # not background: answered synchronously
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_table_schema", {"table_name": "sales"}),
        ("get_table_schema", {"table_name": "products"}),
    ]
    assert len({c.call_id for c in calls}) == 2

    outputs = [
        {"type": "function_call_output", "call_id": c.call_id, "output": '{"columns": ["id"]}'}
        for c in calls
    ]
    answer = client.responses.create(
        model="gpt-4.1", input=outputs, tools=ANALYST_TOOLS, previous_response_id=response.id
    )
    assert answer.output_text.count("get_table_schema") == 2


def test_playbook_needs_its_tools_offered(client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4.1", input="Show me sales by region")
    assert response.output_text == "You said: Show me sales by region"


def test_tool_error_output_is_quoted(client: openai.OpenAI) -> None:
    asked = client.responses.create(model="m", input="top products", tools=ANALYST_TOOLS)
    [call] = asked.output
    answer = client.responses.create(
        model="m",
        previous_response_id=asked.id,
        tools=ANALYST_TOOLS,
        input=[
            {
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": '{"error": "no such table: sales"}',
            }
        ],
    )
    assert "the tool failed" in answer.output_text
    assert "no such table: sales" in answer.output_text


@pytest.mark.parametrize(
    "input_items",
    [
        [{"type": "function_call_output", "call_id": "call_unknown", "output": "1"}],
        [{"type": "unknown_item"}],
        [{"type": "message", "role": "robot", "content": "hi"}],
        42,
    ],
    ids=["unmatched-call-id", "unknown-type", "bad-role", "not-a-list"],
)
def test_bad_input_is_rejected_with_400(client: openai.OpenAI, input_items: object) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input=input_items)  # type: ignore[arg-type]
    assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]


@pytest.mark.parametrize("via_conversation", [False, True], ids=["previous-id", "conversation"])
def test_pending_call_must_be_answered_before_moving_on(
    client: openai.OpenAI, via_conversation: bool
) -> None:
    conversation = client.conversations.create()
    first: dict[str, Any] = {"conversation": conversation.id} if via_conversation else {}
    asked = client.responses.create(
        model="m", input="sales by region", tools=ANALYST_TOOLS, **first
    )
    [call] = asked.output
    chained = first or {"previous_response_id": asked.id}
    with pytest.raises(openai.BadRequestError, match="No tool output found"):
        client.responses.create(model="m", input="never mind", **chained)
    stray = {"type": "function_call_output", "call_id": "call_unknown", "output": "1"}
    with pytest.raises(openai.BadRequestError, match="No tool call found"):
        client.responses.create(model="m", input=[stray], **chained)
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "[]"}
    answer = client.responses.create(model="m", input=[output], tools=ANALYST_TOOLS, **chained)
    assert answer.output_text.startswith("Here is what I found with query_database")


def test_previous_response_must_have_finished(clock: FakeClock) -> None:
    server = OpenAIServer(clock=clock)
    client = sdk_client(server)
    server.script.push(Step.say("later").taking(5))  # the step's latency: sync calls don't sleep
    first = client.responses.create(model="m", input="hi", background=True)
    with pytest.raises(openai.BadRequestError, match="is still in progress") as caught:
        client.responses.create(model="m", input="and?", previous_response_id=first.id)
    assert caught.value.param == "previous_response_id"
    clock.advance(5)  # finished now, though nobody has retrieved it
    chained = client.responses.create(model="m", input="and?", previous_response_id=first.id)
    assert chained.status == "completed"

    server.script.push(Step.hang())
    hanging = client.responses.create(model="m", input="slow")
    assert hanging.status == "in_progress"
    with pytest.raises(openai.BadRequestError, match="is still in progress"):
        client.responses.create(model="m", input="and?", previous_response_id=hanging.id)


def test_unknown_ids_are_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_missing")
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="m", input="hi", conversation="conv_missing")
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list("conv_missing")


def test_conversation_items_paging(client: openai.OpenAI) -> None:
    items = [{"type": "message", "role": "user", "content": f"m{i}"} for i in range(5)]
    conversation = strict(Conversation, client.conversations.create(items=items))
    texts = lambda page: [item.content[0].text for item in page.data]  # noqa: E731

    newest = client.conversations.items.list(conversation.id, limit=2)
    strict(ConversationItemList, newest)
    assert texts(newest) == ["m4", "m3"]
    assert newest.has_more is True
    assert newest.last_id == newest.data[-1].id

    older = client.conversations.items.list(conversation.id, limit=2, after=newest.last_id)
    assert texts(older) == ["m2", "m1"]
    oldest = client.conversations.items.list(conversation.id, order="asc", limit=10)
    assert texts(oldest) == ["m0", "m1", "m2", "m3", "m4"]
    assert oldest.has_more is False
    # The SDK's auto-pagination follows last_id to the end.
    assert len(list(client.conversations.items.list(conversation.id, limit=2))) == 5


def test_conversation_update_item_add_and_delete(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    added = client.conversations.items.create(
        conversation.id, items=[{"type": "message", "role": "user", "content": "hello"}]
    )
    [item] = added.data
    assert (
        client.conversations.items.retrieve(item.id, conversation_id=conversation.id).id == item.id
    )
    updated = client.conversations.update(conversation.id, metadata={"topic": "sales"})
    assert updated.metadata == {"topic": "sales"}
    client.conversations.items.delete(item.id, conversation_id=conversation.id)
    assert client.conversations.items.list(conversation.id).data == []
    assert client.conversations.delete(conversation.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)


def test_model_sees_the_whole_conversation(server: OpenAIServer, client: openai.OpenAI) -> None:
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "Please list the customers"}]
    )
    # Input only refers to the conversation: the playbook still matches its last user message.
    response = client.responses.create(
        model="m", input=[], conversation=conversation.id, tools=ANALYST_TOOLS
    )
    assert response.output[0].name == "query_database"
    assert response.usage.input_tokens > len("Please list the customers") // 4


def test_cancel_stops_a_background_response_and_returns_an_ended_one_unchanged(
    server: OpenAIServer, client: openai.OpenAI
) -> None:
    server.script.push(Step.hang())
    hanging = client.responses.create(model="m", input="slow", background=True)
    assert client.responses.retrieve(hanging.id).status == "in_progress"
    assert client.responses.cancel(hanging.id).status == "cancelled"
    assert client.responses.retrieve(hanging.id).status == "cancelled"
    assert client.responses.cancel(hanging.id).status == "cancelled"

    ended = finished(client, client.responses.create(model="m", input="fast", background=True).id)
    raw = client.responses.with_raw_response.cancel(ended.id)
    assert raw.status_code == 200
    assert raw.parse().to_dict() == ended.to_dict()
    # Its latency has passed though nobody looked: the cancel finds it completed, not moving.
    unseen = client.responses.create(model="m", input="fast", background=True)
    assert client.responses.cancel(unseen.id).status == "completed"

    done = client.responses.create(model="m", input="fast")
    with pytest.raises(openai.BadRequestError, match="synchronous"):
        client.responses.cancel(done.id)


@pytest.mark.parametrize(
    ("step", "status", "check"),
    [
        (Step.fail(message="boom"), "failed", lambda r: r.error.message == "boom"),
        (
            Step.fail(code="rate_limit_exceeded"),
            "failed",
            lambda r: r.error.code == "rate_limit_exceeded",
        ),
        (
            Step.incomplete(),
            "incomplete",
            lambda r: r.incomplete_details.reason == "max_output_tokens",
        ),
        (Step.expire(), "failed", lambda r: "expired" in r.error.message),
        (Step.say("scripted"), "completed", lambda r: r.output_text == "scripted"),
    ],
    ids=["fail", "fail-code", "incomplete", "expire", "say"],
)
def test_scripted_outcomes(
    server: OpenAIServer,
    client: openai.OpenAI,
    step: Step,
    status: str,
    check: Callable[[Response], bool],
) -> None:
    server.script.push(step)
    created = client.responses.create(model="m", input="hi", background=True)
    response = finished(client, created.id)
    assert response.status == status
    assert check(response)


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, openai.RateLimitError), (500, openai.InternalServerError)],
)
def test_scripted_http_errors(
    server: OpenAIServer, client: openai.OpenAI, status: int, error: type[Exception]
) -> None:
    server.script.push(Step.http_error(status=status, retry_after=7))
    with pytest.raises(error) as caught:
        client.responses.create(model="m", input="hi")
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["message"]
    # The step was consumed: the next request succeeds.
    assert client.responses.create(model="m", input="hi").status == "completed"


def test_keyed_steps_serve_only_their_conversation(
    server: OpenAIServer, client: openai.OpenAI
) -> None:
    mine = client.conversations.create()
    other = client.conversations.create()
    server.script.push(Step.say("for everyone"))
    server.script.push(Step.say("only mine"), key=mine.id)
    assert client.responses.create(model="m", input="a", conversation=mine.id).output_text == (
        "only mine"
    )
    assert client.responses.create(model="m", input="b", conversation=other.id).output_text == (
        "for everyone"
    )
    assert len(server.script) == 0


def test_keyed_steps_follow_metadata_thread_in_response_chains(
    server: OpenAIServer, client: openai.OpenAI
) -> None:
    server.script.push(Step.say("for anyone"))
    server.script.extend([Step.say("alpha 1"), Step.say("alpha 2")], key="alpha")
    server.script.push(Step.say("beta 1"), key="beta")

    def create(previous: str | None = None, thread: str | None = None) -> Response:
        meta = {"thread": thread} if thread else {}
        return client.responses.create(
            model="m", input="go", previous_response_id=previous, metadata=meta
        )

    alpha = create(thread="alpha")
    beta = create(thread="beta")
    alpha_next = create(previous=alpha.id, thread="alpha")
    beta_next = create(previous=beta.id)  # no metadata: the key is not inherited from the chain
    texts = [r.output_text for r in (alpha, beta, alpha_next, beta_next)]
    assert texts == ["alpha 1", "beta 1", "alpha 2", "for anyone"]
    assert alpha_next.conversation is None
    assert len(server.script) == 0

    # A conversation's id is the key even when metadata names a thread.
    conversation = client.conversations.create()
    server.script.push(Step.say("conversation"), key=conversation.id)
    server.script.push(Step.say("alpha 3"), key="alpha")
    in_conversation = client.responses.create(
        model="m", input="go", conversation=conversation.id, metadata={"thread": "alpha"}
    )
    assert in_conversation.output_text == "conversation"
    assert in_conversation.conversation.id == conversation.id
    assert len(server.script) == 1


def test_generated_image_lives_in_a_container(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.script.push(Step.image("Here is the chart.", PNG))
    response = finished(
        client, client.responses.create(model="m", input="plot", background=True).id
    )
    interpreter, message = response.output
    assert interpreter.type == "code_interpreter_call"
    [part] = message.content
    [citation] = part.annotations
    assert citation.type == "container_file_citation"
    assert citation.container_id == interpreter.container_id
    assert part.text[citation.start_index : citation.end_index].startswith("[chart.png]")
    content = client.containers.files.content.retrieve(
        citation.file_id, container_id=citation.container_id
    )
    assert content.read() == PNG


def test_a_container_holds_the_given_files_and_one_written_but_not_cited(
    server: OpenAIServer, client: openai.OpenAI
) -> None:
    given = client.files.create(file=("sales.csv", b"a,b\n1,2\n"), purpose="assistants")
    server.script.push(Step.image("Saved it.", PNG, "summary.png", cited=False))
    response = client.responses.create(
        model="m",
        input="summarise",
        tools=[{"type": "code_interpreter", "container": {"type": "auto", "file_ids": [given.id]}}],
    )

    interpreter, message = response.output
    assert interpreter.type == "code_interpreter_call"
    assert response.output_text == "Saved it."
    assert message.content[0].annotations == []
    files = client.containers.files.list(interpreter.container_id, order="asc")
    assert [(f.path, f.source) for f in files] == [
        ("/mnt/data/sales.csv", "user"),
        ("/mnt/data/summary.png", "assistant"),
    ]


def test_delete_and_input_items(client: openai.OpenAI) -> None:
    response = client.responses.create(model="m", input="hello")
    [item] = client.responses.input_items.list(response.id).data
    assert item.type == "message"
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_requests_without_api_key_are_401(server: OpenAIServer) -> None:
    import httpx2

    http = httpx2.Client(transport=httpx2.WSGITransport(app=server.wsgi_app))
    answer = http.get("http://local/v1/responses/resp_x")
    assert answer.status_code == 401
    assert set(answer.json()["error"]) == {"message", "type", "param", "code"}
