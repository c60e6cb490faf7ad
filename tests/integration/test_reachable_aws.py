"""The local stack with its AWS services served over HTTP (`make serve`): an upload through
the presigned POST the API hands out works from any HTTP client (curl's multipart form here)
and is ingested by the S3 trigger, and the AWS SDK or CLI pointed at the endpoint sees the
state machine's executions and the bucket."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
import requests

from local.openai_server import Step
from local.stack_session import LocalThreadline, local_threadline
from tests.integration.lambda_api import Client

CSV = b"region,target\nNorth,25000\nSouth,21000\n"


@pytest.fixture(scope="module")
def product() -> Iterator[LocalThreadline]:
    with local_threadline(parameters={"Backend": "responses"}, aws_port=0) as session:
        yield session


def test_a_presigned_upload_from_an_http_client_is_ingested(product: LocalThreadline) -> None:
    alice = Client(product, "alice-reach")
    thread_id = alice.thread()
    status, upload, _ = alice.call(
        "POST",
        f"/threads/{thread_id}/files",
        {"filename": "targets.csv", "content_type": "text/csv", "size": len(CSV)},
    )
    assert status == 201, upload
    assert product.aws_endpoint is not None
    assert upload["url"].startswith(product.aws_endpoint)

    # What `curl -F key=... -F file=@targets.csv <url>` sends: the fields, then the file.
    posted = requests.post(
        upload["url"], data=upload["fields"], files={"file": ("targets.csv", CSV)}, timeout=10
    )

    assert posted.status_code in (200, 201, 204), posted.text
    product.stack.event_sources.wait_idle(30)
    status, files, _ = alice.call("GET", f"/threads/{thread_id}/files")
    assert [(f["filename"], f["status"]) for f in files["files"]] == [("targets.csv", "ingested")]


def test_the_sdk_pointed_at_the_endpoint_sees_runs_and_the_bucket(
    product: LocalThreadline,
) -> None:
    alice = Client(product, "alice-looks")
    thread_id = alice.thread()
    alice.script(thread_id, Step.say("Seen from outside."))
    run_id = alice.started(thread_id, {"message": "Hello"})
    assert alice.finished(thread_id, run_id)["status"] == "completed"

    stepfunctions = boto3.client("stepfunctions", endpoint_url=product.aws_endpoint)
    express = product.stack.state_machines["RunExpressStateMachine"]
    executions = stepfunctions.list_executions(stateMachineArn=express)["executions"]
    s3 = boto3.client("s3", endpoint_url=product.aws_endpoint)

    assert run_id in {execution["name"] for execution in executions}
    assert product.stack.resources["FilesBucket"] in {
        b["Name"] for b in s3.list_buckets()["Buckets"]
    }
