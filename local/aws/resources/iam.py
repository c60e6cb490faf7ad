"""AWS::IAM::ManagedPolicy, and the execution roles SAM creates for functions and state
machines. moto does not enforce IAM here, so policies are attached loosely: enough for the
roles to exist and to read back like the deployed ones."""

from __future__ import annotations

import json
from typing import Any

from local.aws.intrinsics import ProvisionedResource
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
    for role in properties.get("Roles", []):
        iam.attach_role_policy(RoleName=role, PolicyArn=arn)
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
    for policy in properties.get("ManagedPolicyArns", []):
        if not policy.startswith("arn:aws:iam::aws:"):  # moto loads no AWS managed policies
            iam.attach_role_policy(RoleName=name, PolicyArn=policy)
    for policy in properties.get("Policies", []):
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy["PolicyName"],
            PolicyDocument=json.dumps(policy["PolicyDocument"]),
        )
    return ProvisionedResource(ref=name, attributes={"Arn": arn})


def create_execution_role(
    ctx: ProvisionContext, logical_id: str, service: str, policies: list[Any]
) -> str:
    """Create the role SAM generates as `{logical_id}` for a resource run by `service`
    (e.g. lambda.amazonaws.com), record it, and return its ARN."""
    iam = ctx.client("iam")
    trust_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }
    name = ctx.physical_name(logical_id, max_length=64)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy))["Role"][
        "Arn"
    ]
    for index, policy in enumerate(policies):
        if isinstance(policy, str) and policy.startswith(f"arn:aws:iam::{ctx.account_id}:"):
            iam.attach_role_policy(RoleName=name, PolicyArn=policy)
        elif isinstance(policy, dict) and "Statement" in policy:
            iam.put_role_policy(
                RoleName=name,
                PolicyName=f"{logical_id}Policy{index}",
                # SAM adds the policy language version to inline statements; so do we.
                PolicyDocument=json.dumps({"Version": "2012-10-17", **policy}),
            )
        # Left out: AWS managed policies (moto does not load them by default) and SAM policy
        # templates such as DynamoDBCrudPolicy (expanding them changes nothing locally).
    ctx.record(logical_id, ProvisionedResource(ref=name, attributes={"Arn": arn}))
    return arn
