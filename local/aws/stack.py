"""Provision a SAM template in moto as CloudFormation deploys it: transformed by the SAM
translator, then each resource in dependency order."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.models import botocore_stubber

from local.aws import deploy_checks
from local.aws.intrinsics import Resolver
from local.aws.local_stack import LocalStack
from local.aws.parameters import parameter_values
from local.aws.resources import provisioner_for
from local.aws.resources.context import ProvisionContext
from local.aws.sam_translation import transformed
from local.aws.template import dependency_order


def provision(
    template_path: Path,
    *,
    parameters: dict[str, str] | None = None,
    stack_name: str = "threadline-local",
    region: str = "us-east-1",
    folder: Path | None = None,
) -> LocalStack:
    """Create every resource of the template in moto and return what was created.

    `folder` is where the template's code locations are (by default the template's folder).
    Call it while a moto mock is active: `mock_aws(...)` in-process, or boto3 pointed at a moto
    server through AWS_ENDPOINT_URL. Handlers run once `lambda_runtime.install(stack.registry)`
    is active, with `stack.environment()` set in os.environ.
    """
    _require_moto()
    folder = (folder or template_path.parent).resolve()
    template = transformed(template_path, parameters or {}, region, folder=folder)
    deploy_checks.check_template(template)
    resources = template["Resources"]
    resolver = Resolver(
        parameters=parameter_values(template.get("Parameters", {}), parameters or {}),
        pseudo_parameters=_pseudo_parameters(stack_name, region),
        condition_definitions=template.get("Conditions", {}),
        mappings=template.get("Mappings", {}),
    )
    deploy_checks.check_rules(template, resolver)
    # Refuse unsupported types before creating anything.
    provisioners = {
        logical_id: provisioner_for(logical_id, resource["Type"])
        for logical_id, resource in resources.items()
    }
    stack = LocalStack(stack_name=stack_name, region=region)
    ctx = ProvisionContext(
        stack=stack,
        account_id=DEFAULT_ACCOUNT_ID,
        template_dir=folder,
        resolver=resolver,
    )
    for logical_id in dependency_order(resources):
        resource = resources[logical_id]
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        properties = resolver.resolve(resource.get("Properties", {}))
        deploy_checks.check_name(logical_id, resource["Type"], properties)
        ctx.record(logical_id, provisioners[logical_id](ctx, logical_id, properties))
    stack.outputs = {
        name: resolver.resolve(output["Value"])
        for name, output in template.get("Outputs", {}).items()
        if "Condition" not in output or resolver.condition(output["Condition"])
    }
    deploy_checks.check_policies(stack)
    return stack


def _require_moto() -> None:
    # Provisioning against real AWS by accident would create (and bill) real resources.
    if not botocore_stubber.enabled and not os.environ.get("AWS_ENDPOINT_URL"):
        raise RuntimeError(
            "provision() needs an active moto mock (mock_aws) or AWS_ENDPOINT_URL pointing at a "
            "moto server"
        )


def _pseudo_parameters(stack_name: str, region: str) -> dict[str, Any]:
    return {
        "AWS::AccountId": DEFAULT_ACCOUNT_ID,
        "AWS::Region": region,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": stack_name,
        "AWS::StackId": (
            f"arn:aws:cloudformation:{region}:{DEFAULT_ACCOUNT_ID}:stack/{stack_name}/{uuid.uuid4()}"
        ),
        "AWS::NotificationARNs": [],
    }
