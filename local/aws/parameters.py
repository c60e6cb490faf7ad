"""Template parameter values: declared defaults, overridden by the caller, checked like
CloudFormation checks them at deploy time."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from local.aws.intrinsics import as_template_string


def parameter_values(
    declarations: Mapping[str, Mapping[str, Any]], overrides: Mapping[str, str]
) -> dict[str, str | list[str]]:
    """Each parameter's value as `Ref` returns it: a string, or a list for list types."""
    unknown = sorted(set(overrides) - set(declarations))
    if unknown:
        raise ValueError(f"the template declares no parameters named {unknown}")
    values: dict[str, str | list[str]] = {}
    for name, declaration in declarations.items():
        if name in overrides:
            raw = overrides[name]
        elif "Default" in declaration:
            raw = as_template_string(declaration["Default"])
        else:
            raise ValueError(f"parameter {name} has no default and no value was given")
        _check(name, declaration, raw)
        is_list = declaration.get("Type", "String") == "CommaDelimitedList" or declaration.get(
            "Type", ""
        ).startswith("List<")
        values[name] = [item.strip() for item in raw.split(",")] if is_list else raw
    return values


def _check(name: str, declaration: Mapping[str, Any], value: str) -> None:
    allowed = declaration.get("AllowedValues")
    if allowed is not None and value not in [as_template_string(item) for item in allowed]:
        raise ValueError(f"parameter {name}={value!r} is not one of {allowed}")
    pattern = declaration.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise ValueError(f"parameter {name}={value!r} does not match {pattern!r}")
    if declaration.get("Type") == "Number":
        number = float(value)
        if "MinValue" in declaration and number < float(declaration["MinValue"]):
            raise ValueError(f"parameter {name}={value} is below {declaration['MinValue']}")
        if "MaxValue" in declaration and number > float(declaration["MaxValue"]):
            raise ValueError(f"parameter {name}={value} is above {declaration['MaxValue']}")
