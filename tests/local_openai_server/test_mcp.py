"""The local server's remote MCP tools, as the Responses API's hosted `mcp` tool behaves: a
question naming a server's tool lists its tools once per chain and calls it, or asks for
approval first when the tool's policy says so; an approval answers with the call or a refusal;
a server that refuses the request fails the create with 424. The tools run on a real local
MCP server over Streamable HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.responses import Response

from local.mcp_server import LocalMcpServer
from tests.local_openai_server.conftest import strict

TOKEN = "local-mcp-token"


@pytest.fixture(scope="module")
def mcp() -> Iterator[LocalMcpServer]:
    with LocalMcpServer(token=TOKEN) as server:
        yield server


def finance(mcp: LocalMcpServer, **fields: Any) -> dict[str, Any]:
    return {
        "type": "mcp",
        "server_label": "finance",
        "server_url": mcp.url,
        "headers": {"Authorization": f"Bearer {TOKEN}"},
        **fields,
    }


def create(client: openai.OpenAI, tool: dict[str, Any], question: Any, **extra: Any) -> Response:
    response = client.responses.create(model="gpt-test", input=question, tools=[tool], **extra)
    return strict(Response, response)


def test_a_tool_the_policy_lets_through_is_listed_once_and_called(
    client: openai.OpenAI, mcp: LocalMcpServer
) -> None:
    tool = finance(mcp, require_approval="never")

    first = create(client, tool, "Which company holidays are there in 2027?")
    second = create(
        client, tool, "And the company holidays in 2028?", previous_response_id=first.id
    )

    assert [item.type for item in first.output] == ["mcp_list_tools", "mcp_call", "message"]
    listing, call, _ = first.output
    assert {t.name for t in listing.tools} == {"exchange_rate", "company_holidays"}  # type: ignore[union-attr]
    assert (call.name, call.arguments, call.error) == ("company_holidays", '{"year": 2027}', None)  # type: ignore[union-attr]
    assert "2027-12-25" in (call.output or "")  # type: ignore[union-attr]
    assert "finance.company_holidays returned" in first.output_text
    assert [item.type for item in second.output] == ["mcp_call", "message"]  # listed before


def test_a_call_waits_for_approval_and_runs_once_approved(
    client: openai.OpenAI, mcp: LocalMcpServer
) -> None:
    tool = finance(mcp, require_approval={"never": {"tool_names": ["company_holidays"]}})
    asked = create(client, tool, "What is the exchange rate from 'EUR' to 'USD'?")

    assert asked.status == "completed"
    assert [item.type for item in asked.output] == ["mcp_list_tools", "mcp_approval_request"]
    request = asked.output[1]
    approved = create(
        client,
        tool,
        [{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}],
        previous_response_id=asked.id,
    )
    denied = create(
        client,
        tool,
        [{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": False}],
        previous_response_id=asked.id,
    )

    [call, _message] = approved.output
    assert call.type == "mcp_call"
    assert call.approval_request_id == request.id  # type: ignore[union-attr]
    assert '"rate"' in (call.output or "")  # type: ignore[union-attr]
    assert [item.type for item in denied.output] == ["message"]
    assert "finance.exchange_rate was not approved" in denied.output_text


def test_an_answer_to_no_request_is_refused(client: openai.OpenAI, mcp: LocalMcpServer) -> None:
    with pytest.raises(openai.BadRequestError, match="No MCP approval request"):
        create(
            client,
            finance(mcp),
            [{"type": "mcp_approval_response", "approval_request_id": "mcpr_x", "approve": True}],
        )


def test_a_server_refusing_the_request_fails_the_create(
    client: openai.OpenAI, mcp: LocalMcpServer
) -> None:
    refused = mcp.refused

    with pytest.raises(openai.APIStatusError) as error:
        create(client, finance(mcp, headers={}), "Which company holidays are there in 2026?")

    assert error.value.status_code == 424
    assert mcp.refused > refused


def test_a_question_for_no_mcp_tool_is_the_model_s(
    client: openai.OpenAI, mcp: LocalMcpServer
) -> None:
    response = create(client, finance(mcp), "Hello there")

    assert [item.type for item in response.output] == ["message"]
