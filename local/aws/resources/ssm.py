"""AWS::SSM::Parameter (String and StringList), created in moto."""

from __future__ import annotations

from typing import Any

from local.aws.intrinsics import ProvisionedResource
from local.aws.resources.context import ProvisionContext, UnsupportedResource


def provision_parameter(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    if properties["Type"] not in ("String", "StringList"):
        raise UnsupportedResource(logical_id, f"an SSM parameter of type {properties['Type']}")
    name = properties.get("Name") or ctx.physical_name(logical_id, max_length=2048)
    optional = {
        key: properties[key] for key in ("Description", "AllowedPattern") if key in properties
    }
    ctx.client("ssm").put_parameter(
        Name=name, Value=properties["Value"], Type=properties["Type"], **optional
    )
    # Ref is the name; Fn::GetAtt Type and Value, as CloudFormation gives them.
    return ProvisionedResource(
        ref=name, attributes={"Type": properties["Type"], "Value": properties["Value"]}
    )
