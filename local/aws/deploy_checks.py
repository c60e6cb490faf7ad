"""What CloudFormation and the services refuse at deploy time that moto accepts: the
template's rules and quotas, the names resources are given, the sizes of IAM policies.

`provision()` applies them to the transformed template, so a deploy that would fail on
one of them fails the local stack first, with CloudFormation's reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from local.aws.intrinsics import Resolver
from local.aws.local_stack import LocalStack

# CloudFormation's quotas on one template (its user guide's "quotas" page).
TEMPLATE_BODY_BYTES = 1_048_576  # a template sam deploy uploads to S3
SECTION_LIMITS = {"Resources": 500, "Outputs": 200, "Parameters": 200, "Mappings": 200}

# IAM's quotas: characters not counting whitespace.
ROLE_INLINE_POLICY_CHARS = 10_240  # all of a role's inline policies together
MANAGED_POLICY_CHARS = 6_144
MANAGED_POLICIES_PER_ROLE = 10  # the default; raisable to 20

# The name each type is given, if the template names it, and how long the service lets it be.
NAME_LIMITS: dict[str, tuple[str, int]] = {
    "AWS::S3::Bucket": ("BucketName", 63),
    "AWS::Lambda::Function": ("FunctionName", 64),
    "AWS::Lambda::LayerVersion": ("LayerName", 140),
    "AWS::IAM::Role": ("RoleName", 64),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName", 128),
    "AWS::SQS::Queue": ("QueueName", 80),
    "AWS::StepFunctions::StateMachine": ("StateMachineName", 80),
    "AWS::Events::EventBus": ("Name", 256),
    "AWS::Events::Rule": ("Name", 64),
    "AWS::Logs::LogGroup": ("LogGroupName", 512),
    "AWS::SecretsManager::Secret": ("Name", 512),
    "AWS::SSM::Parameter": ("Name", 2048),
    "AWS::DynamoDB::Table": ("TableName", 255),
    "AWS::Cognito::UserPool": ("UserPoolName", 128),
    "AWS::Cognito::UserPoolClient": ("ClientName", 128),
    "AWS::CloudWatch::Dashboard": ("DashboardName", 255),
    "AWS::CloudWatch::Alarm": ("AlarmName", 255),
    "AWS::ApiGatewayV2::Api": ("Name", 128),
}
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class DeployRefused(ValueError):
    """What CloudFormation would answer, before or while it creates the stack."""


def check_template(template: Mapping[str, Any]) -> None:
    """The template's size and sections, as CloudFormation checks them when it is given."""
    body = len(json.dumps(template, separators=(",", ":")).encode())
    if body > TEMPLATE_BODY_BYTES:
        raise DeployRefused(
            f"Template may not exceed {TEMPLATE_BODY_BYTES} bytes in size (it is {body})"
        )
    for section, limit in SECTION_LIMITS.items():
        count = len(template.get(section, {}))
        if count > limit:
            raise DeployRefused(
                f"Template format error: Number of {section.lower()} ({count}) is greater "
                f"than maximum allowed, {limit}"
            )


def check_rules(template: Mapping[str, Any], resolver: Resolver) -> None:
    """The template's Rules with these parameter values, as CloudFormation checks them
    before it creates anything."""
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not resolver.resolve(rule["RuleCondition"]):
            continue
        for assertion in rule.get("Assertions", []):
            if not resolver.resolve(assertion["Assert"]):
                reason = assertion.get("AssertDescription", f"rule {name} failed")
                raise DeployRefused(
                    f"Parameter values specified for a template which does not "
                    f"satisfy rule {name}: {reason}"
                )


def check_name(logical_id: str, resource_type: str, properties: Mapping[str, Any]) -> None:
    """The name the template gives the resource, as its service checks it."""
    if resource_type not in NAME_LIMITS:
        return
    field, limit = NAME_LIMITS[resource_type]
    name = properties.get(field)
    if not isinstance(name, str):
        return  # CloudFormation makes one up, within the limit
    if len(name) > limit:
        raise DeployRefused(
            f"{logical_id}: {field} {name!r} is {len(name)} characters; {resource_type} takes "
            f"at most {limit}"
        )
    if resource_type == "AWS::S3::Bucket" and not _BUCKET_NAME.fullmatch(name):
        raise DeployRefused(f"{logical_id}: {name!r} is not a valid bucket name")


def characters(document: Any) -> int:
    return len(re.sub(r"\s", "", json.dumps(document, separators=(",", ":"))))


def check_policies(stack: LocalStack) -> None:
    """The stack's roles and managed policies within IAM's size quotas (as provisioned: the
    ARNs they name are resolved, so each is as long as IAM would measure it)."""
    for arn, document in stack.managed_policies.items():
        if characters(document) > MANAGED_POLICY_CHARS:
            raise DeployRefused(
                f"{arn}: the policy is {characters(document)} characters; IAM takes at most "
                f"{MANAGED_POLICY_CHARS} (LimitExceeded)"
            )
    for role in stack.roles.values():
        inline = sum(map(characters, role.inline))
        if inline > ROLE_INLINE_POLICY_CHARS:
            raise DeployRefused(
                f"{role.logical_id}: its inline policies are {inline} characters; IAM takes at "
                f"most {ROLE_INLINE_POLICY_CHARS} per role (LimitExceeded)"
            )
        if len(role.managed) > MANAGED_POLICIES_PER_ROLE:
            raise DeployRefused(
                f"{role.logical_id}: {len(role.managed)} managed policies attached; IAM takes "
                f"{MANAGED_POLICIES_PER_ROLE} per role unless the account's quota is raised "
                f"(LimitExceeded)"
            )
