"""Whether a JSON schema is one OpenAI accepts for a strict function tool.

Strict mode takes a subset of JSON Schema (OpenAI's "Supported schemas"): the root is an
object; every object lists all its properties as required and sets additionalProperties to
false; types are string, number, integer, boolean, object, array and null, combined with
anyOf (not at the root); definitions and references are allowed; no `default`; at most 10
levels of nesting and 5,000 properties. A schema outside it is refused when the run starts, so it is
caught when the assistants are loaded instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MAX_NESTING = 10
MAX_PROPERTIES = 5000
_TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}
_UNSUPPORTED = {
    "default",  # the model sends every property: a default would never apply
    "allOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "patternProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "prefixItems",
    "contains",
}


def strict_schema_problems(schema: Any) -> list[str]:
    """What keeps `schema` from being strict-valid; empty when it is."""
    if not isinstance(schema, dict):
        return ["the schema must be a JSON object"]
    problems = []
    if schema.get("type") != "object" or "anyOf" in schema:
        problems.append("the root must be an object schema (type: object, not anyOf)")
    definitions = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    properties = 0
    for path, node, depth in _nodes(schema, "$", 0):
        problems.extend(_node_problems(path, node, depth, definitions))
        properties += len(node.get("properties", {}))
    if properties > MAX_PROPERTIES:
        problems.append(f"{properties} properties; at most {MAX_PROPERTIES} are allowed")
    return problems


def _nodes(
    node: dict[str, Any], path: str, depth: int
) -> Iterator[tuple[str, dict[str, Any], int]]:
    """Every subschema with its path and object nesting depth."""
    yield path, node, depth
    nested = depth + (node.get("type") == "object")
    for key, child in node.get("properties", {}).items():
        if isinstance(child, dict):
            yield from _nodes(child, f"{path}.properties.{key}", nested)
    for keyword in ("$defs", "definitions"):
        for key, child in node.get(keyword, {}).items():
            if isinstance(child, dict):
                yield from _nodes(child, f"{path}.{keyword}.{key}", 0)
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{path}.items", nested)
    for index, child in enumerate(node.get("anyOf", [])):
        if isinstance(child, dict):
            yield from _nodes(child, f"{path}.anyOf[{index}]", depth)


def _node_problems(
    path: str, node: dict[str, Any], depth: int, definitions: dict[str, Any]
) -> Iterator[str]:
    for keyword in sorted(_UNSUPPORTED & node.keys()):
        yield f"{path}: {keyword} is not supported in strict mode"
    if depth > MAX_NESTING:
        yield f"{path}: nested deeper than {MAX_NESTING} objects"
    reference = node.get("$ref")
    if reference is not None:
        name = str(reference).rpartition("/")[2]
        if reference != "#" and name not in definitions:
            yield f"{path}: $ref {reference} names no definition"
        return
    types = node.get("type")
    declared = types if isinstance(types, list) else [types] if types is not None else []
    if not declared and "anyOf" not in node and "enum" not in node and "const" not in node:
        yield f"{path}: needs a type"
    for unknown in sorted(str(each) for each in declared if each not in _TYPES):
        yield f"{path}: unknown type {unknown}"
    if "object" in declared or "properties" in node:
        if node.get("additionalProperties") is not False:
            yield f"{path}: objects need additionalProperties: false"
        listed = set(node.get("properties", {}))
        required = set(node.get("required", []))
        if listed != required:
            missing = ", ".join(sorted(listed - required)) or "none"
            yield f"{path}: every property must be required (not required: {missing})"
