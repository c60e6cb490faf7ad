from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from moto.s3 import notifications
from moto.server import create_backend_app
from werkzeug.test import Client

from local.aws import (
    AmbiguousSchedule,
    Delivery,
    FunctionInvocationError,
    LocalStack,
    ScheduleNotFound,
    UnsupportedResource,
    deliver_s3_notifications,
    fire_schedule,
    provision,
    run_schedules,
)
from local.aws.event_sources import rate_seconds
from tests.local_aws.conftest import FIXTURES, REGION, installed_stack
from tests.local_aws.gate import ECHO_GATE

ACCOUNT = "123456789012"


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with installed_stack(FIXTURES / "event_sources.yaml", "events", monkeypatch) as provisioned:
        yield provisioned


@pytest.fixture
def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def delivered(stack: LocalStack, timeout: float = 5) -> list[Delivery]:
    stack.event_sources.wait_idle(timeout)
    return stack.event_sources.deliveries()


def only_record(stack: LocalStack, delivery: Delivery) -> dict[str, Any]:
    assert delivery.error is None, delivery.error
    # The function's result echoes what it received: it was invoked with this very event.
    assert delivery.result == {
        "function": stack.functions[delivery.function_logical_id].name,
        "event": delivery.event,
    }
    (record,) = delivery.event["Records"]
    return record


def test_put_object_under_the_prefix_notifies_the_function_with_the_objects_record(
    stack: LocalStack, s3: Any
) -> None:
    bucket = stack.resources["UploadBucket"]
    with deliver_s3_notifications(stack):
        put = s3.put_object(Bucket=bucket, Key="uploads/Q1 sales=2026.csv", Body=b"a,b\n1,2\n")
        (delivery,) = delivered(stack)

    assert (delivery.source, delivery.function_logical_id) == ("aws:s3", "IngestUploadFunction")
    record = only_record(stack, delivery)
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["awsRegion"] == REGION
    assert record["s3"]["configurationId"]  # CloudFormation names a notification with no Id
    assert record["s3"]["bucket"] == {
        "name": bucket,
        "ownerIdentity": {"principalId": "LOCAL"},
        "arn": f"arn:aws:s3:::{bucket}",
    }
    s3_object = record["s3"]["object"]
    assert s3_object["key"] == "uploads/Q1+sales%3D2026.csv"  # form-encoded as S3 does
    assert s3_object["size"] == 8
    assert s3_object["eTag"] == put["ETag"].strip('"')
    assert s3_object["versionId"] == put["VersionId"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["eventTime"])


def test_the_record_describes_the_version_written_not_a_later_one(
    stack: LocalStack, s3: Any
) -> None:
    bucket = stack.resources["UploadBucket"]
    with deliver_s3_notifications(stack):
        first = s3.put_object(Bucket=bucket, Key="uploads/a.csv", Body=b"first")
        second = s3.put_object(Bucket=bucket, Key="uploads/a.csv", Body=b"second!")
        deliveries = delivered(stack)

    objects = [only_record(stack, delivery)["s3"]["object"] for delivery in deliveries]
    assert [(o["versionId"], o["size"]) for o in objects] == [
        (first["VersionId"], 5),
        (second["VersionId"], 7),
    ]


def test_objects_outside_the_filters_or_events_notify_nobody(stack: LocalStack, s3: Any) -> None:
    with deliver_s3_notifications(stack):
        s3.put_object(Bucket=stack.resources["UploadBucket"], Key="elsewhere/a.csv", Body=b"x")
        # FormDropFunction takes Post and Copy events of .txt objects, not a Put.
        s3.put_object(Bucket=stack.resources["DropBucket"], Key="notes.txt", Body=b"x")
        s3.put_object(Bucket=stack.resources["DropBucket"], Key="uploads/a.csv", Body=b"x")

        assert delivered(stack) == []


