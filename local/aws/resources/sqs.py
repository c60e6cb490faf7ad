"""AWS::SQS::Queue, AWS::SQS::QueuePolicy, and AWS::Lambda::EventSourceMapping from a queue
to a function.

A mapping is recorded on the stack (`LocalStack.queue_subscriptions`), not created in moto:
moto's SQS would invoke the function as each message is sent, one at a time, with made-up
attributes, and would delete a message the function reported failed. The event sources poll
the queue as Lambda does instead (see local/aws/event_sources.py).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from local.aws.intrinsics import ProvisionedResource, as_template_string
from local.aws.records import QueueSubscription
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
    function_name = properties["FunctionName"]
    function = next(
        spec
        for spec in ctx.stack.functions.values()
        if function_name in (spec.name, spec.arn, spec.logical_id)
    )
    if properties.get("Enabled", True) not in (False, "false"):
        ctx.stack.queue_subscriptions.append(
            QueueSubscription(
                function_logical_id=function.logical_id,
                queue_arn=properties["EventSourceArn"],
                batch_size=int(properties.get("BatchSize", 10)),
                partial_batch_responses="ReportBatchItemFailures"
                in properties.get("FunctionResponseTypes", []),
            )
        )
    mapping_id = str(uuid.uuid4())
    return ProvisionedResource(
        ref=mapping_id,
        attributes={
            "EventSourceMappingArn": ctx.arn("lambda", f"event-source-mapping:{mapping_id}")
        },
    )


def provision_queue_policy(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    sqs = ctx.client("sqs")
    policy = json.dumps(properties["PolicyDocument"])
    for url in properties["Queues"]:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    return ProvisionedResource(ref=ctx.physical_name(logical_id, max_length=128))
