"""The template's expressions resolved as a deploy would resolve them, without AWS."""

from __future__ import annotations

from local.aws.intrinsics import ProvisionedResource, Resolver
from local.aws.parameters import parameter_values
from tests.conftest import template


def deploy_resolver(
    parameters: dict[str, str] | None = None, *, pseudo_parameters: dict[str, str] | None = None
) -> Resolver:
    """The template's expressions as a deploy with these parameters (and pseudo parameters,
    us-east-1's unless given) resolves them, each resource standing for a name, an ARN or an
    id."""
    declared = template()
    resolver = Resolver(
        parameters=parameter_values(declared["Parameters"], parameters or {}),
        pseudo_parameters=pseudo_parameters or {
            "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
            "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
        },
        condition_definitions=declared["Conditions"],
        mappings={},
    )  # fmt: skip
    for resource in declared["Resources"]:
        resolver.add_resource(resource, ProvisionedResource(f"{resource}-id", _AnyAttribute()))
    return resolver


class _AnyAttribute(dict[str, str]):
    def __contains__(self, name: object) -> bool:
        return True

    def __missing__(self, name: str) -> str:
        return f"arn:aws:resolved:{name.lower()}"
