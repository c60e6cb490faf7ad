"""The README's "Add your own assistant and tool", followed on the local stack: its files written
into a copy of the assistants folder, its request sent. Then one assistant with a Python tool,
a Lambda tool and a remote MCP server, none of them known to the product code, each kind of
tool approved or denied through the API."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.mcp_server import LocalMcpServer
from local.stack_session import REPO, LocalThreadline, local_threadline
from tests.integration.lambda_api import Client

SECTION = re.search(
    r"^## Add your own assistant and tool\n(.*?)^## ",
    (REPO / "README.md").read_text(),
    re.MULTILINE | re.DOTALL,
)
assert SECTION is not None, "the README has lost its walk-through"
WALKTHROUGH = SECTION.group(1)
# Each file the walk-through writes: "`assistants/<file>`:" and a fenced block.
FILES = dict(re.findall(r"`assistants/([\w.]+)`:\s*\n\n```\w+\n(.*?)```", WALKTHROUGH, re.DOTALL))
REQUEST = json.loads(re.findall(r"-d '(\{.*?\})'", WALKTHROUGH)[0])
APPROVAL_TIMEOUT_SECONDS = 4
MCP_TOKEN = secrets.token_urlsafe(16)

REVIEWER_TOOLS = """
from pydantic import BaseModel, Field

from threadline.tools import tool


class ShoutArgs(BaseModel):
    text: str = Field(description="What to say louder.")


@tool(requires_approval=True)
def shout(args: ShoutArgs) -> str:
    \"\"\"Say a text louder, in capitals.\"\"\"
    return args.text.upper()
