"""Nothing a user wrote or received reaches the traces or the logs.

A conversation with everything in it (an uploaded file, a message, a tool call, an answer)
goes through the local stack with X-Ray on, as in Lambda with `Tracing: Active`, its trace
documents kept in memory, and every log record and stdout line captured. None of the
content appears in them, while the traces and logs themselves exist; with the TraceContent
debug switch on, the same search does find content in the traces.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from local.aws.s3_browser import post_presigned
from local.openai_server import Step
from local.stack_session import LocalThreadline, local_threadline
from tests.integration.api_caller import ApiCaller
from threadline import runtime
from threadline.ids import new_id

MESSAGE = "Which quokka-ledger accounts grew this quarter?"
FILE_MARKER = "aardvark-ledger-entry"
UPLOADED = f"account,balance\n{FILE_MARKER},31\n".encode()
TOOL_ARGUMENT = "tool-argument-pangolin"
TOOL_QUERY = f"SELECT upper('{TOOL_ARGUMENT}') AS marker"
TOOL_OUTPUT = TOOL_ARGUMENT.upper()  # what the query returns, distinct from its text
ANSWER = "The numbat-verdict: two accounts grew."
GENERATED_MARKER = "generated-okapi-chart"
GENERATED = b"\x89PNG\r\n\x1a\n" + GENERATED_MARKER.encode()  # a file the model made


def forms_of(marker: bytes, whole: bytes) -> list[str]:
    """How a file's bytes may show in a document: as text, as JSON numbers (how X-Ray
    metadata serializes bytes) or base64 (of the whole file)."""
    return [marker.decode(), json.dumps(list(marker))[1:-1], base64.b64encode(whole).decode()]


CONTENT = [
    ("the message", MESSAGE),
    *(("the uploaded bytes", form) for form in forms_of(FILE_MARKER.encode(), UPLOADED)),
    ("the tool's arguments", TOOL_ARGUMENT),
    ("the tool's output", TOOL_OUTPUT),
    ("the answer", ANSWER),
    *(("the generated file", form) for form in forms_of(GENERATED_MARKER.encode(), GENERATED)),
]


class TraceDocuments:
    """An X-Ray emitter that keeps the documents it is sent (the SDK's sends them to the
    daemon over UDP), serialized as they would be sent."""

    def __init__(self) -> None:
        self._documents: list[str] = []
        self._lock = threading.Lock()

    def send_entity(self, entity: Any) -> None:
        document = entity.serialize()
        with self._lock:
            self._documents.append(document)

    @property
    def documents(self) -> list[str]:
        with self._lock:
            return list(self._documents)

    def names(self) -> set[str]:
        """The names of every segment and subsegment in the documents."""
        found: set[str] = set()

        def collect(entity: dict[str, Any]) -> None:
            found.add(entity["name"])
            for child in entity.get("subsegments", []):
                collect(child)

        for document in self.documents:
            collect(json.loads(document))
        return found


@pytest.fixture
def stdout_of_this_test(capsys: pytest.CaptureFixture[str]) -> pytest.CaptureFixture[str]:
    # The handlers' Powertools logger writes to the sys.stdout of when it was made: make it
    # before capsys swaps sys.stdout, or later tests would log to a stream closed after this.
    # Its lines are checked through caplog; capsys gets what else is printed (EMF metrics).
    with capsys.disabled():
        Logger()
    return capsys


def converse(product: LocalThreadline) -> None:
    """Upload a file, then ask a question answered with a tool call and a generated file;
    check that the content did flow through the product (so its absence from traces and logs
    means something)."""
    api = product.http_api()
    user = new_id("user")
    alice = ApiCaller(api.start(), user)
    try:
        status, thread = alice.call("POST", "/threads", {"purpose": "private-ledger"})
        assert status == 201, thread
        files = f"/threads/{thread['id']}/files"
        ticket = {"filename": "ledger.csv", "content_type": "text/csv", "size": len(UPLOADED)}
        status, upload = alice.call("POST", files, ticket)
        assert status == 201, upload
        posted = post_presigned(upload["url"], upload["fields"], "ledger.csv", UPLOADED)
        assert posted in (200, 201, 204)
        product.stack.event_sources.wait_idle(30)
        status, listing = alice.call("GET", files)
        assert [file["status"] for file in listing["files"]] == ["ingested"], listing

        assert product.openai is not None
        remote_id = runtime.current().thread_store().get(user, thread["id"]).remote_id
        product.openai.script.extend(
            [
                Step.call("query_database", {"query": TOOL_QUERY}),
                Step.image(ANSWER, GENERATED, "chart.png"),
            ],
            key=remote_id,
        )
        status, accepted = alice.call("POST", f"/threads/{thread['id']}/runs", {"message": MESSAGE})
        assert status == 202, accepted
        product.wait_for_run(accepted["id"])
        status, run = alice.call("GET", accepted["status_url"])
    finally:
        api.stop()

    assert run["status"] == "completed", run
    assert run["output_text"].startswith(ANSWER)
    assert [(call["name"], call["is_error"]) for call in run["tool_calls"]] == [
        ("query_database", False)
    ]
    assert [link["bytes"] for link in run["files"]] == [len(GENERATED)]
    state = product.openai.state
    sent = json.dumps([record.input_items for record in state.responses.values()])
    assert MESSAGE in sent
    assert TOOL_OUTPUT in sent
    assert any(file.data == UPLOADED for file in state.files.values())


def as_printed(record: logging.LogRecord) -> str:
    """The record as Powertools prints it: message, extra keys, exception and stack trace."""
    return LambdaPowertoolsFormatter().format(record)


def test_no_conversation_content_reaches_traces_or_logs(
    caplog: pytest.LogCaptureFixture, stdout_of_this_test: pytest.CaptureFixture[str]
) -> None:
    traces = TraceDocuments()
    with local_threadline(trace_to=traces) as product:
        converse(product)

    names = traces.names()
    # Traced: each function's invocations, their handlers, and the backend's port calls,
    # which hand over and return the conversation.
    functions = {name for name in names if name.startswith("threadline-local-")}
    assert {name.split("-")[2] for name in functions} >= {
        "ApiFunction",
        "IngestUploadFunction",
        "StartRunFunction",
        "CheckRunFunction",
        "ProcessToolCallsFunction",
        "FinishRunFunction",
    }
    assert "## handler" in names
    assert any(name.endswith("Backend.get_run") for name in names), names
    assert any(name.endswith("Backend.submit_tool_outputs") for name in names), names

    printed = stdout_of_this_test.readouterr()
    logs = [as_printed(record) for record in caplog.records]
    assert "run finished" in {record.getMessage() for record in caplog.records}
    logs.extend(printed.out.splitlines() + printed.err.splitlines())
    for what, text in CONTENT:
        assert [document for document in traces.documents if text in document] == [], (
            f"{what} is in the traces"
        )
        assert [line for line in logs if text in line] == [], f"{what} is in the logs"


def test_the_trace_content_switch_records_content() -> None:
    traces = TraceDocuments()
    with local_threadline(parameters={"TraceContent": "true"}, trace_to=traces) as product:
        converse(product)

    recorded = {what for what, text in CONTENT if any(text in d for d in traces.documents)}
    assert {"the answer", "the generated file"} <= recorded


def test_no_conversation_content_reaches_the_execution_history() -> None:
    """A Standard execution keeps its input and every state for 90 days: they carry ids,
    statuses and counts; the message, the tool's arguments and output, and the answer stay
    on the run's record and at OpenAI."""
    with local_threadline(parameters={"ExpressTierSeconds": "0"}) as product:
        converse(product)
        machine = product.state_machine_arn
        (execution,) = product.sfn.list_executions(stateMachineArn=machine)["executions"]
        arn = execution["executionArn"]
        history = product.sfn.get_execution_history(executionArn=arn, maxResults=1000)
        described = product.sfn.describe_execution(executionArn=arn)
    kept = json.dumps([described, history["events"]], default=str)
    assert "FinishRun" in kept
    for what, text in CONTENT:
        assert text not in kept, f"{what} is in the execution's history"
