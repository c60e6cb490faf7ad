"""A small in-memory OpenAI-compatible server (Responses, Conversations, Files, Vector stores,
Containers, Assistants v2) driven by a deterministic scripted model, for tests and the demo.

    server = OpenAIServer()
    server.script.push(Step.call("query_database", {"query": "SELECT 1"}))
    client = sdk_client(server)  # the real `openai` SDK, wired in-process
    server.faults.add(Fault.lost_reply(), method="POST", path="/v1/responses")  # done, unanswered
"""

from local.openai_server.engine import DEFAULT_PLAYBOOK, Rule, Script, Step
from local.openai_server.faults import Fault, Faults
from local.openai_server.server import OpenAIServer, sdk_client

__all__ = [
    "DEFAULT_PLAYBOOK",
    "Fault",
    "Faults",
    "OpenAIServer",
    "Rule",
    "Script",
    "Step",
    "sdk_client",
]
