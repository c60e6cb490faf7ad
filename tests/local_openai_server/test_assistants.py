"""Assistants v2 (assistants, threads, messages, runs), driven through the real SDK."""

from __future__ import annotations

import json
from collections.abc import Callable

import openai
import pytest
from openai.types.beta import Assistant, Thread
from openai.types.beta.threads import Message, Run

from local.openai_server import OpenAIServer, Step
from tests.local_openai_server.conftest import PNG, strict

# The SDK marks every beta.assistants/threads call deprecated, warning at the call site.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TOOLS = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    for name in ("query_database", "get_table_schema")
]


@pytest.fixture
def assistant(client: openai.OpenAI) -> Assistant:
    return strict(
        Assistant,
        client.beta.assistants.create(model="gpt-4.1", instructions="Analyse.", tools=TOOLS),
    )


def new_thread(client: openai.OpenAI, text: str, **kwargs: object) -> Thread:
    message = {"role": "user", "content": text, **kwargs}
    return strict(Thread, client.beta.threads.create(messages=[message]))  # type: ignore[list-item]


def latest_reply(client: openai.OpenAI, thread_id: str) -> Message:
    newest = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    return strict(Message, newest)


def test_tool_round_trip_with_poll_helpers(
    server: OpenAIServer, client: openai.OpenAI, assistant: Assistant
) -> None:
    thread = new_thread(client, "What are the sales by region?")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    run = strict(Run, run)
    assert run.status == "requires_action"
    assert run.usage is None  # usage only appears once the run is terminal
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.name == "query_database"
    assert "GROUP BY region" in json.loads(call.function.arguments)["query"]
    first_turn = server.state.runs[run.id].turn.outcome

    rows = [{"region": "West", "revenue": 42.0}]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": call.id, "output": json.dumps(rows)}],
    )
    run = strict(Run, run)
    assert run.status == "completed"
    assert run.usage.total_tokens == run.usage.prompt_tokens + run.usage.completion_tokens
    second_turn = server.state.runs[run.id].turn.outcome
    assert run.usage.prompt_tokens == first_turn.input_tokens + second_turn.input_tokens
    assert run.usage.completion_tokens == first_turn.output_tokens + second_turn.output_tokens

    reply = latest_reply(client, thread.id)
    assert reply.role == "assistant"
    assert reply.run_id == run.id
    assert reply.content[0].text.value.startswith(
        "Here is what I found with query_database: 1 rows"
    )


def test_parallel_calls_and_wrong_call_ids(client: openai.OpenAI, assistant: Assistant) -> None:
    thread = new_thread(client, "Describe the schema")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [c.function.name for c in calls] == ["get_table_schema", "get_table_schema"]

    wrong_sets = [
        [{"tool_call_id": calls[0].id, "output": "{}"}],
        [{"tool_call_id": c.id, "output": "{}"} for c in calls]
        + [{"tool_call_id": "call_extra", "output": "{}"}],
        [
            {"tool_call_id": "call_wrong", "output": "{}"},
            {"tool_call_id": calls[1].id, "output": "{}"},
        ],
    ]
    for outputs in wrong_sets:
        with pytest.raises(openai.BadRequestError):
            client.beta.threads.runs.submit_tool_outputs(
                run_id=run.id, thread_id=thread.id, tool_outputs=outputs
            )
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == (
        "requires_action"
    )
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": c.id, "output": '{"columns": []}'} for c in calls],
    )
    assert run.status == "completed"
    with pytest.raises(openai.BadRequestError, match="do not accept tool outputs"):
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id, thread_id=thread.id, tool_outputs=[]
        )


def test_cancel_goes_through_cancelling(
    server: OpenAIServer, client: openai.OpenAI, assistant: Assistant
) -> None:
    server.script.push(Step.hang())
    thread = new_thread(client, "hi")
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "in_progress"
    assert client.beta.threads.runs.cancel(run.id, thread_id=thread.id).status == "cancelling"
    run = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert run.status == "cancelled"
    assert run.cancelled_at is not None
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)


@pytest.mark.parametrize(
    "case",
    [
        (Step.fail(message="boom"), "failed", lambda r: r.last_error.message == "boom"),
        (Step.expire(), "expired", lambda r: r.last_error is None),
        (
            Step.incomplete(),
            "incomplete",
            lambda r: r.incomplete_details.reason == "max_completion_tokens",
        ),
    ],
    ids=["fail", "expire", "incomplete"],
)
def test_scripted_outcomes(
    server: OpenAIServer,
    client: openai.OpenAI,
    assistant: Assistant,
    case: tuple[Step, str, Callable[[Run], bool]],
) -> None:
    step, status, check = case
    server.script.push(step)
    thread = new_thread(client, "hi")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert strict(Run, run).status == status
    assert check(run)
    assert run.usage is not None


