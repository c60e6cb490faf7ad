"""Evaluate CloudFormation intrinsic functions against parameters, conditions and the
resources provisioned so far."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.aws.template import is_intrinsic

_SUB_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_NO_VALUE = object()  # what AWS::NoValue evaluates to: the enclosing key or item disappears


@dataclass(frozen=True)
class ProvisionedResource:
    """What `Ref` and `Fn::GetAtt` return for one created resource."""

    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)


def as_template_string(value: Any) -> str:
    """CloudFormation's string form of a scalar (YAML `true` is "true", not "True")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# Intrinsic functions of their (resolved) argument.
_FUNCTIONS_OF_VALUES: dict[str, Callable[[Any], Any]] = {
    "Fn::Join": lambda args: args[0].join(as_template_string(item) for item in args[1]),
    "Fn::Select": lambda args: args[1][int(args[0])],
    "Fn::Split": lambda args: args[1].split(args[0]),
    "Fn::Equals": lambda args: as_template_string(args[0]) == as_template_string(args[1]),
    "Fn::Not": lambda args: not args[0],
    "Fn::And": all,
    "Fn::Or": any,
    "Fn::Base64": lambda text: base64.b64encode(text.encode()).decode(),
    "Fn::ToJsonString": lambda value: json.dumps(value, separators=(",", ":")),
}


class Resolver:
    """Resolves intrinsics; resources become resolvable once `add_resource` recorded them."""

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any],
        pseudo_parameters: Mapping[str, Any],
        condition_definitions: Mapping[str, Any],
        mappings: Mapping[str, Any],
    ) -> None:
        self._names: dict[str, Any] = {**pseudo_parameters, **parameters}
        self._mappings = mappings
        self._resources: dict[str, ProvisionedResource] = {}
        self._condition_definitions = condition_definitions
        self._conditions: dict[str, bool] = {}

    def add_resource(self, logical_id: str, resource: ProvisionedResource) -> None:
        self._resources[logical_id] = resource

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self._condition_definitions:
                raise ValueError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self.resolve(self._condition_definitions[name]))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic function evaluated."""
        resolved = self._resolve(value)
        return None if resolved is _NO_VALUE else resolved

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = (self._resolve(item) for item in value)
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if is_intrinsic(value):
            ((function, argument),) = value.items()
            return self._call(function, argument)
        entries = ((key, self._resolve(item)) for key, item in value.items())
        return {key: item for key, item in entries if item is not _NO_VALUE}

    def _call(self, function: str, argument: Any) -> Any:
        # These see their argument unresolved: it names things, or must be evaluated lazily.
        special: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Condition": self.condition,
            "Fn::GetAtt": self._get_att_call,
            "Fn::Sub": self._sub,
            "Fn::If": self._if,
            "Fn::FindInMap": self._find_in_map,
            "Fn::GetAZs": self._get_azs,
        }
        if function in special:
            return special[function](argument)
        if function in _FUNCTIONS_OF_VALUES:
            return _FUNCTIONS_OF_VALUES[function](self._resolve(argument))
        raise ValueError(f"intrinsic function {function} is not supported locally")

    def _get_att_call(self, argument: str | list[Any]) -> str:
        logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
        return self._get_att(self._resolve(logical_id), self._resolve(attribute))

    def _if(self, argument: list[Any]) -> Any:
        condition_name, if_true, if_false = argument
        return self._resolve(if_true if self.condition(condition_name) else if_false)

    def _find_in_map(self, argument: list[Any]) -> Any:
        map_name, top_key, second_key = self._resolve(argument)
        return self._mappings[map_name][top_key][second_key]

    def _get_azs(self, argument: Any) -> list[str]:
        region = self._resolve(argument) or self._names["AWS::Region"]
        return [f"{region}{zone}" for zone in "abc"]

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self._names:
            return self._names[name]
        if name in self._resources:
            return self._resources[name].ref
        raise ValueError(f"Ref to {name!r}, which is neither a parameter nor a created resource")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        if logical_id not in self._resources:
            raise ValueError(f"GetAtt on {logical_id!r}, which is not a created resource")
        attributes = self._resources[logical_id].attributes
        if attribute not in attributes:
            raise ValueError(f"{logical_id} has no attribute {attribute!r} locally")
        return attributes[attribute]

    def _sub(self, argument: str | list[Any]) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {name: self._resolve(value) for name, value in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # `${!Literal}` escapes a literal `${Literal}`
                return "${" + name[1:] + "}"
            if name in values:
                return as_template_string(values[name])
            if name in self._names or "." not in name:
                return as_template_string(self._ref(name))
            logical_id, attribute = name.split(".", 1)
            return self._get_att(logical_id, attribute)

        return _SUB_PLACEHOLDER.sub(substitute, text)
