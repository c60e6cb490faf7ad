"""AWS::Logs::LogGroup."""

from __future__ import annotations

from typing import Any

from local.aws.intrinsics import ProvisionedResource, as_template_string
from local.aws.resources.context import ProvisionContext, UnsupportedResource

_SUPPORTED = frozenset({"LogGroupName", "RetentionInDays", "Tags"})


def provision_log_group(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    unsupported = sorted(set(properties) - _SUPPORTED)
    if unsupported:
        raise UnsupportedResource(logical_id, f"AWS::Logs::LogGroup properties {unsupported}")
    logs = ctx.client("logs")
    name = properties.get("LogGroupName") or ctx.physical_name(logical_id, max_length=512)
    logs.create_log_group(
        logGroupName=name,
        tags={tag["Key"]: as_template_string(tag["Value"]) for tag in properties.get("Tags", [])},
    )
    if "RetentionInDays" in properties:
        logs.put_retention_policy(
            logGroupName=name, retentionInDays=int(properties["RetentionInDays"])
        )
    # CloudFormation's Arn attribute ends in `:*` (every stream of the group).
    return ProvisionedResource(ref=name, attributes={"Arn": ctx.arn("logs", f"log-group:{name}:*")})
