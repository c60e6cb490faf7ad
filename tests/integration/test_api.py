"""The HTTP API through its Lambda (invoked via moto), with the real state machine behind it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.openai_server import Step
from local.stack_session import LocalThreadline, local_threadline
from tests.integration.lambda_api import Client
from threadline.ids import new_id


@pytest.fixture(scope="module")
def product() -> Iterator[LocalThreadline]:
    with local_threadline() as session:
        yield session


@pytest.fixture
def mallory(product: LocalThreadline) -> Client:
    return Client(product, new_id("mallory"))


def test_health_needs_no_token(product: LocalThreadline) -> None:
    status, body, _ = Client(product, None).call("GET", "/health")
    assert (status, body) == (200, {"status": "ok"})


def test_thread_is_created_then_reused(alice: Client) -> None:
    status, first, _ = alice.call("POST", "/threads", {"purpose": "sales"})
    assert status == 201
    status, again, _ = alice.call("POST", "/threads", {"purpose": "sales"})
    assert status == 200
    assert again["id"] == first["id"]
    status, fetched, _ = alice.call("GET", f"/threads/{first['id']}")
    assert status == 200
    assert fetched["purpose"] == "sales"


def test_run_round_trip_with_messages(alice: Client) -> None:
    thread_id = alice.thread()
    run = alice.finished_run(thread_id, "What is revenue by region?")
    assert run["status"] == "completed"
    assert run["tool_calls"][0]["name"] == "query_database"
    assert run["usage"]["total_tokens"] > 0
    status, page, _ = alice.call("GET", f"/threads/{thread_id}/messages")
    assert status == 200
    assert [m["role"] for m in page["messages"]][:2] == ["assistant", "user"]
    assert page["messages"][1]["text"] == "What is revenue by region?"


def test_runs_are_refused_while_one_is_active(alice: Client) -> None:
    thread_id = alice.thread()
    status, _, _ = alice.call("GET", f"/threads/{thread_id}")
    alice.script(thread_id, Step.hang())
    status, first, _ = alice.call("POST", f"/threads/{thread_id}/runs", {"message": "one"})
    assert status == 202
    status, second, _ = alice.call("POST", f"/threads/{thread_id}/runs", {"message": "two"})
    assert status == 409
    assert second["error"]["code"] == "run_active"
    assert second["error"]["details"] == {"active_run_id": first["id"]}
    status, _deleted, _ = alice.call("DELETE", f"/threads/{thread_id}")
    assert status == 409
    run_path = f"/threads/{thread_id}/runs/{first['id']}"
    for _ in range(6000):  # bounded: it returns once the condition holds
        if alice.call("GET", run_path)[1]["status"] == "in_progress":
            break
        time.sleep(0.01)
    status, cancelled, _ = alice.call("POST", f"/threads/{thread_id}/runs/{first['id']}/cancel")
    assert status == 202, cancelled
    alice.product.wait_for_run(first["id"])
    status, run, _ = alice.call("GET", f"/threads/{thread_id}/runs/{first['id']}")
    assert run["status"] == "cancelled"
    status, _, _ = alice.call("DELETE", f"/threads/{thread_id}")
    assert status == 204
    status, _, _ = alice.call("GET", f"/threads/{thread_id}")
    assert status == 404


def test_concurrent_posts_start_exactly_one_run(alice: Client) -> None:
    thread_id = alice.thread()
    alice.script(thread_id, Step.hang())
    results: list[int] = []
    barrier = threading.Barrier(4)

    def post() -> None:
        barrier.wait(timeout=10)
        results.append(alice.call("POST", f"/threads/{thread_id}/runs", {"message": "go"})[0])

    workers = [threading.Thread(target=post) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(results) == [202, 409, 409, 409]
    alice.product.stop_running_executions()


def test_idempotency_key_returns_the_same_run(alice: Client) -> None:
    thread_id = alice.thread()
    headers = {"idempotency-key": new_id("key")}
    body = {"message": "only once"}
    status, first, _ = alice.call("POST", f"/threads/{thread_id}/runs", body, headers=headers)
    assert status == 202
    status, again, _ = alice.call("POST", f"/threads/{thread_id}/runs", body, headers=headers)
    assert status == 202
    assert again["id"] == first["id"]
    status, reused, _ = alice.call(
        "POST", f"/threads/{thread_id}/runs", {"message": "something else"}, headers=headers
    )
    assert status == 422
    assert reused["error"]["code"] == "idempotency_key_reused"


def test_threads_are_paginated(alice: Client) -> None:
    made = [alice.thread(f"p{i}") for i in range(5)]
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page, _ = alice.call("GET", "/threads", query=query)
        assert status == 200
        seen += [thread["id"] for thread in page["threads"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(made))


@pytest.mark.parametrize(
    ("method", "path_template"),
    [
        ("GET", "/threads/{thread}"),
        ("DELETE", "/threads/{thread}"),
        ("GET", "/threads/{thread}/messages"),
        ("POST", "/threads/{thread}/runs"),
        ("GET", "/threads/{thread}/runs/{run}"),
        ("POST", "/threads/{thread}/runs/{run}/cancel"),
    ],
)
def test_other_users_ids_answer_404(
    alice: Client, mallory: Client, method: str, path_template: str
) -> None:
    thread_id = alice.thread()
    run = alice.finished_run(thread_id, "hello")
    path = path_template.format(thread=thread_id, run=run["id"])
    body = {"message": "mine now"} if method == "POST" and path.endswith("/runs") else None
    status, answer, _ = mallory.call(method, path, body)
    assert status == 404
    assert answer["error"]["code"] == "not_found"
    status, _, _ = alice.call("GET", f"/threads/{thread_id}")
    assert status == 200, "alice's thread must be untouched"


def test_missing_identity_is_401(product: LocalThreadline) -> None:
    status, body, _ = Client(product, None).call("GET", "/threads")
    assert status == 401
    assert body["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("body", "raw", "code"),
    [
        (None, "{not json", "invalid_json"),
        ({"message": ""}, None, "invalid_request"),
        ({"text": "hi"}, None, "invalid_request"),
        ({"message": "hi", "user_id": "someone-else"}, None, "invalid_request"),
        ({"message": "x" * 32_001}, None, "message_too_long"),
        ({"message": "hi", "assistant": "nobody"}, None, "unknown_assistant"),
    ],
    ids=["malformed", "empty", "missing", "extra-field", "too-long", "unknown-assistant"],
)
def test_bad_run_requests_are_400_with_a_named_problem(
    alice: Client, body: Any, raw: str | None, code: str
) -> None:
    thread_id = alice.thread()
    status, answer, _ = alice.call("POST", f"/threads/{thread_id}/runs", body, raw=raw)
    assert status == 400, answer
    assert answer["error"]["code"] == code
    assert answer["error"]["message"]
    assert "Traceback" not in json.dumps(answer)


@pytest.mark.parametrize(
    "query", ["cursor=garbage", "cursor=eyJhZnRlciI6ICJVU0VSI3gifQ", "limit=0", "limit=1000"]
)
def test_bad_pagination_is_400(alice: Client, query: str) -> None:
    status, answer, _ = alice.call("GET", "/threads", query=query)
    assert status == 400
    assert answer["error"]["code"] in ("invalid_cursor", "invalid_request")


def test_unknown_route_is_404(alice: Client) -> None:
    status, answer, _ = alice.call("GET", "/nope")
    assert status == 404
    assert answer["error"]["code"] == "not_found"


def test_openapi_document_matches_the_code(alice: Client) -> None:
    from local.openapi import DOCUMENT, generate

    assert DOCUMENT.read_text() == generate(), "docs/openapi.json is stale: run `make openapi`"
    status, served, _ = Client(alice.product, None).call("GET", "/openapi.json")
    assert status == 200
    assert served["openapi"].startswith("3.1")
    assert set(served["paths"]) >= {"/threads", "/threads/{thread_id}/runs", "/health"}


def test_usage_is_counted_per_user_and_the_budget_answers_429(alice: Client) -> None:
    thread_id = alice.thread()
    run = alice.finished_run(thread_id, "hello")
    status, usage, _ = alice.call("GET", "/usage")
    assert status == 200
    assert usage["today"]["runs"] == 1
    assert usage["today"]["total_tokens"] == run["usage"]["total_tokens"]
    assert usage["remaining_tokens"] == usage["daily_token_budget"] - run["usage"]["total_tokens"]
    # A retried FinishRun must not count the run twice.
    output = alice.product.wait_for_run(run["id"])
    alice.product.stack.invoke("FinishRunFunction", json.loads(output["output"]))
    assert alice.call("GET", "/usage")[1]["today"]["runs"] == 1

    ledger_key = {"PK": f"USER#{alice.user}", "SK": f"USAGE#{usage['today']['day']}"}
    alice.product.table.update_item(
        Key=ledger_key,
        UpdateExpression="SET total_tokens = :spent",
        ExpressionAttributeValues={":spent": usage["daily_token_budget"]},
    )
    status, refused, headers = alice.call("POST", f"/threads/{thread_id}/runs", {"message": "more"})
    assert status == 429
    assert refused["error"]["code"] == "daily_budget_exceeded"
    assert int(headers["Retry-After"]) > 0


def test_generated_files_are_copied_to_s3_with_download_urls(alice: Client) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    thread_id = alice.thread()
    alice.script(thread_id, Step.image("Here is your chart.", png, "chart.png"))
    run = alice.finished_run(thread_id, "Plot revenue by region")
    assert run["status"] == "completed"
    (link,) = run["files"]
    assert link["filename"].endswith(".png")
    assert link["bytes"] == len(png)
    assert f"outputs/{alice.user}/{thread_id}/{run['id']}/" in link["url"]
    key = link["url"].split(".amazonaws.com/", 1)[1].split("?", 1)[0]
    body = boto3.client("s3").get_object(Bucket=alice.product.environment["BUCKET_NAME"], Key=key)
    assert body["Body"].read() == png


def test_assistants_are_listed_with_their_tools_for_signed_in_users(alice: Client) -> None:
    status, body, _ = alice.call("GET", "/assistants")
    assert status == 200, body
    (analyst,) = [a for a in body["assistants"] if a["name"] == "data_analyst"]
    assert analyst["display_name"] == "Data Analyst"
    assert analyst["model"] == alice.product.environment["OPENAI_MODEL"]  # the default
    assert {(tool["name"], tool["kind"], tool["needs_approval"]) for tool in analyst["tools"]} == {
        ("query_database", "function", False),
        ("get_table_schema", "function", False),
        ("export_query_csv", "function", True),
        ("get_sales_target", "lambda", False),
        ("code_interpreter", "code_interpreter", False),
        ("file_search", "file_search", False),
    }
    status, body, _ = Client(alice.product, None).call("GET", "/assistants")
    assert status == 401, body
