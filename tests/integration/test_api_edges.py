"""Hostile input through the local API Gateway (issue #14): whatever a client sends, the answer
is never a 5xx, and every refusal is JSON in the documented error shape with a code that names
the problem. Also: OpenAI's rate limit reaches clients as 429 with its Retry-After, an
unexpected error is a 500 in the error shape, and a crashed function answers as API Gateway
does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from moto import mock_aws
from werkzeug.test import Client, TestResponse

from local.aws import install, provision
from local.openai_server.faults import Fault
from local.stack_session import LocalThreadline, local_threadline
from local.tokens import issue_token
from threadline.api_models import ErrorBody
from threadline.ids import new_id
from threadline.store.table import thread_sort_key, user_key

MEGABYTE = 1024 * 1024
DEEP = 100_000  # levels of nesting, far beyond what Python's JSON parser can go
UPLOAD = {"filename": "data.csv", "content_type": "text/csv", "size": 10}
MULTIPART = b'--edge\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nsales\r\n--edge--\r\n'
# A stack whose /health route is served by a function that expects S3 events: an HTTP event
# makes it crash.
CRASHING_STACK = Path(__file__).parents[1] / "local_aws" / "fixtures" / "template.yaml"


def refused(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """Assert the answer is `status` in the error shape with `code`; return the error."""
    assert response.status_code == status, response.get_data()[:500]
    assert response.mimetype == "application/json"
    error = ErrorBody.model_validate_json(response.get_data()).error
    assert error.code == code, error
    assert error.message
    return error.model_dump()


def answered_well(response: TestResponse) -> None:
    """Whatever the outcome, not a 5xx, JSON, and a refusal in the error shape with a code."""
    assert response.status_code < 500, response.get_data()[:500]
    assert response.mimetype == "application/json"
    if response.status_code >= 400:
        assert ErrorBody.model_validate_json(response.get_data()).error.code


class TestHostileInput:
    """One local Threadline for the class (its assistants backend calls OpenAI on POST
    /threads); the crash test below needs a stack of its own, never alongside it."""

    @pytest.fixture(scope="class")
    @classmethod
    def product(cls) -> Iterator[LocalThreadline]:
        with local_threadline(parameters={"Backend": "assistants"}) as session:
            yield session

    @pytest.fixture
    def api(self, product: LocalThreadline) -> Client:
        assert product.openai is not None
        product.openai.faults.clear()
        return Client(product.http_api())

    @pytest.fixture
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(new_id('edge'))}"}

    @pytest.fixture
    def thread_id(self, api: Client, auth: dict[str, str]) -> str:
        response = api.post("/threads", json={"purpose": "edges"}, headers=auth)
        assert response.status_code == 201, response.get_data()
        return str(response.get_json()["id"])

    @pytest.fixture(params=["threads", "runs", "files"])
    def body_route(self, request: pytest.FixtureRequest, thread_id: str) -> str:
        """Each route that reads a body."""
        return {
            "threads": "/threads",
            "runs": f"/threads/{thread_id}/runs",
            "files": f"/threads/{thread_id}/files",
        }[request.param]

    @pytest.fixture(params=["threads", "messages"])
    def listing(self, request: pytest.FixtureRequest, thread_id: str) -> str:
        """Each route that pages."""
        return {"threads": "/threads", "messages": f"/threads/{thread_id}/messages"}[request.param]

    def send(
        self, api: Client, path: str, body: bytes, content_type: str | None, auth: dict[str, str]
    ) -> TestResponse:
        headers = auth | ({"Content-Type": content_type} if content_type else {})
        return api.post(path, data=body, headers=headers)

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            (b'{"purpose": ', "invalid_json"),
            (b"{'purpose': 'single quotes'}", "invalid_json"),
            (b'{"a": NaN', "invalid_json"),
            (b"\x00\x01\x02", "invalid_json"),
            (b'{"purpose": "\xff\xfe"}', "invalid_json"),  # not UTF-8
            (b"\xef\xbb\xbf{}", "invalid_json"),  # a byte-order mark
            (b"[" * DEEP + b"]" * DEEP, "body_too_deep"),
            (b'{"a":' * DEEP + b"1" + b"}" * DEEP, "body_too_deep"),
            (b"[]", "invalid_request"),
            (b"[{}]", "invalid_request"),  # an array whose first item would be a valid body
            (b'[{"message": "hi"}, 1]', "invalid_request"),
            (b'"a string"', "invalid_request"),
            (b"12", "invalid_request"),
            (b"null", "invalid_request"),
            (b'{"unexpected": true}', "invalid_request"),
            (b'{"a":' * 500 + b"1" + b"}" * 500, "invalid_request"),  # deep, but parseable
        ],
    )
    def test_a_body_that_is_not_the_json_asked_for_is_refused(
        self, api: Client, auth: dict[str, str], body_route: str, body: bytes, code: str
    ) -> None:
        refused(self.send(api, body_route, body, "application/json", auth), 400, code)

    @pytest.mark.parametrize(
        ("content_type", "body"),
        [
            ("text/plain", b'{"purpose": "sales"}'),
            ("application/xml", b"<purpose>sales</purpose>"),
            ("application/x-www-form-urlencoded", b"purpose=sales"),
            ("application/x-www-form-urlencoded", b"message=hi&filename=a.csv&size=1"),
            ("multipart/form-data", b'{"purpose": "sales"}'),  # no boundary
            ("multipart/form-data; boundary=edge", MULTIPART),
            ("multipart/form-data; boundary=edge", b"not multipart at all"),
            ("application/octet-stream", b"\x00\xff" * 100),
            ("image/png", b"\x89PNG\r\n"),
            ("application/jsonx", b'{"purpose": "sales"}'),
        ],
    )
    def test_a_body_that_is_not_json_is_refused_with_415(
        self,
        api: Client,
        auth: dict[str, str],
        body_route: str,
        content_type: str,
        body: bytes,
    ) -> None:
        response = self.send(api, body_route, body, content_type, auth)
        refused(response, 415, "unsupported_media_type")

    def test_a_json_body_is_read_with_or_without_a_charset_or_a_content_type(
        self, api: Client, auth: dict[str, str]
    ) -> None:
        for content_type in ("application/json; charset=utf-8", None):
            response = self.send(api, "/threads", b'{"purpose": "typed"}', content_type, auth)
            assert response.status_code in (200, 201), response.get_data()

    @pytest.mark.parametrize("size", [MEGABYTE, 5 * MEGABYTE])
    def test_huge_bodies_are_refused(
        self, api: Client, auth: dict[str, str], thread_id: str, size: int
    ) -> None:
        text = "a" * size
        refused(api.post("/threads", json={"purpose": text}, headers=auth), 400, "invalid_request")
        runs = f"/threads/{thread_id}/runs"
        refused(api.post(runs, json={"message": text}, headers=auth), 400, "message_too_long")
        files = f"/threads/{thread_id}/files"
        upload = UPLOAD | {"filename": text + ".csv"}
        refused(api.post(files, json=upload, headers=auth), 400, "invalid_request")

    @pytest.mark.parametrize("size", [7 * MEGABYTE, 11 * MEGABYTE])
    def test_bodies_over_what_api_gateway_or_lambda_takes_are_refused_by_the_gateway(
        self, api: Client, auth: dict[str, str], thread_id: str, size: int
    ) -> None:
        """Over 10 MB API Gateway refuses the request; over about 6 MB the event it makes is
        over what Lambda takes. Either way the function never sees it, and the answer is
        API Gateway's 413, not the product's error shape."""
        answer = api.post(f"/threads/{thread_id}/runs", json={"message": "a" * size}, headers=auth)
        assert answer.status_code == 413
        assert answer.get_json() == {"message": "Request Entity Too Large"}

    @pytest.mark.parametrize(
        "text",
        [
            "\x00",
            "nul\x00inside",
            "\x07\x1b[31mred\x1b[0m\r\n",
            "\u202eevil\u202c",  # right-to-left override
            "\ufeff",
            "😀" * 50,
            "e\u0301" * 50,  # combining marks
            "\ud800",  # a lone surrogate, escaped in the JSON
            "\U0010ffff",
        ],
    )
    def test_unicode_nul_and_control_characters_are_answered_well(
        self, api: Client, auth: dict[str, str], thread_id: str, text: str
    ) -> None:
        answered_well(api.post("/threads", json={"purpose": text}, headers=auth))
        files = f"/threads/{thread_id}/files"
        answered_well(api.post(files, json=UPLOAD | {"filename": text}, headers=auth))
        answered_well(api.post(files, json=UPLOAD | {"content_type": text}, headers=auth))
        # The run is started last: the thread is busy once one is accepted.
        answered_well(api.post(f"/threads/{thread_id}/runs", json={"message": text}, headers=auth))

    @pytest.mark.parametrize(
        "odd_id",
        [
            "x" * 5000,
            "x" * 100_000,
            "thr_" + "0" * 1100,  # past DynamoDB's 1 KB sort key
            "%00",
            "%2e%2e",
            "%ff%fe",
            "%F0%9F%98%80",
            "%E2%80%AE",
            "thr_1%0Aheader",
            "%27%20OR%201%3D1",
            "%7B%7D",
            "%5Cu0000",
        ],
    )
    def test_long_and_odd_ids_in_paths_are_refused_or_not_found(
        self, api: Client, auth: dict[str, str], thread_id: str, odd_id: str
    ) -> None:
        requests = [
            ("GET", f"/threads/{odd_id}", None),
            ("DELETE", f"/threads/{odd_id}", None),
            ("POST", f"/threads/{odd_id}/runs", {"message": "hi"}),
            ("GET", f"/threads/{odd_id}/runs/{odd_id}", None),
            ("GET", f"/threads/{thread_id}/runs/{odd_id}", None),
            ("POST", f"/threads/{thread_id}/runs/{odd_id}/cancel", None),
            ("POST", f"/threads/{odd_id}/files", UPLOAD),
            ("GET", f"/threads/{odd_id}/files", None),
            ("GET", f"/threads/{odd_id}/messages", None),
        ]
        for method, path, body in requests:
            response = api.open(path, method=method, json=body, headers=auth)
            answered_well(response)
            assert response.status_code in (400, 404), (method, path[:80])

    @pytest.mark.parametrize(
        ("query", "code"),
        [
            ("limit=abc", "invalid_request"),
            ("limit=0", "invalid_request"),
            ("limit=-1", "invalid_request"),
            ("limit=100000000000000000000000", "invalid_request"),
            ("cursor=" + "A" * 513, "invalid_request"),
            ("cursor=not-ours", "invalid_cursor"),
            ("cursor=%00", "invalid_cursor"),
            ("cursor=eyJhZnRlciI6IFsxXX0", "invalid_cursor"),  # well-formed, holding a list
        ],
    )
    def test_bad_query_parameters_are_refused(
        self, api: Client, auth: dict[str, str], listing: str, query: str, code: str
    ) -> None:
        refused(api.get(f"{listing}?{query}", headers=auth), 400, code)

    @pytest.mark.parametrize(
        ("filename", "code"),
        [
            ("../../etc/passwd.csv", "invalid_filename"),
            ("..\\..\\windows\\system.csv", "invalid_filename"),
            ("/etc/passwd.csv", "invalid_filename"),
            ("uploads/other-user/data.csv", "invalid_filename"),
            ("data\x00.csv", "invalid_filename"),
            ("data.csv\r\nX-Injected: 1", "invalid_filename"),
            ("", "invalid_request"),
            ("data.exe", "file_type_not_allowed"),
        ],
    )
    def test_traversal_and_odd_upload_file_names_are_refused(
        self, api: Client, auth: dict[str, str], thread_id: str, filename: str, code: str
    ) -> None:
        upload = UPLOAD | {"filename": filename}
        refused(api.post(f"/threads/{thread_id}/files", json=upload, headers=auth), 400, code)

    @pytest.mark.parametrize(
        ("size", "code"),
        [
            (0, "invalid_request"),
            (-1, "invalid_request"),
            (1.5, "invalid_request"),
            ("ten", "invalid_request"),
            (None, "invalid_request"),
            (True, "invalid_request"),
            (10**30, "file_too_large"),
            (2**63, "file_too_large"),
        ],
    )
    def test_bad_upload_sizes_are_refused(
        self, api: Client, auth: dict[str, str], thread_id: str, size: object, code: str
    ) -> None:
        upload = UPLOAD | {"size": size}
        refused(api.post(f"/threads/{thread_id}/files", json=upload, headers=auth), 400, code)

    @pytest.mark.parametrize(
        "body",
        [
            {"purpose": 5},
            {"purpose": ["sales"]},
            {"purpose": {"$ne": None}},
            {"message": 1, "assistant": "data_analyst"},
            {"message": "hi", "assistant": "No such assistant!"},
            {"message": ""},
            {"filename": 1, "content_type": "text/csv", "size": 1},
        ],
    )
    def test_wrong_types_are_invalid_requests(
        self, api: Client, auth: dict[str, str], body_route: str, body: dict[str, Any]
    ) -> None:
        refused(api.post(body_route, json=body, headers=auth), 400, "invalid_request")

    def test_an_overlong_idempotency_key_is_refused(
        self, api: Client, auth: dict[str, str], thread_id: str
    ) -> None:
        headers = auth | {"Idempotency-Key": "k" * 129}
        response = api.post(f"/threads/{thread_id}/runs", json={"message": "hi"}, headers=headers)
        refused(response, 400, "invalid_request")

    def test_openai_rate_limit_answers_429_with_its_retry_after(
        self, api: Client, auth: dict[str, str], product: LocalThreadline
    ) -> None:
        assert product.openai is not None
        product.openai.faults.add(Fault.http_error(429, retry_after=7), "POST", "/v1/threads")
        response = api.post("/threads", json={"purpose": "limited"}, headers=auth)
        refused(response, 429, "rate_limited")
        assert response.headers["Retry-After"] == "7"
        # Once OpenAI lets it through, the same request succeeds.
        assert api.post("/threads", json={"purpose": "limited"}, headers=auth).status_code == 201

    @pytest.mark.parametrize(("status", "retry_after"), [(503, 2.5), (500, None)])
    def test_openai_failures_answer_503_with_a_retry_after(
        self,
        api: Client,
        auth: dict[str, str],
        product: LocalThreadline,
        status: int,
        retry_after: float | None,
    ) -> None:
        assert product.openai is not None
        product.openai.faults.add(Fault.http_error(status, retry_after), "POST", "/v1/threads")
        response = api.post("/threads", json={"purpose": "failing"}, headers=auth)
        refused(response, 503, "unavailable")
        assert int(response.headers["Retry-After"]) >= (3 if retry_after else 1)

    def test_an_unexpected_error_is_a_500_in_the_error_shape_logged_without_the_body(
        self, api: Client, product: LocalThreadline, caplog: pytest.LogCaptureFixture
    ) -> None:
        # A thread record that is not one (as a bad migration would leave it) fails to load.
        user = new_id("edge")
        thread_id = new_id("thr")
        product.table.put_item(Item={"PK": user_key(user), "SK": thread_sort_key(thread_id)})
        headers = {"Authorization": f"Bearer {issue_token(user)}"}
        secret = "do-not-log-" + new_id("body")
        response = api.post(f"/threads/{thread_id}/runs", json={"message": secret}, headers=headers)
        error = refused(response, 500, "internal_error")
        request_id = error["details"]["request_id"]
        assert request_id in error["message"]
        logged = [LambdaPowertoolsFormatter().format(record) for record in caplog.records]
        failure = [json.loads(line) for line in logged if request_id in line]
        assert [(record["message"], record["level"]) for record in failure] == [
            ("unexpected error", "ERROR")
        ]
        assert failure[0]["error_type"] == "ValidationError"
        assert any("threads/records.py" in frame for frame in failure[0]["traceback"])
        assert not [line for line in logged if secret in line]


@pytest.fixture
def crashing_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        stack = provision(CRASHING_STACK, stack_name="crashing")
        with install(stack.registry):
            product = LocalThreadline(stack=stack, openai=None, environment={})
            yield Client(product.http_api())


def test_a_crashed_function_answers_as_api_gateway_does(crashing_api: Client) -> None:
    response = crashing_api.get("/health")
    assert response.status_code == 500
    assert response.mimetype == "application/json"
    assert response.get_json() == {"message": "Internal Server Error"}
