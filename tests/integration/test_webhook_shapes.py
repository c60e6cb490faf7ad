"""Signed OpenAI webhooks of shapes Threadline does not act on, through the local API Gateway
to the real webhook function: acknowledged (OpenAI retries anything else for 72 hours) and
logged without their content; badly signed ones are still refused."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.test import Client

from local.stack_session import LocalThreadline, local_threadline

MARKER = "payload-content-never-logged"


@pytest.fixture(scope="module")
def product() -> Iterator[LocalThreadline]:
    # webhooks=True: the local OpenAI server has a signing secret, as the deployed one would.
    with local_threadline(webhooks=True) as session:
        yield session


def post(product: LocalThreadline, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    answer = Client(product.http_api(), use_cookies=False).post(
        "/webhooks/openai", data=body, headers=headers
    )
    return answer.status_code, json.loads(answer.get_data())


def signed(
    product: LocalThreadline, payload: dict[str, Any], *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """Signed as the local OpenAI server signs its deliveries."""
    assert product.openai is not None
    envelope = {"id": "evt_1", "object": "event", "created_at": int(time.time()), **payload}
    return product.openai.sign_webhook(envelope, timestamp=timestamp)


def recorded_waits(product: LocalThreadline) -> list[dict[str, Any]]:
    return [
        item for item in product.table.scan()["Items"] if str(item["PK"]).startswith("RESPONSE#")
    ]


@pytest.mark.parametrize(
    "payload",
    [
        {"data": {"id": "resp_1", "note": MARKER}},
        {"type": "response.completed", "note": MARKER},
        {"type": "response.completed", "data": {"id": 42, "note": MARKER}},
        {"type": "response.completed", "data": MARKER},
        {"type": ["response.completed"], "data": {"id": MARKER}},
        {"type": "response.completed", "data": {"id": ""}},
    ],
    ids=[
        "no-type",
        "no-data",
        "id-not-a-string",
        "data-not-an-object",
        "type-not-a-string",
        "empty-id",
    ],
)
def test_a_signed_event_of_another_shape_is_acknowledged_and_logged_without_content(
    product: LocalThreadline, payload: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    body, headers = signed(product, payload)

    with caplog.at_level(logging.INFO):
        status, answer = post(product, body, headers)

    assert (status, answer) == (200, {"received": True, "outcome": "ignored"})
    assert recorded_waits(product) == [], "nothing was acted on"
    (record,) = [record for record in caplog.records if record.getMessage() == "webhook ignored"]
    assert record.webhook_id == headers["webhook-id"]  # type: ignore[attr-defined]
    kind = payload.get("type")
    assert record.type == (kind if isinstance(kind, str) else None)  # type: ignore[attr-defined]
    assert all(MARKER not in repr(vars(record)) for record in caplog.records)


def test_a_signed_event_of_a_type_threadline_does_not_act_on_is_acknowledged(
    product: LocalThreadline,
) -> None:
    body, headers = signed(product, {"type": "batch.completed", "data": {"id": "batch_1"}})

    assert post(product, body, headers) == (200, {"received": True, "outcome": "ignored"})
    assert recorded_waits(product) == []


def test_an_unsigned_or_badly_signed_event_of_any_shape_is_still_refused(
    product: LocalThreadline,
) -> None:
    body, headers = signed(product, {"data": {"id": "resp_1"}})
    message = "the webhook signature does not verify"
    refused = (400, {"error": {"code": "invalid_signature", "message": message, "details": None}})

    assert post(product, body.replace(b"resp_1", b"resp_2"), headers) == refused
    unsigned = {key: value for key, value in headers.items() if key != "webhook-signature"}
    assert post(product, body, unsigned) == refused
    stale = signed(product, {"type": "response.completed"}, timestamp=int(time.time()) - 3600)
    assert post(product, *stale) == refused


def test_a_body_that_is_not_utf8_is_refused_in_the_error_shape(product: LocalThreadline) -> None:
    body, headers = signed(product, {"type": "response.completed", "data": {"id": "resp_1"}})

    status, answer = post(product, b"\xff\xfe" + body, headers)

    assert (status, answer["error"]["code"]) == (400, "invalid_body")
    assert recorded_waits(product) == []
