"""AWS::SQS::Queue, and AWS::Lambda::EventSourceMapping from a queue to a function.

moto's SQS invokes a mapped function itself as each message arrives, one message per
invocation, and deletes the message unless the invocation failed (then it stays in the queue).
"""

from __future__ import annotations

import json
from typing import Any

from local.aws.intrinsics import ProvisionedResource, as_template_string
from local.aws.resources.context import ProvisionContext, UnsupportedResource

# CloudFormation properties that are CreateQueue attributes under the same name.
_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DelaySeconds",
    "FifoQueue",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)
# Given as JSON objects in a template, as JSON strings to CreateQueue.
_JSON_ATTRIBUTES = ("RedrivePolicy", "RedriveAllowPolicy")
_MAPPING_PASSED_THROUGH = (
    "EventSourceArn",
    "FunctionName",
    "BatchSize",
    "Enabled",
    "FunctionResponseTypes",
    "MaximumBatchingWindowInSeconds",
)


def provision_queue(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    fifo = properties.get("FifoQueue") in (True, "true")
    name = properties.get("QueueName") or ctx.physical_name(
        logical_id, max_length=75 if fifo else 80
    ) + (".fifo" if fifo else "")
    attributes = {
        key: as_template_string(properties[key]) for key in _ATTRIBUTES if key in properties
    }
    attributes.update(
        {key: json.dumps(properties[key]) for key in _JSON_ATTRIBUTES if key in properties}
    )
    tags = {tag["Key"]: as_template_string(tag["Value"]) for tag in properties.get("Tags", [])}
    url = ctx.client("sqs").create_queue(QueueName=name, Attributes=attributes, tags=tags)[
        "QueueUrl"
    ]
    return ProvisionedResource(
        ref=url,
        attributes={"Arn": ctx.arn("sqs", name), "QueueName": name, "QueueUrl": url},
    )


def provision_event_source_mapping(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    if ":sqs:" not in properties["EventSourceArn"]:
        raise UnsupportedResource(logical_id, "an event source mapping from anything but SQS")
    request = {key: properties[key] for key in _MAPPING_PASSED_THROUGH if key in properties}
    if "BatchSize" in request:
        request["BatchSize"] = int(request["BatchSize"])
    mapping = ctx.client("lambda").create_event_source_mapping(**request)
    return ProvisionedResource(
        ref=mapping["UUID"], attributes={"EventSourceMappingArn": mapping["EventSourceMappingArn"]}
    )
