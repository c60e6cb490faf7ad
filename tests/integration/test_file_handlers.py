"""The IngestUpload, FailUpload, SweepUploads and Cleanup handlers inside the local stack (moto
from template.yaml, the real run state machine, the local OpenAI server over HTTP), for both
backends: uploads reach IngestUpload through the stack's S3 notifications, its failures
FailUpload through the on-failure queue, the sweep and cleanup through their schedules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest

from local.aws import fire_schedule
from local.aws.apigw import http_api_event
from local.openai_server import Fault
from local.stack_session import LocalThreadline
from tests.integration.conftest import RunDriver
from threadline import runtime
from threadline.backends.openai_files import remote_filename
from threadline.clock import utc_now
from threadline.errors import NotFoundError
from threadline.files.records import AT_OPENAI, FileStatus
from threadline.files.uploads import Uploads
from threadline.models import RunStatus
from threadline.settings import Settings, load
from threadline.threads.creation import ThreadCreator
from threadline.threads.records import ThreadStore


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
    ticket = (
        runtime.current()
        .uploads()
        .create_upload(driver.user_id, thread.thread_id, "q3 notes.txt", "text/plain", len(content))
    )
    capsys.readouterr()
    boto3.client("s3").put_object(
        Bucket=bucket, Key=ticket.key, Body=content, ContentType="text/plain"
    )
    (first,) = ingest_results(product, ticket.key)
    product.stack.deliver_s3_event(bucket, ticket.key)  # S3 delivers at least once

    # On Responses the file is in the thread's vector store, indexing until someone looks.
    assert first["status"] == (
        "indexing" if runtime.current().backend().name == "responses" else "ingested"
    )
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
    assert ingested[0]["backend"] == runtime.current().backend().name

    description, run = driver.run(thread, "Which files can you see?")

    assert description["status"] == "SUCCEEDED", description
    assert run.status is RunStatus.COMPLETED
    assert run.output_text == f"The attached files are: {name}."
    (listed,) = runtime.current().uploads().list_files(driver.user_id, thread.thread_id)
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
    backend = runtime.current().backend()
    eight_days_ago = ThreadCreator(
        product.table,
        threads=ThreadStore(product.table),
        retention=timedelta(days=7),
        now=lambda: utc_now() - timedelta(days=8),
    )
    stale, _ = eight_days_ago.get_or_create(
        driver.user_id,
        "old",
        reuse_for=timedelta(hours=1),
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
    assert runtime.current().thread_store().get(driver.user_id, stale.thread_id) == stale
    capsys.readouterr()

    report = fire_schedule(product.stack, "CleanupFunction")  # the scheduled event itself

    assert (report["dry_run"], report["threads_deleted"], report["failures"]) == (False, 1, [])
    assert (report["files_deleted"], report["bytes_deleted"]) == (1, 5)
    with pytest.raises(NotFoundError):
        runtime.current().thread_store().get(driver.user_id, stale.thread_id)
    runtime.current().thread_store().get(driver.user_id, fresh.thread_id)
    assert (
        boto3.client("s3").list_object_versions(Bucket=bucket, Prefix=key).get("Versions") is None
    )
    (document,) = emitted_metrics(capsys.readouterr().out)
    metrics = {name: document[name] for name in ("ThreadsDeleted", "FilesDeleted", "BytesDeleted")}
    assert metrics == {"ThreadsDeleted": [1.0], "FilesDeleted": [1.0], "BytesDeleted": [5.0]}
    assert document["CleanupFailures"] == [0.0]


def test_deleting_a_thread_through_the_api_deletes_its_files_everywhere(
    product: LocalThreadline, driver: RunDriver, bucket: str
) -> None:
    thread = driver.new_thread()
    content = b"north 12%\n"
    ticket = (
        runtime.current()
        .uploads()
        .create_upload(driver.user_id, thread.thread_id, "notes.txt", "text/plain", len(content))
    )
    boto3.client("s3").put_object(Bucket=bucket, Key=ticket.key, Body=content)
    (ingested,) = ingest_results(product, ticket.key)
    assert product.openai is not None
    assert ingested["openai_file_id"] in product.openai.state.files

    event = http_api_event("DELETE", f"/threads/{thread.thread_id}", claims={"sub": driver.user_id})
    answer = product.stack.invoke("ApiFunction", event)

    assert answer["statusCode"] == 204, answer
    assert versions(bucket, ticket.key) == []
    assert ingested["openai_file_id"] not in product.openai.state.files
    with pytest.raises(NotFoundError):
        runtime.current().thread_store().get(driver.user_id, thread.thread_id)


# -- nothing stays pending -------------------------------------------------------------------

PAST = timedelta(minutes=20)  # pending longer than the sweep waits for (15 minutes)


@pytest.fixture
def retries_at_once(product: LocalThreadline) -> Iterator[None]:
    """Lambda's async retries without their wait, so a failing ingest settles quickly."""
    sources = product.stack.event_sources
    delays, sources.retry_delays = sources.retry_delays, (0.0, 0.0)
    yield
    sources.retry_delays = delays


def issued_at(moment: timedelta) -> Uploads:
    """The API's uploads, issuing URLs as if `moment` ago."""
    return Uploads(
        threads=runtime.current().thread_store(),
        files=runtime.current().file_store(),
        s3_client=runtime.current().s3_client(),
        bucket=load(Settings).bucket_name,
        policy=runtime.current().upload_policy(),
        now=lambda: utc_now() - moment,
    )


