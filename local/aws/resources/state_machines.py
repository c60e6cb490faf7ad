"""AWS::Serverless::StateMachine: the ASL from DefinitionUri (or Definition) with its
DefinitionSubstitutions applied, created in moto, whose parser executes it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from local.aws.intrinsics import ProvisionedResource, as_template_string
from local.aws.resources.context import ProvisionContext, UnsupportedResource
from local.aws.resources.iam import create_execution_role

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def provision_state_machine(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    if properties.get("Events"):
        raise UnsupportedResource(logical_id, "AWS::Serverless::StateMachine Events")
    definition = _definition_text(ctx, logical_id, properties)
    substitutions = {
        key: as_template_string(value)
        for key, value in properties.get("DefinitionSubstitutions", {}).items()
    }
    missing = sorted(set(_PLACEHOLDER.findall(definition)) - set(substitutions))
    if missing:
        # A leftover placeholder would only surface as an opaque moto error at execution.
        raise ValueError(f"{logical_id}: no DefinitionSubstitutions for {missing}")
    definition = _PLACEHOLDER.sub(lambda match: substitutions[match.group(1)], definition)

    name = properties.get("Name") or ctx.physical_name(logical_id, max_length=80)
    role = properties.get("Role") or create_execution_role(
        ctx, f"{logical_id}Role", "states.amazonaws.com", properties.get("Policies", [])
    )
    optional: dict[str, Any] = {}
    if "Tracing" in properties:
        optional["tracingConfiguration"] = {"enabled": properties["Tracing"]["Enabled"]}
    arn = ctx.client("stepfunctions").create_state_machine(
        name=name,
        definition=definition,
        roleArn=role,
        type=properties.get("Type", "STANDARD"),
        **optional,
    )["stateMachineArn"]
    ctx.stack.state_machines[logical_id] = arn
    return ProvisionedResource(ref=arn, attributes={"Arn": arn, "Name": name})


def _definition_text(ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]) -> str:
    if "Definition" in properties:
        return json.dumps(properties["Definition"])
    uri = properties.get("DefinitionUri")
    if not isinstance(uri, str):
        raise UnsupportedResource(logical_id, "a state machine without a local definition file")
    path = Path(ctx.template_dir, uri)
    if path.suffix in {".yaml", ".yml"}:
        return json.dumps(yaml.safe_load(path.read_text()))
    return path.read_text()
