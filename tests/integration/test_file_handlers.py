"""The IngestUpload and Cleanup handlers inside the local stack (moto from template.yaml, the
real run state machine, the local OpenAI server over HTTP), for both backends: uploads reach
IngestUpload through the stack's S3 notifications, cleanup through its schedule."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest

from local.aws import fire_schedule
from local.stack_session import LocalThreadline
from tests.integration.conftest import RunDriver
from threadline import runtime
from threadline.backends.openai_files import remote_filename
from threadline.errors import NotFoundError
from threadline.files import FileStatus
from threadline.models import RunStatus
from threadline.table import utc_now
from threadline.threads import ThreadStore


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


def ingest_results(product: LocalThreadline, key: str) -> list[dict[str, Any]]:
    """What IngestUpload answered for S3's deliveries of this key, in order."""
    product.stack.event_sources.wait_idle()
    return [
        result
        for delivery in product.stack.event_sources.deliveries()
        if delivery.source == "aws:s3" and delivery.error is None
        for result in delivery.result["results"]
        if result["key"] == key
    ]


def test_an_upload_reaches_a_run_once(
    product: LocalThreadline, driver: RunDriver, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    thread = driver.new_thread()
    content = b"Revenue grew 12% in the north region.\n"
    ticket = runtime.uploads().create_upload(
        driver.user_id, thread.thread_id, "q3 notes.txt", "text/plain", len(content)
    )
    capsys.readouterr()
    boto3.client("s3").put_object(
        Bucket=bucket, Key=ticket.key, Body=content, ContentType="text/plain"
    )
    (first,) = ingest_results(product, ticket.key)
    product.stack.deliver_s3_event(bucket, ticket.key)  # S3 delivers at least once

    # On Responses the file is in the thread's vector store, indexing until someone looks.
    assert first["status"] == ("indexing" if runtime.backend().name == "responses" else "ingested")
    assert product.openai is not None
    name = remote_filename("q3 notes.txt", ticket.upload_id)
    named = [f for f in product.openai.state.files.values() if f.body["filename"] == name]
    assert len(named) == 1
    ingested = [
        doc
        for doc in emitted_metrics(capsys.readouterr().out)
        if any(m["Name"] == "FilesIngested" for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"])
    ]
    assert len(ingested) == 1  # the redelivered event is not counted again
    assert ingested[0]["FilesIngested"] == [1.0]
    assert ingested[0]["backend"] == runtime.backend().name

    description, run = driver.run(thread, "Which files can you see?")

    assert description["status"] == "SUCCEEDED", description
    assert run.status is RunStatus.COMPLETED
    assert run.output_text == f"The attached files are: {name}."
    (listed,) = runtime.uploads().list_files(driver.user_id, thread.thread_id)
    assert listed.status is FileStatus.INGESTED


def test_a_forged_upload_is_deleted(
    product: LocalThreadline, driver: RunDriver, bucket: str
) -> None:
    thread = driver.new_thread()
    key = f"uploads/mallory/{thread.thread_id}/upl_forged/evil.csv"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b"a,b\n1,2\n")

    (result,) = ingest_results(product, key)

    assert result["status"] == "rejected"
    listing = boto3.client("s3").list_object_versions(Bucket=bucket, Prefix=key)
    assert listing.get("Versions", []) == []


def test_the_scheduled_cleanup_deletes_a_stale_thread(
    product: LocalThreadline, driver: RunDriver, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
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
    key = f"outputs/{driver.user_id}/{stale.thread_id}/run_1/notes.txt"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b"notes")
    counted = fire_schedule(product.stack, "CleanupFunction", detail_override={"dry_run": True})

    assert (counted["dry_run"], counted["threads_deleted"], counted["files_deleted"]) == (
        True,
        1,
        1,
    )
    assert runtime.thread_store().get(driver.user_id, stale.thread_id) == stale
    capsys.readouterr()

    report = fire_schedule(product.stack, "CleanupFunction")  # the scheduled event itself

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