def test_a_presigned_post_form_upload_notifies_object_created_post(
    stack: LocalStack, s3: Any
) -> None:
    bucket = stack.resources["DropBucket"]
    form = s3.generate_presigned_post(bucket, "forms/${filename}")
    url = urlsplit(form["url"])
    # moto intercepts botocore only: a browser's form POST goes to moto's S3 server app, which
    # shares the backend with the in-process mock.
    browser = Client(create_backend_app("s3"))
    with deliver_s3_notifications(stack):
        response = browser.post(
            "/",
            base_url=f"{url.scheme}://{url.netloc}",
            data={**form["fields"], "key": "forms/report.txt", "file": (io.BytesIO(b"hi"), "r")},
        )
        (delivery,) = delivered(stack)

    assert response.status_code == 204
    assert delivery.function_logical_id == "FormDropFunction"
    record = only_record(stack, delivery)
    assert record["eventName"] == "ObjectCreated:Post"
    assert record["s3"]["object"]["key"] == "forms/report.txt"
    assert record["s3"]["object"]["size"] == 2
    assert "versionId" not in record["s3"]["object"]  # the bucket is not versioned


def test_copy_object_notifies_object_created_copy(stack: LocalStack, s3: Any) -> None:
    upload_bucket, drop_bucket = stack.resources["UploadBucket"], stack.resources["DropBucket"]
    s3.put_object(Bucket=upload_bucket, Key="staging/source.txt", Body=b"copied")
    source = {"Bucket": upload_bucket, "Key": "staging/source.txt"}
    with deliver_s3_notifications(stack):
        copy = s3.copy_object(Bucket=upload_bucket, Key="uploads/copy.txt", CopySource=source)
        s3.copy_object(Bucket=drop_bucket, Key="copy.txt", CopySource=source)
        deliveries = delivered(stack)

    assert [delivery.function_logical_id for delivery in deliveries] == [
        "IngestUploadFunction",
        "FormDropFunction",
    ]
    ingest, drop = (only_record(stack, delivery) for delivery in deliveries)
    assert ingest["eventName"] == drop["eventName"] == "ObjectCreated:Copy"
    assert ingest["s3"]["object"]["versionId"] == copy["VersionId"]
    assert drop["s3"]["object"]["key"] == "copy.txt"


def test_a_multipart_upload_notifies_complete_multipart_upload_only(
    stack: LocalStack, s3: Any
) -> None:
    bucket = stack.resources["UploadBucket"]
    key = "uploads/big.csv"
    with deliver_s3_notifications(stack):
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        parts = [
            {
                "PartNumber": number,
                "ETag": s3.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
                )["ETag"],
            }
            for number, body in ((1, b"a" * 5 * 1024 * 1024), (2, b"b"))
        ]
        complete = s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        (delivery,) = delivered(stack)

    record = only_record(stack, delivery)
    assert record["eventName"] == "ObjectCreated:CompleteMultipartUpload"
    assert record["s3"]["object"]["eTag"] == complete["ETag"].strip('"')
    assert record["s3"]["object"]["eTag"].endswith("-2")
    assert record["s3"]["object"]["size"] == 5 * 1024 * 1024 + 1


def test_the_upload_returns_before_the_function_runs_and_wait_idle_waits(
    stack: LocalStack, s3: Any
) -> None:
    ECHO_GATE.clear()  # the function cannot finish until the test opens the gate
    try:
        with deliver_s3_notifications(stack):
            s3.put_object(
                Bucket=stack.resources["UploadBucket"], Key="uploads/gated.csv", Body=b"x"
            )
            assert stack.event_sources.deliveries() == []
            with pytest.raises(TimeoutError, match="1 deliveries still pending"):
                stack.event_sources.wait_idle(0.05)
            ECHO_GATE.set()
            (delivery,) = delivered(stack)
    finally:
        ECHO_GATE.set()

    assert delivery.error is None


