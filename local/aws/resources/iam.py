"""AWS::IAM::ManagedPolicy and AWS::IAM::Role (the transform's roles of the functions and
state machines among them), created in moto; `local.aws.iam.gate` enforces them."""

from __future__ import annotations

import json
from typing import Any

from local.aws.intrinsics import ProvisionedResource
from local.aws.records import RoleSpec
from local.aws.resources.context import ProvisionContext


def provision_managed_policy(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    iam = ctx.client("iam")
    name = properties.get("ManagedPolicyName") or ctx.physical_name(logical_id, max_length=128)
    optional = {key: properties[key] for key in ("Path", "Description") if key in properties}
    arn = iam.create_policy(
        PolicyName=name, PolicyDocument=json.dumps(properties["PolicyDocument"]), **optional
    )["Policy"]["Arn"]
    ctx.stack.managed_policies[arn] = properties["PolicyDocument"]
    for role in properties.get("Roles", []):
        iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        next(spec for spec in ctx.stack.roles.values() if spec.name == role).managed.append(arn)
    return ProvisionedResource(ref=arn)


def provision_role(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    iam = ctx.client("iam")
    name = properties.get("RoleName") or ctx.physical_name(logical_id, max_length=64)
    optional = {key: properties[key] for key in ("Path", "Description") if key in properties}
    arn = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"]),
        **optional,
    )["Role"]["Arn"]
    spec = RoleSpec(logical_id=logical_id, name=name, arn=arn)
    for policy in properties.get("ManagedPolicyArns", []):
        if not policy.startswith("arn:aws:iam::aws:"):  # moto loads no AWS managed policies
            iam.attach_role_policy(RoleName=name, PolicyArn=policy)
        spec.managed.append(policy)
    for policy in properties.get("Policies", []):
        # SAM writes inline statements without a Version, which IAM reads as 2008-10-17 (no
        # policy variables, which none uses) and moto refuses: the current version instead.
        document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
        iam.put_role_policy(
            RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document)
        )
        spec.inline.append(document)
    ctx.stack.roles[arn] = spec
    return ProvisionedResource(ref=name, attributes={"Arn": arn})
