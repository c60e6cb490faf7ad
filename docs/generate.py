"""Write the docs site's generated parts from the files they describe.

    python -m docs.generate            writes .local/docs/*.md (`make docs` runs it first)
    python -m docs.generate --bench    also copies the last bench's figures into the snapshot

The pages include these parts with snippets (`--8<-- ".local/docs/configuration.md"`).
Each is made from its source on every build, so none can go stale:

- configuration.md: template.yaml's Parameters and the environment variables they reach.
- run-machine.md, express-machine.md: the state machines as Mermaid, from their ASL.
- http-api.md: the HTTP API, from docs/openapi.json.
- cost.md: the bench's cost table, from bench/results/latest.json or the committed snapshot.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from local.aws.template import load_template

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / ".local" / "docs"
TEMPLATE = REPO / "template.yaml"
MACHINES = {
    "run-machine.md": REPO / "statemachine" / "run.asl.json",
    "express-machine.md": REPO / "statemachine" / "run_express.asl.json",
}
OPENAPI = REPO / "docs" / "openapi.json"
BENCH_RESULTS = REPO / "bench" / "results" / "latest.json"
BENCH_SNAPSHOT = REPO / "docs" / "bench-results.json"

ALL_FUNCTIONS = "every function"
# A Catch edge names its errors when there are this few; more go in the list under the drawing.
CATCH_NAMES_ON_EDGE = 2
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
LOOPS = {"seed_loop_512": "loop 512 MB", "seed_loop_256": "loop 256 MB"}
THREADLINE = "threadline"
MEASURED = "\\*"  # a star, escaped: Markdown would read two in a cell as emphasis


def _cell(text: object) -> str:
    """Text that fits one cell of a Markdown table: one line, its pipes escaped (but in code
    spans, where the table reads them as code and an escape would show)."""
    parts = re.split(r"(`[^`]*`)", " ".join(str(text).split()))
    return "".join(p if p.startswith("`") else p.replace("|", "\\|") for p in parts)


def _code(text: object) -> str:
    return f"`{text}`"


# Configuration ----------------------------------------------------------------------------------


def _references(value: Any) -> Iterator[str]:
    """The names every `Ref` inside a template value refers to."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and isinstance(value["Ref"], str):
            yield value["Ref"]
        for inner in value.values():
            yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def environment_variables(template: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Parameter -> the (variable, where) pairs whose value refers to it, `where` being
    ALL_FUNCTIONS for the Globals or a function's logical id."""
    found: dict[str, list[tuple[str, str]]] = {}
    scopes = [(ALL_FUNCTIONS, template.get("Globals", {}).get("Function", {}))]
    scopes += [
        (name, resource.get("Properties", {}))
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]
    for where, properties in scopes:
        variables = properties.get("Environment", {}).get("Variables", {})
        for variable, value in variables.items():
            for parameter in dict.fromkeys(_references(value)):
                if parameter in template["Parameters"]:
                    found.setdefault(parameter, []).append((variable, where))
    return found


def _allowed(parameter: dict[str, Any]) -> str:
    if "AllowedValues" in parameter:
        return ", ".join(_code(value) for value in parameter["AllowedValues"])
    low, high = parameter.get("MinValue"), parameter.get("MaxValue")
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"at least {low}"
    if high is not None:
        return f"at most {high}"
    if "AllowedPattern" in parameter:
        return _code(parameter["AllowedPattern"])
    return ""


def _variables(pairs: list[tuple[str, str]]) -> str:
    by_variable: dict[str, list[str]] = {}
    for variable, where in pairs:
        by_variable.setdefault(variable, []).append(where)
    return "<br>".join(
        _code(variable)
        + ("" if wheres == [ALL_FUNCTIONS] else f" ({', '.join(w for w in wheres)})")
        for variable, wheres in by_variable.items()
    )


def configuration_table(template: dict[str, Any]) -> str:
    """One row per parameter, in the template's order: its name over the environment variables
    it reaches, its default over what it allows, and its description."""
    variables = environment_variables(template)
    lines = ["| Parameter | Default | Description |", "|---|---|---|"]
    for name, parameter in template["Parameters"].items():
        default = parameter.get("Default")
        cells = [
            "<br>".join(filter(None, [_code(name), _variables(variables.get(name, []))])),
            "<br>".join(
                filter(
                    None,
                    ["empty" if default in (None, "") else _code(default), _allowed(parameter)],
                )
            ),
            parameter.get("Description", ""),
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


# State machines ---------------------------------------------------------------------------------

_SHAPES = {
    "Task": '["{}"]',
    "Pass": '["{}"]',
    "Choice": '{{"{}"}}',
    "Wait": '[/"{}"/]',
    "Succeed": '(["{}"])',
    "Fail": '(["{}"])',
}
_ERROR_NAMES = {"States.ALL": "any error", "States.Timeout": "timeout"}


def _node(name: str) -> str:
    return "s_" + re.sub(r"\W", "_", name)


def _condition(choice: dict[str, Any]) -> str:
    """A short label for a Choice rule: the value compared, or what is tested."""
    if "Condition" in choice:  # JSONata
        return str(choice["Condition"])
    field = str(choice.get("Variable", "")).removeprefix("$.")
    for operator, value in choice.items():
        if operator in {"Variable", "Next"}:
            continue
        if operator == "IsPresent":
            return f"{field} set" if value else f"no {field}"
        if operator.endswith("Equals") and not operator.endswith("PathEquals"):
            return str(value)
        return f"{field} {operator} {value}"
    return field


def _catch_label(errors: list[str]) -> str:
    if len(errors) <= CATCH_NAMES_ON_EDGE:
        return ", ".join(_ERROR_NAMES.get(error, error) for error in errors)
    return f"{len(errors)} errors"


def edges(definition: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(from, to, label, is_catch) for every transition of the definition's states."""
    found: list[tuple[str, str, str, bool]] = []
    for name, state in definition["States"].items():
        kind = state["Type"]
        if kind not in _SHAPES:
            raise ValueError(f"{name}: a {kind} state cannot be drawn yet")
        for choice in state.get("Choices", []):
            found.append((name, choice["Next"], _condition(choice), False))
        if "Default" in state:
            found.append((name, state["Default"], "otherwise", False))
        if "Next" in state:
            found.append((name, state["Next"], "", False))
        for catch in state.get("Catch", []):
            found.append((name, catch["Next"], _catch_label(catch["ErrorEquals"]), True))
    return found


def state_machine_diagram(definition: dict[str, Any]) -> str:
    """A Mermaid flowchart: every state a node, every Next, Default, Choice and Catch an edge
    (catches dashed), then the catches whose errors did not fit on their edge."""
    transitions = edges(definition)  # first: it refuses a state it cannot draw
    lines = ["```mermaid", "flowchart TD", "    start((start)) --> " + _node(definition["StartAt"])]
    for name, state in definition["States"].items():
        lines.append(f"    {_node(name)}{_SHAPES[state['Type']].format(name)}")
        if state["Type"] in {"Succeed", "Fail"}:
            lines.append(f"    class {_node(name)} {state['Type'].lower()}")
        if state.get("End"):
            lines.append(f"    {_node(name)} --> stop((end))")
    for source, target, label, is_catch in transitions:
        arrow = "-.->" if is_catch else "-->"
        text = f'|"{label}"|' if label else ""
        lines.append(f"    {_node(source)} {arrow}{text} {_node(target)}")
    lines += [
        "    classDef succeed fill:#d4edda,stroke:#2e7d32",
        "    classDef fail fill:#f8d7da,stroke:#c62828",
        "```",
        "",
    ]
    long_catches = [
        (name, catch)
        for name, state in definition["States"].items()
        for catch in state.get("Catch", [])
        if len(catch["ErrorEquals"]) > CATCH_NAMES_ON_EDGE
    ]
    if long_catches:
        lines.append("The catches drawn with a count of errors:")
        lines.append("")
        lines += [
            f"- {name} goes to {catch['Next']} on "
            + ", ".join(_code(error) for error in catch["ErrorEquals"])
            + "."
            for name, catch in long_catches
        ]
        lines.append("")
    return "\n".join(lines)


# HTTP API ---------------------------------------------------------------------------------------


def _anchor(schema: str) -> str:
    return "schema-" + schema.lower()


def _schema_type(schema: dict[str, Any]) -> str:
    """A short name for a JSON schema's type, with links to the named schemas."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#{_anchor(name)})"
    if "anyOf" in schema:
        kinds = [_schema_type(option) for option in schema["anyOf"]]
        return " or ".join(dict.fromkeys(kinds))
    if "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        return " or ".join(_code(json.dumps(value)) for value in values)
    return _plain_type(schema)


def _plain_type(schema: dict[str, Any]) -> str:
    """A scalar with its bounds, an array of its items, or an object of its values."""
    kind = str(schema.get("type", "any"))
    limits = _limits(schema)
    if limits:
        return f"{kind} ({limits})"
    if kind == "array":
        return "array of " + _schema_type(schema.get("items", {}))
    extra = schema.get("additionalProperties")
    if kind == "object" and isinstance(extra, dict) and extra:
        return "object of " + _schema_type(extra)
    return kind


def _limits(schema: dict[str, Any]) -> str:
    """A value's bounds: its range, length or pattern."""
    shown = []
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None or high is not None:
        shown.append(f"{low:g} to {high:g}" if low is not None and high is not None else "")
        if low is None or high is None:
            shown[-1] = f"at least {low:g}" if low is not None else f"at most {high:g}"
    if "maxLength" in schema:
        shown.append(f"at most {schema['maxLength']:,} characters")
    if "pattern" in schema:
        shown.append(f"`{schema['pattern']}`")
    return ", ".join(shown)


def _body_schema(content: dict[str, Any]) -> str:
    for media in content.values():
        schema = media.get("schema")
        if schema and schema.get("type") != "null":
            return _schema_type(schema)
    return ""


def _parameters_table(parameters: list[dict[str, Any]]) -> list[str]:
    lines = ["| Parameter | In | Required | Type | Description |", "|---|---|---|---|---|"]
    for parameter in parameters:
        cells = [
            _code(parameter["name"]),
            parameter["in"],
            "yes" if parameter.get("required") else "no",
            _schema_type(parameter.get("schema", {})),
            parameter.get("description", parameter.get("schema", {}).get("description", "")),
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return [*lines, ""]


def _responses(responses: dict[str, Any]) -> list[str]:
    """The success answers one by one; the errors on one line, as they share one shape."""
    lines = []
    errors: dict[str, list[str]] = {}
    for status, response in responses.items():
        schema = _body_schema(response.get("content", {}))
        if status.startswith(("4", "5")):
            errors.setdefault(schema, []).append(status)
            continue
        answer = f"- `{status}` {response.get('description', '')}"
        lines.append(answer + (f": {schema}" if schema else ""))
    for schema, statuses in errors.items():
        lines.append(f"- Errors {', '.join(_code(s) for s in statuses)}: {schema or 'no body'}")
    return [*lines, ""]


def _operation(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    lines = [f"#### `{method.upper()} {path}`", ""]
    if operation.get("summary"):
        lines += [operation["summary"] + ".", ""]
    if operation.get("description"):
        lines += [operation["description"], ""]
    if operation.get("parameters"):
        lines += _parameters_table(operation["parameters"])
    body = operation.get("requestBody")
    if body:
        lines += [f"Request body: {_body_schema(body.get('content', {}))}", ""]
    return lines + _responses(operation.get("responses", {}))


def _schema_section(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"#### {name} {{#{_anchor(name)}}}", ""]
    if schema.get("description"):
        lines += [" ".join(schema["description"].split()), ""]
    properties = schema.get("properties", {})
    if not properties:
        return [*lines, f"Type: {_schema_type(schema)}.", ""]
    required = set(schema.get("required", []))
    lines += ["| Field | Type | Required | Description |", "|---|---|---|---|"]
    for field, spec in properties.items():
        description = spec.get("description", "")
        if "default" in spec and spec["default"] is not None:
            description = f"{description} Default: `{json.dumps(spec['default'])}`.".strip()
        cells = [_code(field), _schema_type(spec), "yes" if field in required else "no"]
        lines.append("| " + " | ".join(_cell(c) for c in [*cells, description]) + " |")
    return [*lines, ""]


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(METHOD, path) of every operation, in the document's order."""
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in HTTP_METHODS
        if method in item
    ]


def api_reference(document: dict[str, Any]) -> str:
    """Every operation, then the callbacks sent to clients, then every named schema."""
    lines = ["### Operations", ""]
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                lines += _operation(method, path, item[method])
    webhooks = document.get("webhooks", {})
    if webhooks:
        lines += ["### Requests Threadline sends", ""]
        for name, item in webhooks.items():
            for method in HTTP_METHODS:
                if method in item:
                    lines += _operation(method, f"{{callback_url}} ({name})", item[method])
    lines += ["### Schemas", ""]
    for name, schema in document["components"]["schemas"].items():
        lines += _schema_section(name, schema)
    return "\n".join(lines)


# Cost -------------------------------------------------------------------------------------------


def _usd(value: float) -> str:
    """Two significant figures under a dollar, three from there (0.034, 0.40, 2.00, 24.0)."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:#.2g}" if value < 1 else f"{value:#.3g}"


def _figures(cells: list[dict[str, Any]]) -> str:
    """One cell's costs for each tool-round count; one figure where they round the same."""
    shown = [_usd(c["cost_per_1000_runs_usd"]) + (MEASURED if c["measured"] else "") for c in cells]
    return shown[0] if len(set(shown)) == 1 else " / ".join(shown)


def cost_table(results: dict[str, Any]) -> str:
    """USD per 1,000 runs at each run length: the loop at two sizes, then Threadline's default
    design for each tool-round count, then the status calls of a run with the middle count."""
    rows = results["by_run_length"]
    rounds = sorted({row["tool_rounds"] for row in rows})
    middle = rounds[len(rounds) // 2]
    by_design: dict[str, dict[tuple[float, int], dict[str, Any]]] = {}
    for row in rows:
        by_design.setdefault(row["design"], {})[(row["run_length_s"], row["tool_rounds"])] = row
    ours = by_design[THREADLINE]
    loop = by_design["seed_loop_512"]
    rounds_label = " / ".join(str(count) for count in rounds)
    lines = [
        "| run length | "
        + " | ".join(LOOPS.values())
        + f" | Threadline, {rounds_label} tool rounds | status calls (loop) |",
        "|---|---|---|---|---|",
    ]
    for length in sorted({length for length, _ in ours}):
        loops = [_figures([by_design[d][(length, k)] for k in rounds]) for d in LOOPS]
        ours_cell = _figures([ours[(length, k)] for k in rounds])
        one, theirs = ours[(length, middle)], loop[(length, middle)]
        calls = f"{one['status_calls_per_run']:,} ({theirs['status_calls_per_run']:,})"
        lines.append(
            f"| {length:,g} s | "
            + " | ".join([*loops, ours_cell, calls + (MEASURED if one["measured"] else "")])
            + " |"
        )
    measured_on = str(results["generated_at"])[:10]
    return (
        "\n".join(lines)
        + f"\n\nMeasured on {measured_on}. A star ({MEASURED}) marks a figure measured on the"
        " local stack; the rest are modelled from the measured runs."
        f" The status calls are those of a run with {middle} tool round"
        + ("s.\n" if middle != 1 else ".\n")
    )


def bench_results() -> tuple[dict[str, Any], str]:
    """The last full bench's results where this checkout has them, else the snapshot; and
    which it is."""
    if BENCH_RESULTS.exists():
        latest = json.loads(BENCH_RESULTS.read_text())
        if latest.get("profile", {}).get("time_scale") == 1 and "by_run_length" in latest:
            return latest, "this checkout's last `make bench` (bench/results/latest.json)"
    return json.loads(BENCH_SNAPSHOT.read_text()), "the published run (docs/bench-results.json)"


def snapshot_bench() -> Path:
    """Copy the last full bench's figures that the docs show into the committed snapshot."""
    results, source = bench_results()
    if "latest.json" not in source:
        raise SystemExit("no full bench results to copy: run `make bench` first")
    keep = ("design", "run_length_s", "tool_rounds", "measured", "cost_per_1000_runs_usd")
    snapshot = {
        "generated_at": results["generated_at"],
        "by_run_length": [
            {key: row[key] for key in (*keep, "status_calls_per_run")}
            for row in results["by_run_length"]
            if row["design"] in {*LOOPS, THREADLINE}
        ],
    }
    BENCH_SNAPSHOT.write_text(json.dumps(snapshot, indent=1) + "\n")
    return BENCH_SNAPSHOT


# Writing ----------------------------------------------------------------------------------------


def pages() -> dict[str, str]:
    """File name under .local/docs -> its Markdown."""
    results, source = bench_results()
    written = {
        "configuration.md": configuration_table(load_template(TEMPLATE)),
        "http-api.md": api_reference(json.loads(OPENAPI.read_text())),
        "cost.md": cost_table(results) + f"\nSource: {source}.\n",
    }
    for name, path in MACHINES.items():
        written[name] = state_machine_diagram(json.loads(path.read_text()))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docs.generate", description=__doc__)
    parser.add_argument("--bench", action="store_true", help="refresh docs/bench-results.json")
    args = parser.parse_args(argv)
    if args.bench:
        print(f"wrote {snapshot_bench().relative_to(REPO)}")
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in pages().items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