def test_a_failing_function_is_logged_and_does_not_reach_the_uploader(
    stack: LocalStack, s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = stack.resources["UploadBucket"]
    stack.event_sources.retry_delays = (0.0, 0.0)
    with deliver_s3_notifications(stack), caplog.at_level(logging.ERROR):
        s3.put_object(Bucket=bucket, Key="uploads/poison.csv", Body=b"x")  # does not raise
        s3.put_object(Bucket=bucket, Key="uploads/fine.csv", Body=b"x")
        failed, fine = delivered(stack)

    assert (failed.attempts, fine.attempts) == (3, 1), "retried twice, as Lambda retries"
    assert failed.error is not None
    assert failed.error["errorType"] == "ValueError"
    assert failed.error["errorMessage"] == "poisoned event"
    assert "aws:s3 event to IngestUploadFunction failed: ValueError: poisoned event" in caplog.text
    assert only_record(stack, fine)["s3"]["object"]["key"] == "uploads/fine.csv"


def queued_messages(stack: LocalStack, queue: str) -> list[dict[str, Any]]:
    """The bodies of what the queue holds, parsed."""
    sqs = boto3.client("sqs", region_name=REGION)
    received = sqs.receive_message(QueueUrl=stack.resources[queue], MaxNumberOfMessages=10)
    return [json.loads(message["Body"]) for message in received.get("Messages", [])]


def test_a_failure_after_the_last_retry_sends_lambdas_invocation_record_on(
    stack: LocalStack, s3: Any
) -> None:
    bucket = stack.resources["UploadBucket"]
    stack.event_sources.retry_delays = (0.0, 0.0)
    with deliver_s3_notifications(stack):
        s3.put_object(Bucket=bucket, Key="uploads/poison.csv", Body=b"x")
        s3.put_object(Bucket=bucket, Key="uploads/fine.csv", Body=b"x")
        failed, fine = delivered(stack)

    queue_arn = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=stack.resources["FailuresQueue"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert (failed.on_failure, fine.on_failure) == (queue_arn, None)
    (record,) = queued_messages(stack, "FailuresQueue")
    function_arn = stack.functions["IngestUploadFunction"].arn
    assert record == {
        "version": "1.0",
        "timestamp": record["timestamp"],
        "requestContext": {
            "requestId": record["requestContext"]["requestId"],
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": failed.event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": failed.error,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    assert record["responsePayload"]["errorType"] == "ValueError"


def test_maximum_retry_attempts_is_honoured(stack: LocalStack, s3: Any) -> None:
    source = {"Bucket": stack.resources["UploadBucket"], "Key": "staging/poison.txt"}
    s3.put_object(Body=b"x", **source)
    with deliver_s3_notifications(stack):
        s3.copy_object(Bucket=stack.resources["DropBucket"], Key="poison.txt", CopySource=source)
        (failed,) = delivered(stack)

    assert failed.attempts == 1, "MaximumRetryAttempts: 0"
    (record,) = queued_messages(stack, "FailuresQueue")
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestPayload"] == failed.event


def test_losing_drops_a_sources_events_while_active(stack: LocalStack, s3: Any) -> None:
    bucket = stack.resources["UploadBucket"]
    with deliver_s3_notifications(stack):
        with stack.event_sources.losing("aws:s3") as lost:
            s3.put_object(Bucket=bucket, Key="uploads/lost.csv", Body=b"x")
        s3.put_object(Bucket=bucket, Key="uploads/kept.csv", Body=b"x")
        (delivery,) = delivered(stack)

    assert [event["Records"][0]["s3"]["object"]["key"] for event in lost] == ["uploads/lost.csv"]
    assert only_record(stack, delivery)["s3"]["object"]["key"] == "uploads/kept.csv"


def test_the_queue_is_created_with_its_properties(stack: LocalStack) -> None:
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=stack.resources["FailuresQueue"], AttributeNames=["MessageRetentionPeriod"]
    )["Attributes"]

    assert attributes == {"MessageRetentionPeriod": "1209600"}


def test_an_event_source_mapping_polls_its_queue_and_deletes_what_the_function_handled(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        'AWSTemplateFormatVersion: "2010-09-09"\n'
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Jobs:\n"
        "    Type: AWS::SQS::Queue\n"
        "    Properties:\n"
        "      VisibilityTimeout: 1\n"
        "  WorkerFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        f"      CodeUri: {FIXTURES / 'functions' / 'echo'}\n"
        "      Handler: app.handler\n"
        "      Runtime: python3.13\n"
        "  WorkerMapping:\n"
        "    Type: AWS::Lambda::EventSourceMapping\n"
        "    Properties:\n"
        "      EventSourceArn: !GetAtt Jobs.Arn\n"
        "      FunctionName: !Ref WorkerFunction\n"
        "      BatchSize: 10\n"
        "      FunctionResponseTypes: [ReportBatchItemFailures]\n"
    )
    sqs = boto3.client("sqs", region_name=REGION)
    with (
        installed_stack(template, "mapped", monkeypatch) as mapped,
        mapped.event_sources.running() as sources,
    ):
        queue = mapped.resources["Jobs"]
        sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[
                {"Id": str(n), "MessageBody": body} for n, body in enumerate(["a", "refused"])
            ],
        )
        sources.wait_idle()
        sqs.send_message(QueueUrl=queue, MessageBody="poison")
        sources.wait_idle()
        # Received again once their visibility timeout ends: what the function did not handle.
        time.sleep(1.1)
        sources.wait_idle()
        deliveries = sources.deliveries()

    handled, failed, *again = deliveries
    assert [record["body"] for record in handled.event["Records"]] == ["a", "refused"]
    assert handled.result["batchItemFailures"] == [
        {"itemIdentifier": handled.event["Records"][1]["messageId"]}
    ]
    assert failed.error is not None
    received_again = sorted(
        (record["body"], record["attributes"]["ApproximateReceiveCount"])
        for delivery in again
        for record in delivery.event["Records"]
    )
    assert received_again == [("poison", "2"), ("refused", "2")]


def test_destinations_other_than_an_sqs_on_failure_queue_are_refused(
    aws: None, tmp_path: Path
) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        'AWSTemplateFormatVersion: "2010-09-09"\n'
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  NotifiedFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        f"      CodeUri: {FIXTURES / 'functions' / 'echo'}\n"
        "      Handler: app.handler\n"
        "      Runtime: python3.13\n"
        "      EventInvokeConfig:\n"
        "        DestinationConfig:\n"
        "          OnSuccess: { Type: SNS, Destination: arn:aws:sns:us-east-1:123456789012:t }\n"
    )

    with pytest.raises(UnsupportedResource, match="EventInvokeConfig: an OnSuccess destination"):
        provision(template)


def test_leaving_delivers_what_is_queued_and_restores_moto(stack: LocalStack, s3: Any) -> None:
    bucket = stack.resources["UploadBucket"]
    moto_send_event = notifications.send_event
    with deliver_s3_notifications(stack):
        assert notifications.send_event is not moto_send_event
        s3.put_object(Bucket=bucket, Key="uploads/slow.csv", Body=b"x")
    # Drained on exit, though the function was still sleeping when the context ended.
    assert len(stack.event_sources.deliveries()) == 1

    s3.put_object(Bucket=bucket, Key="uploads/later.csv", Body=b"x")

    assert notifications.send_event is moto_send_event
    assert len(stack.event_sources.deliveries()) == 1
    with pytest.raises(RuntimeError, match="not running"):
        stack.event_sources.submit("aws:s3", "IngestUploadFunction", {})


def test_overlapping_contexts_share_one_worker_and_notify_once(stack: LocalStack, s3: Any) -> None:
    bucket = stack.resources["UploadBucket"]
    with deliver_s3_notifications(stack), run_schedules(stack):
        with deliver_s3_notifications(stack):
            s3.put_object(Bucket=bucket, Key="uploads/one.csv", Body=b"x")
        s3.put_object(Bucket=bucket, Key="uploads/two.csv", Body=b"x")
        deliveries = delivered(stack)

    keys = [only_record(stack, delivery)["s3"]["object"]["key"] for delivery in deliveries]
    assert keys == ["uploads/one.csv", "uploads/two.csv"]


def test_deliver_s3_event_sends_the_event_name_asked_for(stack: LocalStack, s3: Any) -> None:
    bucket = stack.resources["DropBucket"]
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"x")

    assert stack.deliver_s3_event("DropBucket", "a.txt") == []  # a Put: not subscribed
    (result,) = stack.deliver_s3_event("DropBucket", "a.txt", "s3:ObjectCreated:Post")
    assert result["event"]["Records"][0]["eventName"] == "ObjectCreated:Post"
    with pytest.raises(ValueError, match="ObjectCreated:\\*"):
        stack.deliver_s3_event("DropBucket", "a.txt", "s3:ObjectCreated:*")


