from __future__ import annotations

import boto3

from local.aws import LocalStack
from tests.local_aws.conftest import REGION


def test_object_created_event_reaches_the_subscribed_function(stack: LocalStack) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    bucket = stack.resources["Bucket"]
    put = s3.put_object(Bucket=bucket, Key="uploads/sales 2026=Q1.csv", Body=b"a,b\n1,2\n")

    (records,) = stack.deliver_s3_event("Bucket", "uploads/sales 2026=Q1.csv")

    assert records == [
        {
            "bucket": bucket,
            "key": "uploads/sales 2026=Q1.csv",
            "raw_key": "uploads/sales+2026%3DQ1.csv",  # form-encoded like S3, "/" kept
            "size": 8,
            "version_id": put["VersionId"],
            "event_name": "ObjectCreated:Put",
        }
    ]


def test_prefix_and_suffix_filters_decide_who_is_notified(stack: LocalStack) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    bucket = stack.resources["Bucket"]
    for key in ("elsewhere/data.csv", "uploads/notes.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")

    assert stack.deliver_s3_event(bucket, "elsewhere/data.csv") == []
    assert stack.deliver_s3_event(bucket, "uploads/notes.txt") == []
