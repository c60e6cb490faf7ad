"""The event S3 sends a subscribed Lambda function when an object is created."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

OBJECT_CREATED_PUT = "s3:ObjectCreated:Put"


def object_created_event(
    *, bucket: str, key: str, head: Mapping[str, Any], region: str, configuration_id: str
) -> dict[str, Any]:
    """An `ObjectCreated:Put` notification built from the object's real `head_object`."""
    s3_object: dict[str, Any] = {
        # S3 form-encodes keys in events ("a b.csv" -> "a+b.csv") but leaves "/" alone.
        "key": quote_plus(key, safe="/"),
        "size": head["ContentLength"],
        "eTag": head["ETag"].strip('"'),
        # S3's sequencer only orders events for one key; a clock reading does that too.
        "sequencer": f"{time.time_ns():016X}",
    }
    if "VersionId" in head:  # only versioned buckets report one
        s3_object["versionId"] = head["VersionId"]
    request_id = head["ResponseMetadata"]["RequestId"]
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": head["LastModified"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "eventName": OBJECT_CREATED_PUT.removeprefix("s3:"),
                "userIdentity": {"principalId": "AWS:LOCAL"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": request_id},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": configuration_id,
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "LOCAL"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": s3_object,
                },
            }
        ]
    }
