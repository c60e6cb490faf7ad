"""The local HTTP API answers as API Gateway does at its limits: a body over 10 MB, an event
over the function's 6 MB, and a function still running at the integration timeout."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
from werkzeug.test import Client

from local.aws import LocalStack, install, service_limits
from local.aws.http_api import REQUEST_BYTES, LocalHttpApi

MEGABYTE = 1024 * 1024
RELEASE = threading.Event()  # the slow handler below returns once the test sets it
RETURNED = threading.Event()  # and says it did
SLOW_HANDLER = f"""
from {__name__} import RELEASE, RETURNED


def handler(event, context):
    RELEASE.wait(timeout=10)
    RETURNED.set()
    return {{"statusCode": 200, "body": "late"}}
"""


def _any_token(_token: str, _issuer: str, _audiences: tuple[str, ...]) -> dict[str, object]:
    return {"sub": "tester"}


@pytest.fixture
def api(stack: LocalStack) -> Client:
    return Client(LocalHttpApi(stack, check_token=_any_token))


def _post(api: Client, size: int) -> tuple[int, object]:
    answer = api.post(
        "/runs/r1/finish",
        data=b"x" * size,
        headers={"Authorization": "Bearer any", "Content-Type": "text/plain"},
    )
    return answer.status_code, answer.get_json()


def test_a_body_over_10_mb_is_refused_before_the_function(api: Client) -> None:
    assert _post(api, REQUEST_BYTES + 1) == (413, {"message": "Request Entity Too Large"})


def test_a_body_whose_event_is_over_6_mb_is_refused(api: Client) -> None:
    """Under API Gateway's 10 MB, the event it makes is over what Lambda takes."""
    with service_limits.enforced():
        assert _post(api, 7 * MEGABYTE) == (413, {"message": "Request Entity Too Large"})
    # A small one reaches the function (which fails: it expects a different event).
    assert _post(api, 10) == (500, {"message": "Internal Server Error"})


def test_a_function_past_the_integration_timeout_is_answered_503_and_runs_on(
    stack: LocalStack, tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text(SLOW_HANDLER)
    spec = dataclasses.replace(stack.functions["UploadFunction"], code_dir=tmp_path)
    RELEASE.clear()
    RETURNED.clear()
    with install({spec.name: spec}):
        api = Client(LocalHttpApi(stack, check_token=_any_token, integration_timeout_seconds=0.2))
        answer = api.get("/health")
        assert (answer.status_code, answer.get_json()) == (503, {"message": "Service Unavailable"})
        assert not RETURNED.is_set()
        RELEASE.set()
        assert RETURNED.wait(timeout=10), "the function ran on after the answer"
