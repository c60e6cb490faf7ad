"""Responses and Conversations endpoints."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from local.openai_server import resources_api
from local.openai_server.engine import Event, ModelInput, Outcome, new_id
from local.openai_server.mcp_tools import mcp_turn
from local.openai_server.state import ConversationRecord, ResponseRecord
from local.openai_server.streaming import stream_events
from local.openai_server.wire import (
    ApiError,
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

MESSAGE_ROLES = ("user", "assistant", "system", "developer")
MOVING = ("queued", "in_progress")
# Step.incomplete speaks both families' reason names; Responses only knows these.
INCOMPLETE_REASONS = {
    "max_completion_tokens": "max_output_tokens",
    "max_prompt_tokens": "max_output_tokens",
}
# Responses have no "expired" status, and ResponseError.code has no "expired" value: a
# Step.expire() response fails with a server_error whose message says it expired.
EXPIRED_ERROR = {
    "code": "server_error",
    "message": "The response expired before the model finished (scripted Step.expire).",
}


# --- Responses ----------------------------------------------------------------------------


def create_response(srv: OpenAIServer, request: Request) -> Response:
    body = json_body(request)
    model = required(body, "model", str)
    tools = _tools(body)
    tool_choice = body.get("tool_choice") or "auto"
    instructions = field(body, "instructions", str)
    background = field(body, "background", bool, False)
    stream = field(body, "stream", bool, False)
    if stream and not background:
        raise bad_request("This server streams background responses only.", "stream")
    previous_id = field(body, "previous_response_id", str)
    conversation = _conversation(srv, body.get("conversation"))
    if conversation and previous_id:
        raise bad_request(
            "Cannot use both 'conversation' and 'previous_response_id'.", "previous_response_id"
        )
    input_items = normalize_items(body.get("input"), "input")
    history = _history(srv, conversation, previous_id)
    _check_tool_outputs(history, input_items)
    context = history + input_items
    meta = metadata(body)
    key = conversation.body["id"] if conversation else meta.get("thread")
    decided = mcp_turn(history, input_items, tools)
    turn = srv.start_turn(
        key, _model_input(srv, context, instructions, tools, tool_choice), decided
    )
    if not background and srv.latency_seconds > 0:
        with srv.unlocked():  # a synchronous response answers once the model is done
            time.sleep(srv.latency_seconds)
    if conversation:
        conversation.items.extend(input_items)
    response_id = new_id("resp_")
    record = ResponseRecord(
        body={
            "id": response_id,
            "object": "response",
            "created_at": int(turn.started_at),
            "status": "queued",
            "background": background,
            "model": model,
            "instructions": instructions,
            "tools": tools,
            "tool_choice": tool_choice,
            "parallel_tool_calls": field(body, "parallel_tool_calls", bool, True),
            "metadata": meta,
            "previous_response_id": previous_id,
            "conversation": {"id": conversation.body["id"]} if conversation else None,
            "output": [],
            "usage": None,
            "error": None,
            "incomplete_details": None,
            "completed_at": None,
            "max_output_tokens": field(body, "max_output_tokens", int),
            "temperature": field(body, "temperature", (int, float), 1.0),
            "top_p": field(body, "top_p", (int, float), 1.0),
            "text": {"format": {"type": "text"}},
            "truncation": "disabled",
            "store": True,
            "user": None,
        },
        input_items=input_items,
        context=context,
        turn=turn,
        streamed=stream,
    )
    srv.state.responses[response_id] = record
    srv.stats.created(response_id, turn.started_at)
    if background:
        srv.state.moving.add(response_id)
        if srv.webhook_url:
            srv.ensure_ticker()
    else:
        _finish(srv, record)
    if stream:
        return Response(stream_events(srv, record, -1, advance), mimetype="text/event-stream")
    return json_response(record.body, headers=srv.poll_headers())


def retrieve_response(srv: OpenAIServer, request: Request, response_id: str) -> Response:
    record = find(srv.state.responses, response_id, "response")
    advance(srv, record)
    srv.stats.retrieved(response_id, srv.clock())
    if request.args.get("stream") == "true":
        if not record.streamed:
            raise bad_request(
                "Only background responses created with stream=true can be streamed.", "stream"
            )
        after = request.args.get("starting_after", "-1")
        if not after.lstrip("-").isdigit():
            raise bad_request(f"Invalid 'starting_after': {after!r}.", "starting_after")
        events = stream_events(srv, record, int(after), advance)
        return Response(events, mimetype="text/event-stream")
    return json_response(record.body, headers=srv.poll_headers())


def cancel_response(srv: OpenAIServer, _request: Request, response_id: str) -> Response:
    """A background response that has already ended is returned unchanged, as OpenAI does."""
    record = find(srv.state.responses, response_id, "response")
    if not record.body["background"]:
        raise bad_request("Cannot cancel a synchronous response.")
    advance(srv, record)
    if record.body["status"] in MOVING:
        _settle(srv, record, "cancelled")
    return json_response(record.body, headers=srv.poll_headers())


def delete_response(srv: OpenAIServer, _request: Request, response_id: str) -> Response:
    find(srv.state.responses, response_id, "response")
    del srv.state.responses[response_id]
    srv.state.moving.discard(response_id)
    return json_response(deleted(response_id, "response"))


def list_input_items(srv: OpenAIServer, request: Request, response_id: str) -> Response:
    record = find(srv.state.responses, response_id, "response")
    return json_response(page(record.input_items, request.args))


def advance(srv: OpenAIServer, record: ResponseRecord) -> None:
    """Reveal the decided turn once its latency has passed."""
    if record.body["status"] not in MOVING:
        return
    if srv.clock() < record.turn.finish_at:
        record.body["status"] = "in_progress"
        return
    _finish(srv, record)


def _finish(srv: OpenAIServer, record: ResponseRecord) -> None:
    outcome = record.turn.outcome
    body = record.body
    if outcome.kind == "hang":
        body["status"] = "in_progress"
        return
    if outcome.kind in ("calls", "text", "mcp_approval") or outcome.calls:
        body["output"] = _output_items(srv, outcome, body, record.message_id)
        body["completed_at"] = int(srv.clock())
    if outcome.kind == "failed":
        body["error"] = {"code": outcome.error_code, "message": outcome.error_message}
    elif outcome.kind == "expired":
        body["error"] = dict(EXPIRED_ERROR)
    elif outcome.kind == "incomplete":
        reason = INCOMPLETE_REASONS.get(outcome.incomplete_reason, outcome.incomplete_reason)
        body["incomplete_details"] = {"reason": reason}
    if outcome.kind in ("calls", "text", "mcp_approval", "incomplete"):
        body["usage"] = _usage(outcome)
    status = {
        "calls": "completed",
        "text": "completed",
        "mcp_approval": "completed",
        "incomplete": "incomplete",
    }
    srv.stats.finished(body["id"], min(record.turn.finish_at, srv.clock()))
    _settle(srv, record, status.get(outcome.kind, "failed"))


def _settle(srv: OpenAIServer, record: ResponseRecord, status: str) -> None:
    """Enter a terminal status: extend the conversation and announce it by webhook."""
    body = record.body
    body["status"] = status
    srv.state.moving.discard(body["id"])
    conversation = body["conversation"] and srv.state.conversations.get(body["conversation"]["id"])
    if conversation:
        conversation.items.extend(body["output"])
    if body["background"]:
        srv.emit_webhook(f"response.{status}", body["id"])


def _output_items(
    srv: OpenAIServer, outcome: Outcome, body: dict[str, Any], message_id: str
) -> list[dict[str, Any]]:
    calls = [
        {
            "type": "function_call",
            "id": new_id("fc_"),
            "call_id": call.call_id,
            "name": call.name,
            "arguments": call.arguments,
            "status": "completed",
        }
        for call in outcome.calls
    ]
    if calls:
        return calls
    if outcome.kind == "mcp_approval":  # the turn waits for the approval it asks for
        return list(outcome.mcp_items)
    text, annotations, items = outcome.text, [], list(outcome.mcp_items)
    if outcome.image is not None:
        # As code interpreter does: the file lives in a container, next to the files the
        # code could read, and the text cites it (unless scripted not to).
        container = resources_api.new_container(srv, f"code-interpreter-{body['id']}")
        for file_id in _interpreter_file_ids(body["tools"]):
            if file_id in srv.state.files:
                given = srv.state.files[file_id]
                resources_api.add_container_file(
                    srv, container, given.body["filename"], given.data, source="user"
                )
        cfile = resources_api.add_container_file(
            srv, container, outcome.filename, outcome.image, source="assistant"
        )
        if outcome.cited:
            link = f"[{outcome.filename}](sandbox:{cfile.body['path']})"
            text = f"{text}\n\n{link}"
            annotations.append(
                {
                    "type": "container_file_citation",
                    "container_id": container.body["id"],
                    "file_id": cfile.body["id"],
                    "filename": outcome.filename,
                    "start_index": len(text) - len(link),
                    "end_index": len(text),
                }
            )
        items.append(
            {
                "type": "code_interpreter_call",
                "id": new_id("ci_"),
                "status": "completed",
                "container_id": container.body["id"],
                "code": f"# save the chart\nplt.savefig('/mnt/data/{outcome.filename}')",
                "outputs": None,
            }
        )
    items.append(_message("assistant", [_output_text(text, annotations)], record_id=message_id))
    return items


def _interpreter_file_ids(tools: list[dict[str, Any]]) -> list[str]:
    """The files a code_interpreter tool gives its container."""
    file_ids: list[str] = []
    for tool in tools:
        container = tool.get("container") if tool["type"] == "code_interpreter" else None
        if isinstance(container, dict):
            file_ids += container.get("file_ids") or []
    return file_ids


def _usage(outcome: Outcome) -> dict[str, Any]:
    return {
        "input_tokens": outcome.input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": outcome.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": outcome.input_tokens + outcome.output_tokens,
    }


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = field(body, "tools", list, [])
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise bad_request("Each tool must be an object with a 'type'.", f"tools[{index}]")
        if tool["type"] == "function" and not isinstance(tool.get("name"), str):
            raise bad_request("Missing required parameter: 'name'.", f"tools[{index}].name")
    return tools


def _conversation(srv: OpenAIServer, value: object) -> ConversationRecord | None:
    conversation_id = value.get("id") if isinstance(value, dict) else value
    if conversation_id is None:
        return None
    if not isinstance(conversation_id, str):
        raise bad_request("Invalid 'conversation'.", "conversation")
    return find(srv.state.conversations, conversation_id, "conversation")


def _history(
    srv: OpenAIServer, conversation: ConversationRecord | None, previous_id: str | None
) -> list[dict[str, Any]]:
    if conversation:
        return list(conversation.items)
    if not previous_id:
        return []
    previous = srv.state.responses.get(previous_id)
    if previous is None:
        raise ApiError(
            400,
            f"Previous response with id '{previous_id}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    advance(srv, previous)
    if previous.body["status"] in MOVING:
        raise bad_request(
            f"Previous response with id '{previous_id}' is still in progress.",
            "previous_response_id",
        )
    return previous.context + previous.body["output"]


def _check_tool_outputs(history: list[dict[str, Any]], new_items: list[dict[str, Any]]) -> None:
    """Every function_call_output must answer a pending call, and none may stay unanswered."""
    pending: list[str] = []
    for item in history + new_items:
        if item["type"] == "function_call":
            pending.append(item["call_id"])
        elif item["type"] == "function_call_output":
            if item["call_id"] not in pending:
                raise bad_request(
                    f"No tool call found for function call output with call_id {item['call_id']}.",
                    "input",
                )
            pending.remove(item["call_id"])
    if pending:
        raise bad_request(f"No tool output found for function call {pending[0]}.", "input")


def _model_input(
    srv: OpenAIServer,
    context: list[dict[str, Any]],
    instructions: str | None,
    tools: list[dict[str, Any]],
    tool_choice: object,
) -> ModelInput:
    names = tuple(t["name"] for t in tools if t["type"] == "function")
    file_ids = [
        part["file_id"]
        for item in context
        if item["type"] == "message"
        for part in item["content"]
        if part.get("type") == "input_file" and part.get("file_id")
    ]
    file_ids += _interpreter_file_ids(tools)
    searches = [tool for tool in tools if tool["type"] == "file_search"]
    vector_store_ids = [vs for tool in searches for vs in tool.get("vector_store_ids", [])]
    system_text = [
        message_text(item)
        for item in context
        if item["type"] == "message" and item["role"] in ("system", "developer")
    ]
    return ModelInput(
        events=events_from_items(context),
        instructions="\n".join([instructions or "", *system_text]),
        tool_names=() if tool_choice == "none" else names,
        tools_json=json.dumps(tools),
        attached_filenames=resources_api.filenames(srv, file_ids, vector_store_ids),
    )


def events_from_items(items: list[dict[str, Any]]) -> list[Event]:
    events = []
    for item in items:
        if item["type"] == "message" and item["role"] in ("user", "assistant"):
            events.append(Event(item["role"], text=message_text(item)))
        elif item["type"] == "function_call":
            events.append(
                Event("call", text=item["arguments"], call_id=item["call_id"], name=item["name"])
            )
        elif item["type"] == "function_call_output":
            output = item["output"]
            text = output if isinstance(output, str) else json.dumps(output)
            events.append(Event("output", text=text, call_id=item["call_id"]))
    return events


def message_text(item: dict[str, Any]) -> str:
    return "\n".join(part["text"] for part in item["content"] if isinstance(part.get("text"), str))


def normalize_items(raw: object, param: str) -> list[dict[str, Any]]:
    """Input items as they are stored and listed: each with an id and a status."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [_message("user", [{"type": "input_text", "text": raw}])]
    if not isinstance(raw, list):
        raise bad_request(f"Invalid '{param}': expected a string or a list of items.", param)
    return [_normalize_item(item, f"{param}[{index}]") for index, item in enumerate(raw)]