"""


def reviewer(mcp_url: str) -> dict[str, Any]:
    return {
        "name": "reviewer",
        "display_name": "Reviewer",
        "instructions": "You review plans against targets, rates and holidays.",
        "tools": ["shout"],
        "lambda_tools": [
            {
                "name": "get_sales_target",
                "description": "The revenue target of a region in one quarter.",
                "function": "SalesTargets",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "region": {"type": "string", "enum": ["North", "South"]},
                        "year": {"type": "integer", "minimum": 2026, "maximum": 2030},
                        "quarter": {"type": "integer", "minimum": 1, "maximum": 4},
                    },
                    "required": ["region", "year", "quarter"],
                    "additionalProperties": False,
                },
                "timeout_seconds": 10,
                "requires_approval": True,
            }
        ],
        "mcp_servers": [
            {
                "server_label": "finance",
                "server_url": mcp_url,
                "require_approval": {"never": {"tool_names": ["company_holidays"]}},
                "headers_secret": "finance",
            }
        ],
    }


def intruder(mcp_url: str) -> dict[str, Any]:
    """Names the same MCP server without the headers it wants."""
    return {
        "name": "intruder",
        "display_name": "Intruder",
        "instructions": "You try the finance server.",
        "mcp_servers": [
            {"server_label": "finance", "server_url": mcp_url, "require_approval": "never"}
        ],
    }


@pytest.fixture(scope="module")
def mcp() -> Iterator[LocalMcpServer]:
    with LocalMcpServer(token=MCP_TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def product(
    tmp_path_factory: pytest.TempPathFactory, mcp: LocalMcpServer
) -> Iterator[LocalThreadline]:
    """The local stack over a copy of the assistants folder with the walk-through's files (a
    package name of its own: modules are imported by it)."""
    folder = tmp_path_factory.mktemp("project") / "walkthrough_assistants"
    shutil.copytree(REPO / "assistants", folder)
    for name, text in FILES.items():
        (folder / name).write_text(text)
    (folder / "reviewer_tools.py").write_text(REVIEWER_TOOLS)
    (folder / "reviewer.json").write_text(json.dumps(reviewer(mcp.url)))
    (folder / "intruder.json").write_text(json.dumps(intruder(mcp.url)))
    saved = os.environ.get("ASSISTANTS_DIR")
    os.environ["ASSISTANTS_DIR"] = str(folder)
    parameters = {
        "Backend": "responses",
        "ApprovalTimeoutSeconds": str(APPROVAL_TIMEOUT_SECONDS),
    }
    try:
        with local_threadline(parameters=parameters) as session:
            boto3.client("secretsmanager").create_secret(
                Name=session.environment["MCP_SECRETS_PREFIX"] + "finance",
                SecretString=json.dumps({"Authorization": f"Bearer {MCP_TOKEN}"}),
            )
            yield session
    finally:
        os.environ.pop("ASSISTANTS_DIR")
        if saved is not None:
            os.environ["ASSISTANTS_DIR"] = saved


@pytest.fixture
def user(product: LocalThreadline) -> Client:
    return Client(product, f"walker-{time.monotonic_ns()}")


def ask(user: Client, body: dict[str, Any]) -> tuple[str, str]:
    """A run on a new thread; its thread and run ids."""
    thread_id = user.thread()
    return thread_id, user.started(thread_id, body)


def decide(user: Client, thread_id: str, run_id: str, call_id: str, approve: bool) -> int:
    decision = {"call_id": call_id, "approve": approve, "reason": "checked by hand"}
    return user.decide(thread_id, run_id, decision)[0]


def test_the_readme_walkthrough_adds_an_assistant_whose_tool_runs(
    product: LocalThreadline, user: Client
) -> None:
    assert set(FILES) == {"word_tools.py", "writer.json"}
    status, listed, _ = user.call("GET", "/assistants")
    assert status == 200
    (writer,) = [a for a in listed["assistants"] if a["name"] == "writer"]
    assert writer["tools"] == [{"name": "count_words", "kind": "function", "needs_approval": False}]

    thread_id, run_id = ask(user, REQUEST)

    run = user.finished(thread_id, run_id)
    assert run["status"] == "completed", run
    [call] = run["tool_calls"]
    assert (call["name"], call["is_error"]) == ("count_words", False)
    assert '"words":4' in run["output_text"].replace(" ", "")


def test_the_assistant_lists_each_kind_of_tool(user: Client) -> None:
    _, listed, _ = user.call("GET", "/assistants")
    (found,) = [a for a in listed["assistants"] if a["name"] == "reviewer"]

    assert [(t["name"], t["kind"], t["needs_approval"]) for t in found["tools"]] == [
        ("shout", "function", True),
        ("get_sales_target", "lambda", True),
        ("finance", "mcp", True),  # some of its tools' calls
    ]


@pytest.mark.parametrize("approve", [True, False])
def test_a_lambda_tool_waits_for_approval(
    product: LocalThreadline, user: Client, approve: bool
) -> None:
    thread_id, run_id = ask(
        user, {"assistant": "reviewer", "message": "get_sales_target for the North, 2027 Q4"}
    )
    [pending] = user.waiting_for_approval(thread_id, run_id)
    assert pending["tool"] == "get_sales_target"

    assert decide(user, thread_id, run_id, pending["call_id"], approve) == 200

    run = user.finished(thread_id, run_id)
    [call] = run["tool_calls"]
    assert call["approval"] == ("approved" if approve else "denied")
    if approve:
        assert '"target"' in run["output_text"]
    else:
        assert "a person denied this call: checked by hand" in run["output_text"]


def test_an_mcp_tool_the_policy_lets_through_is_called_with_the_secret_headers(
    product: LocalThreadline, user: Client, mcp: LocalMcpServer
) -> None:
    refused_before = mcp.refused
    thread_id, run_id = ask(
        user, {"assistant": "reviewer", "message": "Which company holidays are there in 2027?"}
    )

    run = user.finished(thread_id, run_id)

    assert run["status"] == "completed", run
    assert "finance.company_holidays returned" in run["output_text"]
    assert "2027-12-25" in run["output_text"]
    assert mcp.refused == refused_before


@pytest.mark.parametrize("decision", ["approve", "deny", "time out"])
def test_an_mcp_call_waits_for_approval(
    product: LocalThreadline, user: Client, decision: str
) -> None:
    thread_id, run_id = ask(
        user,
        {"assistant": "reviewer", "message": "What is the exchange rate from 'EUR' to 'USD'?"},
    )
    [pending] = user.waiting_for_approval(thread_id, run_id)
    assert pending["tool"] == "finance.exchange_rate"

    if decision != "time out":
        assert decide(user, thread_id, run_id, pending["call_id"], decision == "approve") == 200

    run = user.finished(thread_id, run_id)
    assert run["status"] == "completed", run
    [call] = run["tool_calls"]
    expected = {"approve": "approved", "deny": "denied", "time out": "timed_out"}[decision]
    assert call["approval"] == expected
    if decision == "approve":
        assert "finance.exchange_rate returned" in run["output_text"]
        assert '"rate"' in run["output_text"]
    else:
        assert "finance.exchange_rate was not approved" in run["output_text"]


def test_an_mcp_server_refusing_the_request_fails_the_run_with_a_reason(
    product: LocalThreadline, user: Client, mcp: LocalMcpServer
) -> None:
    refused_before = mcp.refused
    thread_id, run_id = ask(
        user, {"assistant": "intruder", "message": "Which company holidays are there in 2026?"}
    )

    run = user.finished(thread_id, run_id)

    assert run["status"] == "failed", run
    assert "MCP server" in run["reason"]
    assert mcp.refused > refused_before
