"""AWS::Events::EventBus, and AWS::Events::Rule (created in moto; moto's EventBridge sends a
bus's events to a rule's SQS and log group targets, but does not invoke targets on a
schedule, so a local scheduler works from `LocalStack.schedules` instead)."""

from __future__ import annotations

import json
from typing import Any

from local.aws.intrinsics import ProvisionedResource
from local.aws.resources.context import ProvisionContext

_PASSED_THROUGH = ("ScheduleExpression", "State", "Description", "EventBusName", "RoleArn")


def provision_rule(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    events = ctx.client("events")
    name = properties.get("Name") or ctx.physical_name(logical_id, max_length=64)
    request = {key: properties[key] for key in _PASSED_THROUGH if key in properties}
    if "EventPattern" in properties:
        request["EventPattern"] = json.dumps(properties["EventPattern"])
    arn = events.put_rule(Name=name, **request)["RuleArn"]
    if properties.get("Targets"):
        bus = {key: request[key] for key in ("EventBusName",) if key in request}
        events.put_targets(Rule=name, Targets=properties["Targets"], **bus)
    return ProvisionedResource(ref=name, attributes={"Arn": arn})


def provision_event_bus(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    name = properties.get("Name") or ctx.physical_name(logical_id, max_length=256)
    arn = ctx.client("events").create_event_bus(Name=name)["EventBusArn"]
    return ProvisionedResource(ref=name, attributes={"Arn": arn, "Name": name})