def _normalize_item(item: object, param: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise bad_request(f"Invalid '{param}': expected an object.", param)
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in MESSAGE_ROLES:
            raise bad_request(f"Invalid '{param}.role': {role!r}.", f"{param}.role")
        return _message(role, _content(item.get("content"), role, param))
    if kind == "function_call_output":
        output = item.get("output")
        if not isinstance(output, str | list):
            raise bad_request(f"Missing required parameter: '{param}.output'.", f"{param}.output")
        return {
            "type": "function_call_output",
            "id": new_id("fco_"),
            "call_id": _required_str(item, "call_id", param),
            "output": output,
            "status": "completed",
        }
    if kind == "mcp_approval_response":
        if not isinstance(item.get("approve"), bool):
            raise bad_request(f"Missing required parameter: '{param}.approve'.", f"{param}.approve")
        return {
            "type": "mcp_approval_response",
            "id": new_id("mcpa_"),
            "approval_request_id": _required_str(item, "approval_request_id", param),
            "approve": item["approve"],
            "reason": item.get("reason"),
        }
    if kind == "function_call":
        return {
            "type": "function_call",
            "id": item.get("id") or new_id("fc_"),
            "call_id": _required_str(item, "call_id", param),
            "name": _required_str(item, "name", param),
            "arguments": _required_str(item, "arguments", param),
            "status": "completed",
        }
    raise bad_request(f"Unsupported input item type '{kind}'.", f"{param}.type")


def _content(content: object, role: str, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        if role == "assistant":
            return [_output_text(content, [])]
        return [{"type": "input_text", "text": content}]
    if not isinstance(content, list) or not all(
        isinstance(part, dict) and isinstance(part.get("type"), str) for part in content
    ):
        raise bad_request(f"Invalid '{param}.content'.", f"{param}.content")
    return [
        {"annotations": [], **part} if part["type"] == "output_text" else part for part in content
    ]


def _required_str(item: dict[str, Any], name: str, param: str) -> str:
    value = item.get(name)
    if not isinstance(value, str):
        raise bad_request(f"Missing required parameter: '{param}.{name}'.", f"{param}.{name}")
    return value


def _message(
    role: str, content: list[dict[str, Any]], record_id: str | None = None
) -> dict[str, Any]:
    return {
        "type": "message",
        "id": record_id or new_id("msg_"),
        "role": role,
        "content": content,
        "status": "completed",
    }


def _output_text(text: str, annotations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}


# --- Conversations ------------------------------------------------------------------------


def create_conversation(srv: OpenAIServer, request: Request) -> Response:
    body = json_body(request)
    conversation_id = new_id("conv_")
    record = ConversationRecord(
        body={
            "id": conversation_id,
            "object": "conversation",
            "created_at": int(srv.clock()),
            "metadata": metadata(body),
        },
        items=normalize_items(body.get("items"), "items"),
    )
    srv.state.conversations[conversation_id] = record
    return json_response(record.body)


def retrieve_conversation(srv: OpenAIServer, _request: Request, conversation_id: str) -> Response:
    return json_response(find(srv.state.conversations, conversation_id, "conversation").body)


def update_conversation(srv: OpenAIServer, request: Request, conversation_id: str) -> Response:
    record = find(srv.state.conversations, conversation_id, "conversation")
    body = json_body(request)
    required(body, "metadata", dict)
    record.body["metadata"] = metadata(body)
    return json_response(record.body)


def delete_conversation(srv: OpenAIServer, _request: Request, conversation_id: str) -> Response:
    find(srv.state.conversations, conversation_id, "conversation")
    del srv.state.conversations[conversation_id]
    return json_response(deleted(conversation_id, "conversation.deleted"))


def list_items(srv: OpenAIServer, request: Request, conversation_id: str) -> Response:
    record = find(srv.state.conversations, conversation_id, "conversation")
    return json_response(page(record.items, request.args))


def add_items(srv: OpenAIServer, request: Request, conversation_id: str) -> Response:
    record = find(srv.state.conversations, conversation_id, "conversation")
    items = normalize_items(required(json_body(request), "items", list), "items")
    if not 1 <= len(items) <= 20:
        raise bad_request("Invalid 'items': add from 1 to 20 items at a time.", "items")
    record.items.extend(items)
    return json_response(
        {
            "object": "list",
            "data": items,
            "first_id": items[0]["id"],
            "last_id": items[-1]["id"],
            "has_more": False,
        }
    )


def retrieve_item(
    srv: OpenAIServer, _request: Request, conversation_id: str, item_id: str
) -> Response:
    record = find(srv.state.conversations, conversation_id, "conversation")
    return json_response(_find_item(record, item_id))


def delete_item(
    srv: OpenAIServer, _request: Request, conversation_id: str, item_id: str
) -> Response:
    record = find(srv.state.conversations, conversation_id, "conversation")
    record.items.remove(_find_item(record, item_id))
    return json_response(record.body)


def _find_item(record: ConversationRecord, item_id: str) -> dict[str, Any]:
    return find({item["id"]: item for item in record.items}, item_id, "item")


ROUTES: list[tuple[str, str, Handler]] = [
    ("/responses", "POST", create_response),
    ("/responses/<response_id>", "GET", retrieve_response),
    ("/responses/<response_id>", "DELETE", delete_response),
    ("/responses/<response_id>/cancel", "POST", cancel_response),
    ("/responses/<response_id>/input_items", "GET", list_input_items),
    ("/conversations", "POST", create_conversation),
    ("/conversations/<conversation_id>", "GET", retrieve_conversation),
    ("/conversations/<conversation_id>", "POST", update_conversation),
    ("/conversations/<conversation_id>", "DELETE", delete_conversation),
    ("/conversations/<conversation_id>/items", "GET", list_items),
    ("/conversations/<conversation_id>/items", "POST", add_items),
    ("/conversations/<conversation_id>/items/<item_id>", "GET", retrieve_item),
    ("/conversations/<conversation_id>/items/<item_id>", "DELETE", delete_item),
]
