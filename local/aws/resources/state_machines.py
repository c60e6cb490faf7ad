"""AWS::StepFunctions::StateMachine: the ASL from its (packaged) DefinitionS3Location, or
Definition/DefinitionString, with its DefinitionSubstitutions applied, created in moto,
whose parser executes it."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from local.aws.intrinsics import ProvisionedResource, as_template_string
from local.aws.resources.context import ProvisionContext
from local.aws.resources.functions import code_folder

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def provision_state_machine(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
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
    name = properties.get("StateMachineName") or ctx.physical_name(logical_id, max_length=80)
    optional: dict[str, Any] = {}
    if "TracingConfiguration" in properties:
        optional["tracingConfiguration"] = {
            "enabled": properties["TracingConfiguration"].get("Enabled", False)
        }
    arn = ctx.client("stepfunctions").create_state_machine(
        name=name,
        definition=definition,
        roleArn=properties["RoleArn"],
        type=properties.get("StateMachineType", "STANDARD"),
        **optional,
    )["stateMachineArn"]
    ctx.stack.state_machines[logical_id] = arn
    return ProvisionedResource(ref=arn, attributes={"Arn": arn, "Name": name})


def _definition_text(ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]) -> str:
    if "Definition" in properties:
        return json.dumps(properties["Definition"])
    if "DefinitionString" in properties:
        return str(properties["DefinitionString"])
    path = code_folder(ctx, logical_id, properties["DefinitionS3Location"])
    if path.suffix in {".yaml", ".yml"}:
        return json.dumps(yaml.safe_load(path.read_text()))
    return path.read_text()
