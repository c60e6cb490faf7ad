"""AWS::SNS::Topic, AWS::CloudWatch::Alarm and AWS::CloudWatch::Dashboard."""

from __future__ import annotations

from typing import Any

from local.aws.intrinsics import ProvisionedResource
from local.aws.resources.context import ProvisionContext

# CloudFormation gives these as template values (strings when they come from a Ref);
# PutMetricAlarm wants numbers.
_ALARM_INTEGERS = ("Period", "EvaluationPeriods", "DatapointsToAlarm")
_TOPIC_ATTRIBUTES = ("DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication")


def provision_topic(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    sns = ctx.client("sns")
    name = properties.get("TopicName") or ctx.physical_name(logical_id, max_length=256)
    attributes = {key: str(properties[key]) for key in _TOPIC_ATTRIBUTES if key in properties}
    arn = sns.create_topic(Name=name, Attributes=attributes, Tags=properties.get("Tags", []))[
        "TopicArn"
    ]
    for subscription in properties.get("Subscription", []):
        sns.subscribe(
            TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"]
        )
    return ProvisionedResource(ref=arn, attributes={"TopicArn": arn, "TopicName": name})


def provision_alarm(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    # The CloudFormation properties are PutMetricAlarm's parameters, name for name.
    request = {"AlarmName": ctx.physical_name(logical_id, max_length=255), **properties}
    for key in _ALARM_INTEGERS:
        if key in request:
            request[key] = int(request[key])
    if "Threshold" in request:
        request["Threshold"] = float(request["Threshold"])
    for query in request.get("Metrics", []):
        if "MetricStat" in query:
            query["MetricStat"]["Period"] = int(query["MetricStat"]["Period"])
    ctx.client("cloudwatch").put_metric_alarm(**request)
    name = request["AlarmName"]
    return ProvisionedResource(ref=name, attributes={"Arn": ctx.arn("cloudwatch", f"alarm:{name}")})


def provision_dashboard(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    name = properties.get("DashboardName") or ctx.physical_name(logical_id, max_length=255)
    ctx.client("cloudwatch").put_dashboard(
        DashboardName=name, DashboardBody=properties["DashboardBody"]
    )
    return ProvisionedResource(ref=name)