def api_files(product: LocalThreadline, user_id: str, thread_id: str) -> list[dict[str, Any]]:
    """GET /threads/{id}/files through the API function, as the user."""
    event = http_api_event("GET", f"/threads/{thread_id}/files", claims={"sub": user_id})
    answer = product.stack.invoke("ApiFunction", event)
    assert answer["statusCode"] == 200, answer
    return list(json.loads(answer["body"])["files"])


def versions(bucket: str, key: str) -> list[dict[str, Any]]:
    return boto3.client("s3").list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])


def sweep(product: LocalThreadline) -> dict[str, Any]:
    report = fire_schedule(product.stack, "SweepUploadsFunction")
    return {name: count for name, count in report.items() if count}


def test_an_ingest_that_fails_every_retry_ends_failed_through_the_on_failure_queue(
    product: LocalThreadline, driver: RunDriver, bucket: str, retries_at_once: None
) -> None:
    thread = driver.new_thread()
    content = b"region,revenue\nnorth,12\n"
    ticket = (
        runtime.current()
        .uploads()
        .create_upload(driver.user_id, thread.thread_id, "sales.csv", "text/csv", len(content))
    )
    assert product.openai is not None
    for _ in range(3):  # the first attempt and Lambda's two retries
        product.openai.faults.add(Fault.http_error(500), method="POST", path="/v1/files")
    boto3.client("s3").put_object(
        Bucket=bucket, Key=ticket.key, Body=content, ContentType="text/csv"
    )
    product.stack.event_sources.wait_idle()

    (delivery,) = [
        delivery
        for delivery in product.stack.event_sources.deliveries()
        if delivery.source == "aws:s3" and ticket.key in json.dumps(delivery.event)
    ]
    assert delivery.attempts == 3
    assert delivery.error is not None
    assert delivery.error["errorType"] == "TransientBackendError"
    queue_url = product.stack.outputs["IngestFailuresQueueUrl"]
    queue = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
    assert delivery.on_failure == queue["Attributes"]["QueueArn"]
    assert queue["Attributes"]["ApproximateNumberOfMessages"] == "0", "FailUpload took it"
    (listed,) = api_files(product, driver.user_id, thread.thread_id)
    assert (listed["id"], listed["status"]) == (ticket.upload_id, "failed")
    assert listed["reason"] == (
        "ingest_failed: not processed after 3 attempts (TransientBackendError); upload it again"
    )
    assert versions(bucket, ticket.key) == []
    name = remote_filename("sales.csv", ticket.upload_id)
    assert all(f.body["filename"] != name for f in product.openai.state.files.values())


def test_the_sweep_settles_what_no_event_did_and_a_second_sweep_changes_nothing(
    product: LocalThreadline, driver: RunDriver, bucket: str
) -> None:
    thread = driver.new_thread()
    content = b"Revenue grew 12% in the north region.\n"
    lost = issued_at(PAST).create_upload(
        driver.user_id, thread.thread_id, "lost.txt", "text/plain", len(content)
    )
    never_uploaded = issued_at(PAST).create_upload(
        driver.user_id, thread.thread_id, "never.txt", "text/plain", len(content)
    )
    fresh = (
        runtime.current()
        .uploads()
        .create_upload(driver.user_id, thread.thread_id, "fresh.txt", "text/plain", len(content))
    )
    with product.stack.event_sources.losing("aws:s3") as lost_events:
        for ticket in (lost, fresh):
            boto3.client("s3").put_object(
                Bucket=bucket, Key=ticket.key, Body=content, ContentType="text/plain"
            )
    assert len(lost_events) == 2

    assert sweep(product) == {"ingested": 1, "failed": 1}

    swept = {
        record.upload_id: record for record in runtime.current().file_store().list(thread.thread_id)
    }
    assert swept[lost.upload_id].status in AT_OPENAI
    assert swept[fresh.upload_id].status is FileStatus.PENDING, "its event may still come"
    listed = {view["id"]: view for view in api_files(product, driver.user_id, thread.thread_id)}
    assert listed[never_uploaded.upload_id]["status"] == "failed"
    assert listed[never_uploaded.upload_id]["reason"] == (
        "upload_missing: no file arrived before the upload URL expired"
    )
    assert product.openai is not None
    name = remote_filename("lost.txt", lost.upload_id)
    assert [f.body["filename"] for f in product.openai.state.files.values()].count(name) == 1
    before = runtime.current().file_store().list(thread.thread_id)

    assert sweep(product) == {}
    assert runtime.current().file_store().list(thread.thread_id) == before


def test_the_sweep_retries_a_failing_ingest_then_gives_it_up(
    product: LocalThreadline, driver: RunDriver, bucket: str
) -> None:
    thread = driver.new_thread()
    content = b"a,b\n1,2\n"
    ticket = issued_at(PAST).create_upload(
        driver.user_id, thread.thread_id, "stuck.csv", "text/csv", len(content)
    )
    with product.stack.event_sources.losing("aws:s3"):
        boto3.client("s3").put_object(
            Bucket=bucket, Key=ticket.key, Body=content, ContentType="text/csv"
        )
    assert product.openai is not None

    for attempt in (1, 2, 3):
        product.openai.faults.add(Fault.http_error(500), method="POST", path="/v1/files")
        expected = {"retrying": 1} if attempt < 3 else {"failed": 1}
        assert sweep(product) == expected, f"sweep {attempt}"
        record = runtime.current().file_store().get(thread.thread_id, ticket.upload_id)
        assert record.sweep_attempts == attempt

    assert record.status is FileStatus.FAILED
    assert record.reason == "ingest_failed: not processed after 3 retries; upload it again"
    assert versions(bucket, ticket.key) == []
    assert sweep(product) == {}
