"""The IngestUpload and Cleanup handlers inside the local stack (moto from template.yaml, the
real run state machine, the local OpenAI server over HTTP), for both backends.

The template does not declare these functions yet, so their modules are loaded here the way
the in-process Lambda runtime loads a handler, and given a Lambda context like its own; the
S3 event has the shape the local stack's S3 notifications have.
"""

from __future__ import annotations

import importlib.util
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.aws.lambda_runtime import LambdaContext
from local.aws.s3_events import object_created_event
from local.stack_session import LocalThreadline
from tests.integration.conftest import RunDriver
from threadline import runtime
from threadline.errors import NotFoundError
from threadline.models import RunStatus
from threadline.table import utc_now
from threadline.threads import ThreadStore

REPO = Path(__file__).resolve().parents[2]
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def load_handler(function_dir: str) -> Handler:
    source = REPO / "functions" / function_dir / "app.py"
    spec = importlib.util.spec_from_file_location(
        f"_test_{function_dir}_{uuid.uuid4().hex}", source
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def lambda_context(name: str, seconds: int = 60) -> LambdaContext:
    return LambdaContext(
        function_name=name,
        function_version="$LATEST",
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        memory_limit_in_mb=512,
        aws_request_id=str(uuid.uuid4()),
        log_group_name=f"/aws/lambda/{name}",
        log_stream_name="2026/11/24/[$LATEST]0",
        deadline=time.monotonic() + seconds,
    )


def emitted_metrics(output: str) -> list[dict[str, Any]]:
    """The EMF documents Powertools printed, each metric's values as one list."""
    documents = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = document[metric["Name"]]
                document[metric["Name"]] = value if isinstance(value, list) else [value]
            documents.append(document)
    return documents


@pytest.fixture
def bucket(product: LocalThreadline) -> str:
    return product.environment["BUCKET_NAME"]


def upload_object(
    product: LocalThreadline, bucket: str, key: str, body: bytes, content_type: str
) -> dict[str, Any]:
    """Put the object and return S3's ObjectCreated event for it, built from the put itself:
    once the template subscribes IngestUpload, the stack's own delivery may already have
    deleted a forged object. That delivery runs first; ours is then S3 delivering twice."""
    put = boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    head = {**put, "ContentLength": len(body), "LastModified": datetime.now(UTC)}
    event = object_created_event(
        bucket=bucket, key=key, head=head, region="us-east-1", configuration_id="Upload"
    )
    product.stack.event_sources.wait_idle()
    return event


def test_an_upload_reaches_a_run_once(
    product: LocalThreadline, driver: RunDriver, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = load_handler("ingest_upload")
    thread = driver.new_thread()
    content = b"Revenue grew 12% in the north region.\n"
    ticket = runtime.uploads().create_upload(
        driver.user_id, thread.thread_id, "q3 notes.txt", "text/plain", len(content)
    )
    event = upload_object(product, bucket, ticket.key, content, "text/plain")
    assert "q3+notes.txt" in event["Records"][0]["s3"]["object"]["key"]  # as S3 encodes it
    capsys.readouterr()

    first = handler(event, lambda_context("IngestUpload"))
    again = handler(event, lambda_context("IngestUpload"))  # S3 delivers at least once

    (result,) = first["results"]
    assert result["status"] == "ingested"
    assert again == first
    assert product.openai is not None
    named = [f for f in product.openai.state.files.values() if f.body["filename"] == "q3 notes.txt"]
    assert len(named) == 1
    ingested = [
        doc
        for doc in emitted_metrics(capsys.readouterr().out)
        if any(m["Name"] == "FilesIngested" for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"])
    ]
    assert len(ingested) == 1  # the replayed event is not counted again
    assert ingested[0]["FilesIngested"] == [1.0]
    assert ingested[0]["backend"] == runtime.backend().name

    description, run = driver.run(thread, "Which files can you see?")

    assert description["status"] == "SUCCEEDED", description
    assert run.status is RunStatus.COMPLETED
    assert run.output_text == "The attached files are: q3 notes.txt."


def test_a_forged_upload_is_deleted(
    product: LocalThreadline, driver: RunDriver, bucket: str
) -> None:
    handler = load_handler("ingest_upload")
    thread = driver.new_thread()
    key = f"uploads/mallory/{thread.thread_id}/upl_forged/evil.csv"
    event = upload_object(product, bucket, key, b"a,b\n1,2\n", "text/csv")

    (result,) = handler(event, lambda_context("IngestUpload"))["results"]

    assert result["status"] == "rejected"
    listing = boto3.client("s3").list_object_versions(Bucket=bucket, Prefix=key)
    assert listing.get("Versions", []) == []


def test_the_scheduled_cleanup_deletes_a_stale_thread(
    product: LocalThreadline, driver: RunDriver, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = load_handler("cleanup")
    backend = runtime.backend()
    eight_days_ago = ThreadStore(
        product.table,
        retention=timedelta(days=7),
        now=lambda: utc_now() - timedelta(days=8),
    )
    stale, _ = eight_days_ago.get_or_create(
        driver.user_id,
        "old",
        max_age=timedelta(hours=1),
        backend=backend.name,
        create_remote=backend.create_thread,
        delete_remote=backend.delete_thread,
    )
    fresh = driver.new_thread()
    key = f"uploads/{driver.user_id}/{stale.thread_id}/upl_1/notes.txt"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b"notes")
    scheduled = json.loads((REPO / "events" / "cleanup.json").read_text())

    counted = handler({"dry_run": True}, lambda_context("Cleanup", 300))

    assert (counted["dry_run"], counted["threads_deleted"], counted["files_deleted"]) == (
        True,
        1,
        1,
    )
    assert runtime.thread_store().get(driver.user_id, stale.thread_id) == stale
    capsys.readouterr()

    report = handler(scheduled, lambda_context("Cleanup", 300))

    assert (report["dry_run"], report["threads_deleted"], report["failures"]) == (False, 1, [])
    assert (report["files_deleted"], report["bytes_deleted"]) == (1, 5)
    with pytest.raises(NotFoundError):
        runtime.thread_store().get(driver.user_id, stale.thread_id)
    runtime.thread_store().get(driver.user_id, fresh.thread_id)
    assert (
        boto3.client("s3").list_object_versions(Bucket=bucket, Prefix=key).get("Versions") is None
    )
    (document,) = emitted_metrics(capsys.readouterr().out)
    metrics = {name: document[name] for name in ("ThreadsDeleted", "FilesDeleted", "BytesDeleted")}
    assert metrics == {"ThreadsDeleted": [1.0], "FilesDeleted": [1.0], "BytesDeleted": [5.0]}
    assert document["CleanupFailures"] == [0.0]