def test_fire_schedule_sends_the_schedules_input(stack: LocalStack) -> None:
    result = fire_schedule(stack, "SweepFunction", event_name="EveryMinute")

    assert result == {
        "function": stack.functions["SweepFunction"].name,
        "event": {"job": "sweep", "older_than_days": 7},
    }
    # By function name too, and a disabled schedule fires on demand.
    paused = fire_schedule(stack, stack.functions["SweepFunction"].name, event_name="Paused")
    assert paused["event"] == {"job": "paused"}


def test_a_schedule_without_input_sends_the_scheduled_event(stack: LocalStack) -> None:
    event = fire_schedule(stack, "ReportFunction", event_name="EveryTwoHours")["event"]

    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert event["version"] == "0"
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert (event["account"], event["region"]) == (ACCOUNT, REGION)
    (rule,) = event["resources"]
    assert rule.startswith(
        f"arn:aws:events:{REGION}:{ACCOUNT}:rule/events-ReportFunctionEveryTwoHours-"
    )
    assert event["detail"] == {}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])


def test_a_schedule_v2_without_input_sends_the_schedulers_event(stack: LocalStack) -> None:
    event = fire_schedule(stack, "ReportFunction", event_name="Weekly")["event"]

    assert event["source"] == "aws.scheduler"
    assert event["resources"] == [
        f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/ReportFunctionWeekly"
    ]
    assert event["detail"] == "{}"


