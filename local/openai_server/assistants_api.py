"""Assistants v2: assistants, threads, messages and runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from local.openai_server import resources_api
from local.openai_server.engine import Event, ModelInput, new_id
from local.openai_server.state import RunRecord, ThreadRecord
from local.openai_server.wire import (
    bad_request,
    deleted,
    field,
    find,
    json_body,
    json_response,
    metadata,
    page,
    required,
)

if TYPE_CHECKING:
    from local.openai_server.server import Handler, OpenAIServer

ASSISTANT_TOOL_TYPES = ("function", "code_interpreter", "file_search")
ACTIVE = ("queued", "in_progress", "requires_action", "cancelling")
RUN_TTL_SECONDS = 600
# Step.incomplete speaks both families' reason names; runs only know these two.
INCOMPLETE_REASONS = {"max_output_tokens": "max_completion_tokens"}


# --- Assistants ---------------------------------------------------------------------------


def create_assistant(srv: OpenAIServer, request: Request) -> Response:
    body = json_body(request)
    assistant_id = new_id("asst_")
    assistant = {
        "id": assistant_id,
        "object": "assistant",
        "created_at": int(srv.clock()),
        "model": required(body, "model", str),
        "name": field(body, "name", str),
        "description": field(body, "description", str),
        "instructions": field(body, "instructions", str),
        "tools": _tools(body, []),
        "tool_resources": field(body, "tool_resources", dict, {}),
        "metadata": metadata(body),
        "temperature": field(body, "temperature", (int, float), 1.0),
        "top_p": field(body, "top_p", (int, float), 1.0),
        "response_format": body.get("response_format") or "auto",
    }
    srv.state.assistants[assistant_id] = assistant
    return json_response(assistant)


def list_assistants(srv: OpenAIServer, request: Request) -> Response:
    return json_response(page(list(srv.state.assistants.values()), request.args))


def retrieve_assistant(srv: OpenAIServer, _request: Request, assistant_id: str) -> Response:
    return json_response(find(srv.state.assistants, assistant_id, "assistant"))


def update_assistant(srv: OpenAIServer, request: Request, assistant_id: str) -> Response:
    assistant = find(srv.state.assistants, assistant_id, "assistant")
    body = json_body(request)
    for name in ("model", "name", "description", "instructions"):
        assistant[name] = field(body, name, str, assistant[name])
    assistant["tools"] = _tools(body, assistant["tools"])
    if "metadata" in body:
        assistant["metadata"] = metadata(body)
    return json_response(assistant)


def delete_assistant(srv: OpenAIServer, _request: Request, assistant_id: str) -> Response:
    find(srv.state.assistants, assistant_id, "assistant")
    del srv.state.assistants[assistant_id]
    return json_response(deleted(assistant_id, "assistant.deleted"))


# --- Threads and messages -----------------------------------------------------------------


def create_thread(srv: OpenAIServer, request: Request) -> Response:
    body = json_body(request)
    thread_id = new_id("thread_")
    thread = ThreadRecord(
        body={
            "id": thread_id,
            "object": "thread",
            "created_at": int(srv.clock()),
            "metadata": metadata(body),
            "tool_resources": field(body, "tool_resources", dict, {}),
        }
    )
    messages = enumerate(field(body, "messages", list, []))
    thread.messages = [_new_message(srv, thread_id, m, f"messages[{i}]") for i, m in messages]
    srv.state.threads[thread_id] = thread
    return json_response(thread.body)


def retrieve_thread(srv: OpenAIServer, _request: Request, thread_id: str) -> Response:
    return json_response(find(srv.state.threads, thread_id, "thread").body)


def update_thread(srv: OpenAIServer, request: Request, thread_id: str) -> Response:
    thread = find(srv.state.threads, thread_id, "thread")
    body = json_body(request)
    if "metadata" in body:
        thread.body["metadata"] = metadata(body)
    resources = field(body, "tool_resources", dict, thread.body["tool_resources"])
    thread.body["tool_resources"] = resources
    return json_response(thread.body)


def delete_thread(srv: OpenAIServer, _request: Request, thread_id: str) -> Response:
    find(srv.state.threads, thread_id, "thread")
    del srv.state.threads[thread_id]
    return json_response(deleted(thread_id, "thread.deleted"))


def create_message(srv: OpenAIServer, request: Request, thread_id: str) -> Response:
    thread = find(srv.state.threads, thread_id, "thread")
    _refuse_if_busy(srv, thread, "add messages to")
    message = _new_message(srv, thread_id, json_body(request), "body")
    thread.messages.append(message)
    return json_response(message)


def list_messages(srv: OpenAIServer, request: Request, thread_id: str) -> Response:
    thread = find(srv.state.threads, thread_id, "thread")
    run_id = request.args.get("run_id")
    messages = [m for m in thread.messages if run_id in (None, m["run_id"])]
    return json_response(page(messages, request.args))


def retrieve_message(
    srv: OpenAIServer, _request: Request, thread_id: str, message_id: str
) -> Response:
    thread = find(srv.state.threads, thread_id, "thread")
    return json_response(find({m["id"]: m for m in thread.messages}, message_id, "message"))


def _new_message(srv: OpenAIServer, thread_id: str, body: object, param: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request(f"Invalid '{param}': expected an object.", param)
    role = body.get("role")
    if role not in ("user", "assistant"):
        raise bad_request(f"Invalid '{param}.role': expected 'user' or 'assistant'.", "role")
    attachments = field(body, "attachments", list, [])
    for attachment in attachments:
        if not isinstance(attachment, dict):
            raise bad_request("Invalid 'attachments'.", "attachments")
        find(srv.state.files, str(attachment.get("file_id")), "file")
    content = _content(body.get("content"), param)
    return _message(srv, thread_id, role, content, attachments=attachments, meta=metadata(body))


def _content(content: object, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [_text_part(content)]
    if not isinstance(content, list) or not content:
        raise bad_request(f"Missing required parameter: '{param}.content'.", "content")
    parts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(_text_part(part["text"]))
        elif kind in ("image_file", "image_url"):
            parts.append(part)
        else:
            raise bad_request(f"Invalid '{param}.content' part.", "content")
    return parts


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": {"value": text, "annotations": []}}


def _message(
    srv: OpenAIServer,
    thread_id: str,
    role: str,
    content: list[dict[str, Any]],
    *,
    attachments: list[dict[str, Any]] | None = None,
    meta: dict[str, str] | None = None,
    run: RunRecord | None = None,
) -> dict[str, Any]:
    now = int(srv.clock())
    return {
        "id": new_id("msg_"),
        "object": "thread.message",
        "created_at": now,
        "thread_id": thread_id,
        "role": role,
        "content": content,
        "attachments": attachments or [],
        "metadata": meta or {},
        "assistant_id": run.body["assistant_id"] if run else None,
        "run_id": run.body["id"] if run else None,
        "status": "completed",
        "completed_at": now,
        "incomplete_at": None,
        "incomplete_details": None,
    }


# --- Runs ---------------------------------------------------------------------------------


def create_run(srv: OpenAIServer, request: Request, thread_id: str) -> Response:
    thread = find(srv.state.threads, thread_id, "thread")
    body = json_body(request)
    assistant = find(srv.state.assistants, required(body, "assistant_id", str), "assistant")
    _refuse_if_busy(srv, thread, "create a run on")
    instructions = field(body, "instructions", str, assistant["instructions"] or "")
    extra_instructions = field(body, "additional_instructions", str)
    if extra_instructions:
        instructions = f"{instructions}\n{extra_instructions}".strip()
    additional = [
        _new_message(srv, thread_id, message, f"additional_messages[{index}]")
        for index, message in enumerate(field(body, "additional_messages", list, []))
    ]
    tools = _tools(body, assistant["tools"])
    model_input = _model_input(
        srv, thread, thread.messages + additional, [], run_setup=(instructions, tools, assistant)
    )
    turn = srv.start_turn(thread_id, model_input)
    thread.messages += additional
    now = int(turn.started_at)
    run = RunRecord(
        body={
            "id": new_id("run_"),
            "object": "thread.run",
            "created_at": now,
            "assistant_id": assistant["id"],
            "thread_id": thread_id,
            "status": "queued",
            "started_at": None,
            "expires_at": now + RUN_TTL_SECONDS,
            "cancelled_at": None,
            "failed_at": None,
            "completed_at": None,
            "required_action": None,
            "last_error": None,
            "incomplete_details": None,
            "model": field(body, "model", str, assistant["model"]),
            "instructions": instructions,
            "tools": tools,
            "metadata": metadata(body),
            "usage": None,
            "temperature": field(body, "temperature", (int, float), 1.0),
            "top_p": field(body, "top_p", (int, float), 1.0),
            "max_prompt_tokens": None,
            "max_completion_tokens": None,
            "truncation_strategy": {"type": "auto", "last_messages": None},
            "response_format": "auto",
            "tool_choice": body.get("tool_choice") or "auto",
            "parallel_tool_calls": field(body, "parallel_tool_calls", bool, True),
        },
        turn=turn,
    )
    run_id = run.body["id"]
    srv.state.runs[run_id] = run
    srv.state.moving.add(run_id)
    thread.active_run_id = run_id
    srv.stats.created(run_id, turn.started_at)
    return json_response(run.body, headers=srv.poll_headers())


def list_runs(srv: OpenAIServer, request: Request, thread_id: str) -> Response:
    find(srv.state.threads, thread_id, "thread")
    runs = [run for run in srv.state.runs.values() if run.body["thread_id"] == thread_id]
    for run in runs:
        advance(srv, run)
    return json_response(page([run.body for run in runs], request.args))


def retrieve_run(srv: OpenAIServer, _request: Request, thread_id: str, run_id: str) -> Response:
    run = _find_run(srv, thread_id, run_id)
    advance(srv, run)
    srv.stats.retrieved(run_id, srv.clock())
    return json_response(run.body, headers=srv.poll_headers())


def cancel_run(srv: OpenAIServer, _request: Request, thread_id: str, run_id: str) -> Response:
    run = _find_run(srv, thread_id, run_id)
    advance(srv, run)
    status = run.body["status"]
    if status not in ("queued", "in_progress", "requires_action"):
        raise bad_request(f"Cannot cancel run with status '{status}'.")
    run.body["status"] = "cancelling"  # becomes "cancelled" on the next look
    run.body["required_action"] = None
    srv.state.moving.add(run_id)
    return json_response(run.body, headers=srv.poll_headers())


def submit_tool_outputs(
    srv: OpenAIServer, request: Request, thread_id: str, run_id: str
) -> Response:
    run = _find_run(srv, thread_id, run_id)
    advance(srv, run)
    status = run.body["status"]
    if status != "requires_action":
        raise bad_request(f"Runs in status '{status}' do not accept tool outputs.")
    outputs = required(json_body(request), "tool_outputs", list)
    if not all(
        isinstance(o, dict) and isinstance(o.get(key), str)
        for o in outputs
        for key in ("tool_call_id", "output")
    ):
        raise bad_request("Each tool output needs 'tool_call_id' and 'output'.", "tool_outputs")
    submitted = [o["tool_call_id"] for o in outputs]
    if sorted(submitted) != sorted(run.pending_call_ids):
        raise bad_request(
            f"Expected tool outputs for call ids {run.pending_call_ids}, got {submitted}.",
            "tool_outputs",
        )
    answers = [Event("output", text=o["output"], call_id=o["tool_call_id"]) for o in outputs]
    events = run.events + answers
    thread = srv.state.threads[thread_id]
    assistant = srv.state.assistants.get(run.body["assistant_id"])
    setup = (run.body["instructions"], run.body["tools"], assistant)
    model_input = _model_input(srv, thread, thread.messages, events, run_setup=setup)
    run.turn = srv.start_turn(thread_id, model_input)
    run.events = events
    run.pending_call_ids = []
    run.body.update(status="queued", required_action=None)
    srv.state.moving.add(run_id)
    return json_response(run.body, headers=srv.poll_headers())


def advance(srv: OpenAIServer, run: RunRecord) -> None:
    """Reveal the decided turn once its latency has passed; settle a cancelling run."""
    body = run.body
    now = srv.clock()
    if body["status"] == "cancelling":
        body["cancelled_at"] = int(now)
        _settle(srv, run, "cancelled")
        return
    if body["status"] not in ("queued", "in_progress"):
        return
    body["started_at"] = body["started_at"] or int(run.turn.started_at)
    if now < run.turn.finish_at:
        body["status"] = "in_progress"
        return
    outcome = run.turn.outcome
    run.prompt_tokens += outcome.input_tokens
    run.completion_tokens += outcome.output_tokens
    srv.stats.finished(body["id"], run.turn.finish_at)
    if outcome.kind == "calls":
        run.events += [Event("call", c.arguments, c.call_id, c.name) for c in outcome.calls]
        run.pending_call_ids = [c.call_id for c in outcome.calls]
        tool_calls = [
            {
                "id": c.call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in outcome.calls
        ]
        body["status"] = "requires_action"
        body["required_action"] = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {"tool_calls": tool_calls},
        }
        srv.state.moving.discard(body["id"])
    elif outcome.kind == "text":
        content = [_text_part(outcome.text)]
        if outcome.image is not None:
            image = resources_api.new_file(
                srv, outcome.filename, "assistants_output", outcome.image
            )
            content.insert(0, {"type": "image_file", "image_file": {"file_id": image.body["id"]}})
        thread = srv.state.threads.get(body["thread_id"])
        if thread:
            reply = _message(srv, thread.body["id"], "assistant", content, run=run)
            thread.messages.append(reply)
        body["completed_at"] = int(now)
        _settle(srv, run, "completed")
    elif outcome.kind == "failed":
        body["last_error"] = {"code": outcome.error_code, "message": outcome.error_message}
        body["failed_at"] = int(now)
        _settle(srv, run, "failed")
    elif outcome.kind == "incomplete":
        reason = INCOMPLETE_REASONS.get(outcome.incomplete_reason, outcome.incomplete_reason)
        body["incomplete_details"] = {"reason": reason}
        _settle(srv, run, "incomplete")
    elif outcome.kind == "expired":
        _settle(srv, run, "expired")


def _settle(srv: OpenAIServer, run: RunRecord, status: str) -> None:
    """Enter a terminal status: usage appears, and the thread is free again."""
    body = run.body
    body["status"] = status
    body["required_action"] = None
    body["usage"] = {
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "total_tokens": run.prompt_tokens + run.completion_tokens,
    }
    srv.state.moving.discard(body["id"])
    thread = srv.state.threads.get(body["thread_id"])
    if thread and thread.active_run_id == body["id"]:
        thread.active_run_id = None


def _find_run(srv: OpenAIServer, thread_id: str, run_id: str) -> RunRecord:
    find(srv.state.threads, thread_id, "thread")
    run = find(srv.state.runs, run_id, "run")
    if run.body["thread_id"] != thread_id:
        find({}, run_id, "run")
    return run


def _refuse_if_busy(srv: OpenAIServer, thread: ThreadRecord, action: str) -> None:
    run_id = thread.active_run_id
    if run_id is None or run_id not in srv.state.runs:
        return
    advance(srv, srv.state.runs[run_id])
    if srv.state.runs[run_id].body["status"] in ACTIVE:
        raise bad_request(f"Can't {action} {thread.body['id']} while a run {run_id} is active.")


def _tools(body: dict[str, Any], default: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tools = field(body, "tools", list, default)
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") not in ASSISTANT_TOOL_TYPES:
            raise bad_request("Invalid tool type.", f"tools[{index}].type")
        function = tool.get("function") or {}
        if tool["type"] == "function" and not isinstance(function.get("name"), str):
            raise bad_request("Missing required 'name'.", f"tools[{index}].function.name")
    return tools


def _model_input(
    srv: OpenAIServer,
    thread: ThreadRecord,
    messages: list[dict[str, Any]],
    run_events: list[Event],
    *,
    run_setup: tuple[str, list[dict[str, Any]], dict[str, Any] | None],
) -> ModelInput:
    instructions, tools, assistant = run_setup
    events = [Event(m["role"], text=_text_of(m)) for m in messages]
    resources = [thread.body["tool_resources"], (assistant or {}).get("tool_resources") or {}]
    interpreters = [r.get("code_interpreter") or {} for r in resources]
    searches = [r.get("file_search") or {} for r in resources]
    file_ids = [a["file_id"] for m in messages for a in m["attachments"]]
    file_ids += [f for r in interpreters for f in r.get("file_ids", [])]
    stores = [v for r in searches for v in r.get("vector_store_ids", [])]
    return ModelInput(
        events=events + run_events,
        instructions=instructions,
        tool_names=tuple(t["function"]["name"] for t in tools if t["type"] == "function"),
        tools_json=json.dumps(tools),
        attached_filenames=resources_api.filenames(srv, file_ids, stores),
    )


def _text_of(message: dict[str, Any]) -> str:
    return "\n".join(p["text"]["value"] for p in message["content"] if p["type"] == "text")


ROUTES: list[tuple[str, str, Handler]] = [
    ("/assistants", "POST", create_assistant),
    ("/assistants", "GET", list_assistants),
    ("/assistants/<assistant_id>", "GET", retrieve_assistant),
    ("/assistants/<assistant_id>", "POST", update_assistant),
    ("/assistants/<assistant_id>", "DELETE", delete_assistant),
    ("/threads", "POST", create_thread),
    ("/threads/<thread_id>", "GET", retrieve_thread),
    ("/threads/<thread_id>", "POST", update_thread),
    ("/threads/<thread_id>", "DELETE", delete_thread),
    ("/threads/<thread_id>/messages", "POST", create_message),
    ("/threads/<thread_id>/messages", "GET", list_messages),
    ("/threads/<thread_id>/messages/<message_id>", "GET", retrieve_message),
    ("/threads/<thread_id>/runs", "POST", create_run),
    ("/threads/<thread_id>/runs", "GET", list_runs),
    ("/threads/<thread_id>/runs/<run_id>", "GET", retrieve_run),
    ("/threads/<thread_id>/runs/<run_id>/cancel", "POST", cancel_run),
    ("/threads/<thread_id>/runs/<run_id>/submit_tool_outputs", "POST", submit_tool_outputs),
]
