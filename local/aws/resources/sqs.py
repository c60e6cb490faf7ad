"""AWS::SQS::Queue and AWS::SQS::QueuePolicy, created in moto. (A queue's event source
mapping is recorded on the stack, not created in moto: see resources.functions.)"""

from __future__ import annotations

import json
from typing import Any

from local.aws.intrinsics import ProvisionedResource, as_template_string
from local.aws.resources.context import ProvisionContext

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


def provision_queue_policy(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    sqs = ctx.client("sqs")
    policy = json.dumps(properties["PolicyDocument"])
    for url in properties["Queues"]:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        ctx.stack.resource_policies[arn["Attributes"]["QueueArn"]] = properties["PolicyDocument"]
    return ProvisionedResource(ref=ctx.physical_name(logical_id, max_length=128))
