"""Load a CloudFormation or SAM template into plain data and order its resources.

Short-form tags (`!Ref`, `!Sub`, ...) become the long form CloudFormation uses in JSON
(`{"Ref": ...}`, `{"Fn::Sub": ...}`), so the resolver only has one form to evaluate.
"""

from __future__ import annotations

import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


# libyaml's loader is ~10x faster; PyYAML builds without libyaml only have the pure one.
if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader  # the same interface, whichever it is
else:
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TemplateLoader(_SafeLoader):
    """A safe YAML loader that knows CloudFormation's short-form tags."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:  # YAML has no other kind of node
        value = loader.construct_mapping(cast(yaml.MappingNode, node), deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # `!GetAtt Resource.Attribute` (the attribute itself may contain dots).
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_TemplateLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a template file (YAML or JSON) into plain dicts, lists and strings."""
    template = yaml.load(path.read_text(), Loader=_TemplateLoader)  # nosec B506: a SafeLoader
    if not isinstance(template, dict) or "Resources" not in template:
        raise ValueError(f"{path} is not a CloudFormation template (no Resources section)")
    return template


def is_intrinsic(value: Any) -> bool:
    """Whether a mapping is an intrinsic function call rather than plain data."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (key,) = value
    return key in {"Ref", "Condition"} or key.startswith("Fn::")


def referenced_names(value: Any) -> set[str]:
    """Every name a value refers to through Ref, GetAtt or Sub (resources, parameters and
    pseudo parameters alike)."""
    names: set[str] = set()
    if isinstance(value, list):
        for item in value:
            names |= referenced_names(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                names.add(item)
            elif key == "Fn::GetAtt":
                target = item[0] if isinstance(item, list) else str(item).split(".", 1)[0]
                names.add(target)
            elif key == "Fn::Sub":
                text, variables = (item, {}) if isinstance(item, str) else item
                for match in _SUB_VARIABLE.findall(text):
                    if match not in variables:
                        names.add(match.split(".", 1)[0])
                names |= referenced_names(variables)
            else:
                names |= referenced_names(item)
    return names


def dependency_order(resources: dict[str, dict[str, Any]]) -> list[str]:
    """Logical ids ordered so that every resource comes after the resources it refers to."""
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn", [])
        if isinstance(depends_on, str):
            depends_on = [depends_on]
        referenced = referenced_names(resource.get("Properties", {})) | set(depends_on)
        sorter.add(logical_id, *sorted(name for name in referenced if name in resources))
    try:
        return list(sorter.static_order())
    except CycleError as error:
        raise ValueError(f"circular references between resources: {error.args[1]}") from error