def test_http_error_on_submit_keeps_the_run_waiting(
    server: OpenAIServer, client: openai.OpenAI, assistant: Assistant
) -> None:
    thread = new_thread(client, "sales by region")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    [call] = run.required_action.submit_tool_outputs.tool_calls
    server.script.push(Step.http_error(429, retry_after=2), key=thread.id)
    outputs = [{"tool_call_id": call.id, "output": "[]"}]
    with pytest.raises(openai.RateLimitError):
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id, thread_id=thread.id, tool_outputs=outputs
        )
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=outputs
    )
    assert run.status == "completed"


def test_http_error_on_create(
    server: OpenAIServer, client: openai.OpenAI, assistant: Assistant
) -> None:
    server.script.push(Step.http_error(500))
    thread = new_thread(client, "hi")
    with pytest.raises(openai.InternalServerError):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert client.beta.threads.runs.list(thread_id=thread.id).data == []


def test_thread_with_active_run_refuses_messages_and_runs(
    server: OpenAIServer, client: openai.OpenAI, assistant: Assistant
) -> None:
    server.script.push(Step.hang())
    thread = new_thread(client, "hi")
    client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    with pytest.raises(openai.BadRequestError, match="while a run"):
        client.beta.threads.messages.create(thread.id, role="user", content="more")
    with pytest.raises(openai.BadRequestError, match="while a run"):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)


def test_generated_image_is_an_assistants_output_file(
    server: OpenAIServer, client: openai.OpenAI, assistant: Assistant
) -> None:
    server.script.push(Step.image("Chart attached.", PNG))
    thread = new_thread(client, "plot it")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    image, text = latest_reply(client, thread.id).content
    assert image.type == "image_file"
    assert text.text.value == "Chart attached."
    generated = client.files.retrieve(image.image_file.file_id)
    assert generated.purpose == "assistants_output"
    assert client.files.content(generated.id).read() == PNG


def test_attached_file_reaches_the_run(client: openai.OpenAI, assistant: Assistant) -> None:
    uploaded = client.files.create(file=("report.csv", b"a,b\n1,2\n"), purpose="assistants")
    thread = new_thread(
        client,
        "What is in the file I sent?",
        attachments=[{"file_id": uploaded.id, "tools": [{"type": "code_interpreter"}]}],
    )
    client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert "report.csv" in latest_reply(client, thread.id).content[0].text.value


def test_run_overrides_and_additional_messages(client: openai.OpenAI, assistant: Assistant) -> None:
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        instructions="Be brief.",
        tools=[],
        additional_messages=[{"role": "user", "content": "sales by region"}],
    )
    assert run.instructions == "Be brief."
    assert run.status == "completed"  # no tools offered, so the playbook does not apply
    assert latest_reply(client, thread.id).content[0].text.value == "You said: sales by region"


def test_messages_paging(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": f"m{i}"} for i in range(4)]
    )
    first = client.beta.threads.messages.list(thread.id, limit=3)
    assert [m.content[0].text.value for m in first.data] == ["m3", "m2", "m1"]
    assert first.has_more is True
    after = client.beta.threads.messages.list(thread.id, limit=3, after=first.data[-1].id)
    assert [m.content[0].text.value for m in after.data] == ["m0"]
    ascending = client.beta.threads.messages.list(thread.id, order="asc")
    assert ascending.data[0].content[0].text.value == "m0"
    one = client.beta.threads.messages.retrieve(first.data[0].id, thread_id=thread.id)
    assert one.id == first.data[0].id


def test_assistants_list_pages(client: openai.OpenAI, assistant: Assistant) -> None:
    second = client.beta.assistants.create(model="m", metadata={"fingerprint": "abc"})
    newest = client.beta.assistants.list(limit=1)
    assert [a.id for a in newest.data] == [second.id]
    assert newest.has_more is True
    assert [a.id for a in client.beta.assistants.list(limit=1)] == [second.id, assistant.id]
    found = [a for a in client.beta.assistants.list() if a.metadata.get("fingerprint") == "abc"]
    assert [a.id for a in found] == [second.id]


def test_lifecycle_and_404s(client: openai.OpenAI, assistant: Assistant) -> None:
    thread = client.beta.threads.create()
    assert client.beta.threads.delete(thread.id).deleted is True
    assert client.beta.assistants.delete(assistant.id).deleted is True
    for call in (
        lambda: client.beta.threads.retrieve(thread.id),
        lambda: client.beta.assistants.retrieve(assistant.id),
        lambda: client.beta.threads.runs.retrieve("run_missing", thread_id=thread.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()


def test_assistants_need_the_beta_header(server: OpenAIServer) -> None:
    import httpx2

    http = httpx2.Client(transport=httpx2.WSGITransport(app=server.wsgi_app))
    answer = http.post(
        "http://local/v1/assistants", json={"model": "m"}, headers={"Authorization": "Bearer x"}
    )
    assert answer.status_code == 400
    assert "OpenAI-Beta" in answer.json()["error"]["message"]
