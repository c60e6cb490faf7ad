from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from local.aws import LocalStack
from local.aws.fire import main, schedule_admin_response
from tests.local_aws.conftest import FIXTURES, installed_stack


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with installed_stack(FIXTURES / "event_sources.yaml", "events", monkeypatch) as provisioned:
        yield provisioned


def admin_app(stack: LocalStack) -> Any:
    """An HTTP API that answers the admin route and 418 for anything else."""

    @Request.application
    def app(request: Request) -> Response:
        return schedule_admin_response(stack, request) or Response("not admin", 418)

    return app


@pytest.fixture
def client(stack: LocalStack) -> Client:
    return Client(admin_app(stack))


def test_post_fires_the_schedule_and_answers_the_functions_result(
    stack: LocalStack, client: Client
) -> None:
    response = client.post("/_local/schedules/SweepFunction?event=EveryMinute")

    assert response.status_code == 200
    assert response.json == {
        "function": "SweepFunction",
        "result": {
            "function": stack.functions["SweepFunction"].name,
            "event": {"job": "sweep", "older_than_days": 7},
        },
    }


def test_the_body_replaces_the_input(client: Client) -> None:
    response = client.post(
        "/_local/schedules/SweepFunction?event=EveryMinute", json={"older_than_days": 0}
    )

    assert response.json["result"]["event"] == {"older_than_days": 0}


ADMIN = "/_local/schedules"


@pytest.mark.parametrize(
    ("request_line", "body", "expected"),
    [
        (f"POST {ADMIN}/Nope", b"", (404, "ScheduleNotFound")),
        (f"POST {ADMIN}/SweepFunction", b"", (400, "AmbiguousSchedule")),
        (f"POST {ADMIN}/ReportFunction?event=Weekly", b"{", (400, "InvalidJson")),
        (f"POST {ADMIN}/ReportFunction?event=Weekly", b'"poison"', (502, "FunctionError")),
        (f"GET {ADMIN}/ReportFunction", b"", (405, "MethodNotAllowed")),
    ],
)
def test_errors_answer_the_apis_error_shape(
    client: Client, request_line: str, body: bytes, expected: tuple[int, str]
) -> None:
    method, path = request_line.split()

    response = client.open(path, method=method, data=body)

    assert (response.status_code, response.json["error"]["code"]) == expected
    assert set(response.json["error"]) == {"code", "message", "details"}


def test_a_function_error_carries_the_runtimes_payload(client: Client) -> None:
    response = client.post("/_local/schedules/ReportFunction?event=Weekly", data=b'"poison"')

    assert response.json["error"]["details"]["errorType"] == "ValueError"
    assert response.json["error"]["details"]["errorMessage"] == "poisoned event"


def test_other_paths_are_left_to_the_api(client: Client) -> None:
    assert client.post("/threads").status_code == 418


@pytest.fixture
def served(stack: LocalStack) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, admin_app(stack), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_command_line_fires_a_schedule_on_a_running_stack(
    served: str, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["SweepFunction", "--event", "EveryMinute", "--input", '{"job": "now"}']

    assert main([*arguments, "--url", served]) == 0
    assert json.loads(capsys.readouterr().out)["result"]["event"] == {"job": "now"}


def test_the_command_line_reports_errors(served: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["SweepFunction", "--url", served]) == 1
    assert "400" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        main(["SweepFunction", "--input", "{", "--url", served])
    assert "--input is not JSON" in capsys.readouterr().err


def test_the_command_line_says_when_nothing_is_serving(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Port 9 (discard) on loopback: nothing listens there.
    assert main(["SweepFunction", "--url", "http://127.0.0.1:9"]) == 1
    assert "is it running?" in capsys.readouterr().err
