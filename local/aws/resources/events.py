"""AWS::Events::EventBus, and AWS::Events::Rule (created in moto; moto's EventBridge sends a
bus's events to a rule's SQS and log group targets, but does not invoke targets on a
schedule, so a local scheduler works from `LocalStack.schedules`, which a schedule rule's
Lambda targets are recorded in)."""

from __future__ import annotations

import json
from typing import Any

from local.aws.intrinsics import ProvisionedResource
from local.aws.records import ScheduleSpec
from local.aws.resources.context import ProvisionContext

_PASSED_THROUGH = ("ScheduleExpression", "State", "Description", "EventBusName", "RoleArn")
EVENTS_SOURCE = "aws.events"
SCHEDULER_SOURCE = "aws.scheduler"


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
    functions = {spec.arn for spec in ctx.stack.functions.values()}
    if "ScheduleExpression" in properties:
        for target in [t for t in properties.get("Targets", []) if t["Arn"] in functions]:
            _schedule(
                ctx, logical_id, source=EVENTS_SOURCE, arn=arn, properties=properties, target=target
            )
    return ProvisionedResource(ref=name, attributes={"Arn": arn})


def provision_schedule(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    """AWS::Scheduler::Schedule (SAM's ScheduleV2 event): recorded for the local scheduler."""
    name = properties.get("Name") or ctx.physical_name(logical_id, max_length=64)
    group = properties.get("GroupName", "default")
    arn = ctx.arn("scheduler", f"schedule/{group}/{name}")
    _schedule(
        ctx,
        logical_id,
        source=SCHEDULER_SOURCE,
        arn=arn,
        properties=properties,
        target=properties["Target"],
    )
    return ProvisionedResource(ref=name, attributes={"Arn": arn})


def _schedule(
    ctx: ProvisionContext,
    logical_id: str,
    *,
    source: str,
    arn: str,
    properties: dict[str, Any],
    target: dict[str, Any],
) -> None:
    function = next(spec for spec in ctx.stack.functions.values() if spec.arn == target["Arn"])
    ctx.stack.schedules.append(
        ScheduleSpec(
            function_logical_id=function.logical_id,
            # SAM names a function's schedule `{function}{event}`.
            event_name=logical_id.removeprefix(function.logical_id) or logical_id,
            source=source,
            resource_arn=arn,
            expression=properties["ScheduleExpression"],
            input=target.get("Input"),
            enabled=properties.get("State", "ENABLED") == "ENABLED",
            role_arn=target.get("RoleArn") if source == SCHEDULER_SOURCE else None,
        )
    )


def provision_event_bus(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    name = properties.get("Name") or ctx.physical_name(logical_id, max_length=256)
    arn = ctx.client("events").create_event_bus(Name=name)["EventBusArn"]
    return ProvisionedResource(ref=name, attributes={"Arn": arn, "Name": name})