def test_detail_override_replaces_the_input_or_the_detail(stack: LocalStack) -> None:
    override = {"job": "sweep", "older_than_days": 0}
    swept = fire_schedule(
        stack, "SweepFunction", event_name="EveryMinute", detail_override=override
    )
    report = fire_schedule(
        stack, "ReportFunction", event_name="EveryTwoHours", detail_override={"week": 3}
    )

    assert swept["event"] == override
    assert report["event"]["detail"] == {"week": 3}
    assert report["event"]["detail-type"] == "Scheduled Event"


def test_fire_schedule_needs_a_schedule_it_can_name(stack: LocalStack) -> None:
    with pytest.raises(AmbiguousSchedule, match=r"\['EveryMinute', 'Paused'\]"):
        fire_schedule(stack, "SweepFunction")
    with pytest.raises(ScheduleNotFound, match="no schedule 'Hourly'"):
        fire_schedule(stack, "SweepFunction", event_name="Hourly")
    with pytest.raises(ScheduleNotFound, match="IngestUploadFunction has no Schedule"):
        fire_schedule(stack, "IngestUploadFunction")
    with pytest.raises(ScheduleNotFound, match="no function 'Nope'"):
        fire_schedule(stack, "Nope")


def test_fire_schedule_raises_the_functions_error(stack: LocalStack) -> None:
    with pytest.raises(FunctionInvocationError, match="ValueError: poisoned event"):
        fire_schedule(stack, "ReportFunction", event_name="Weekly", detail_override="poison")


def test_run_schedules_fires_enabled_rate_schedules_on_a_scaled_clock(stack: LocalStack) -> None:
    # rate(1 minute) fires every 0.1 s; rate(2 hours) every 12 s; cron and disabled: never.
    started = time.monotonic()  # before the clock starts: the bound below is then exact
    with run_schedules(stack, time_scale=600):
        deadline = started + 5
        while len(stack.event_sources.deliveries()) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        elapsed = time.monotonic() - started
    fired = stack.event_sources.deliveries()
    time.sleep(0.25)

    assert len(fired) >= 3
    assert elapsed >= 0.3  # the first tick comes one period after the start
    assert {(d.source, d.function_logical_id) for d in fired} == {("aws.events", "SweepFunction")}
    assert all(d.event == {"job": "sweep", "older_than_days": 7} and d.error is None for d in fired)
    assert stack.event_sources.deliveries() == fired  # stopped with the context


def test_run_schedules_refuses_expressions_aws_would_refuse(stack: LocalStack) -> None:
    (index,) = [i for i, spec in enumerate(stack.schedules) if spec.event_name == "Paused"]
    stack.schedules[index] = replace(stack.schedules[index], expression="rate(1 minutes)")

    with pytest.raises(ValueError, match=r"rate\(1 minutes\)"), run_schedules(stack):
        pass
    with pytest.raises(ValueError, match="time_scale"), run_schedules(stack, time_scale=0):
        pass


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(15 minutes)", 900),
        ("rate(1 hour)", 3600),
        ("rate(2 days)", 172800),
        ("cron(0 8 ? * MON *)", None),
        ("at(2030-01-01T00:00:00)", None),
    ],
)
def test_rate_seconds(expression: str, seconds: int | None) -> None:
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize(
    "expression", ["rate(0 minutes)", "rate(2 minute)", "rate(1 hours)", "rate(1 week)", "daily"]
)
def test_rate_seconds_refuses(expression: str) -> None:
    with pytest.raises(ValueError, match=re.escape(expression)):
        rate_seconds(expression)
