"""Remote MCP servers as the Responses API's hosted `mcp` tool uses them, for the local server.

A turn whose question asks for one of a listed server's tools (by name or description, as for
function tools) lists the server's tools (`mcp_list_tools`, once per conversation) and calls
the tool over Streamable HTTP with the tool's headers (`mcp_call`), or - when the tool's
`require_approval` says so - ends asking for approval (`mcp_approval_request`). A turn whose
input answers such requests (`mcp_approval_response`) calls the approved tools and says which
were not approved. A server that refuses the listing fails the request with 424, as OpenAI's
does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from local.openai_server.engine import Outcome, arguments_for, asks_for, new_id
from local.openai_server.wire import ApiError, bad_request

PREVIEW_LIMIT = 300


@dataclass(frozen=True)
class ListedTool:
    name: str
    description: str
    input_schema: dict[str, Any]


def mcp_turn(
    history: list[dict[str, Any]], new_items: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> Outcome | None:
    """The turn's outcome if it involves a remote MCP server; None for the model to decide."""
    servers = {tool["server_label"]: tool for tool in tools if tool["type"] == "mcp"}
    if not servers:
        return None
    answers = [item for item in new_items if item["type"] == "mcp_approval_response"]
    if answers:
        return _answered(history, answers, servers)
    questions = [item for item in new_items if item["type"] == "message" and item["role"] == "user"]
    if not questions:
        return None
    question = "\n".join(part.get("text", "") for part in questions[-1]["content"])
    return _asked(history, question, servers)


def _asked(
    history: list[dict[str, Any]], question: str, servers: dict[str, dict[str, Any]]
) -> Outcome | None:
    for label, server in servers.items():
        listing = _listing(history, server)
        for tool in _allowed(listing, server):
            offered = {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.input_schema,
            }
            if not asks_for(question, offered):
                continue
            arguments = json.dumps(arguments_for(tool.input_schema, question))
            items = [] if _listed_before(history, label) else [_listing_item(label, listing)]
            if _needs_approval(server, tool.name):
                request = {
                    "type": "mcp_approval_request",
                    "id": new_id("mcpr_"),
                    "server_label": label,
                    "name": tool.name,
                    "arguments": arguments,
                }
                return Outcome("mcp_approval", mcp_items=(*items, request))
            call = _call(server, tool.name, arguments, approval_request_id=None)
            return Outcome("text", text=_describe(call), mcp_items=(*items, call))
    return None


def _answered(
    history: list[dict[str, Any]], answers: list[dict[str, Any]], servers: dict[str, dict[str, Any]]
) -> Outcome:
    asked = {item["id"]: item for item in history if item["type"] == "mcp_approval_request"}
    calls, said = [], []
    for answer in answers:
        request = asked.get(answer["approval_request_id"])
        if request is None or request["server_label"] not in servers:
            raise bad_request(
                f"No MCP approval request found with id {answer['approval_request_id']}.", "input"
            )
        if answer["approve"]:
            server = servers[request["server_label"]]
            call = _call(server, request["name"], request["arguments"], request["id"])
            calls.append(call)
            said.append(_describe(call))
        else:
            name = f"{request['server_label']}.{request['name']}"
            said.append(f"{name} was not approved, so I did not call it")
    return Outcome("text", text="; ".join(said), mcp_items=tuple(calls))


def _listing(history: list[dict[str, Any]], server: dict[str, Any]) -> list[ListedTool]:
    for item in history:
        if item["type"] == "mcp_list_tools" and item["server_label"] == server["server_label"]:
            return [
                ListedTool(t["name"], t.get("description") or "", t["input_schema"])
                for t in item["tools"]
            ]
    return _run(server, _list_tools)


def _listed_before(history: list[dict[str, Any]], label: str) -> bool:
    return any(
        item["type"] == "mcp_list_tools" and item["server_label"] == label for item in history
    )


def _listing_item(label: str, listing: list[ListedTool]) -> dict[str, Any]:
    return {
        "type": "mcp_list_tools",
        "id": new_id("mcpl_"),
        "server_label": label,
        "tools": [
            {
                "name": t.name,
                "description": t.description,
                "input_schema": t.input_schema,
                "annotations": None,
            }
            for t in listing
        ],
        "error": None,
    }


def _allowed(listing: list[ListedTool], server: dict[str, Any]) -> list[ListedTool]:
    allowed = server.get("allowed_tools")
    if isinstance(allowed, dict):
        allowed = allowed.get("tool_names")
    return [tool for tool in listing if allowed is None or tool.name in allowed]


def _needs_approval(server: dict[str, Any], name: str) -> bool:
    policy = server.get("require_approval") or "always"
    if isinstance(policy, str):
        return policy == "always"
    return name not in (policy.get("never") or {}).get("tool_names", [])


def _call(
    server: dict[str, Any], name: str, arguments: str, approval_request_id: str | None
) -> dict[str, Any]:
    output, error = _run(server, _call_tool, name, json.loads(arguments))
    return {
        "type": "mcp_call",
        "id": new_id("mcp_"),
        "server_label": server["server_label"],
        "name": name,
        "arguments": arguments,
        "output": output,
        "error": error,
        "approval_request_id": approval_request_id,
        "status": "completed" if error is None else "failed",
    }


def _describe(call: dict[str, Any]) -> str:
    name = f"{call['server_label']}.{call['name']}"
    if call["error"] is not None:
        return f"{name} failed: {call['error']}"
    return f"{name} returned {call['output'][:PREVIEW_LIMIT]}"


def _run(server: dict[str, Any], operation: Any, *arguments: Any) -> Any:
    """Run one MCP operation against the server with its headers, from this thread."""
    try:
        return anyio.run(operation, server["server_url"], server.get("headers") or {}, *arguments)
    except Exception as error:  # the client raises exception groups for transport failures
        raise ApiError(
            424,
            f"Error retrieving tool list from MCP server: '{server['server_label']}'. "
            f"{type(error).__name__}",
            code="external_connector_error",
        ) from None


@asynccontextmanager
async def _session(url: str, headers: dict[str, str]) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def _list_tools(url: str, headers: dict[str, str]) -> list[ListedTool]:
    async with _session(url, headers) as client:
        listed = await client.list_tools()
    return [ListedTool(t.name, t.description or "", dict(t.input_schema)) for t in listed.tools]


async def _call_tool(
    url: str, headers: dict[str, str], name: str, arguments: dict[str, Any]
) -> tuple[str | None, str | None]:
    async with _session(url, headers) as client:
        result = await client.call_tool(name, arguments)
    text = "\n".join(getattr(part, "text", "") for part in result.content)
    return (None, text) if result.is_error else (text, None)
