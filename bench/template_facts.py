"""What the benchmark reads from template.yaml: each function's code, handler and memory
(Globals applied), the Globals themselves, the layers and the parameters' defaults."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from local.aws.template import apply_globals, load_template
from local.stack_session import REPO, TEMPLATE

SERVERLESS_FUNCTION = "AWS::Serverless::Function"


@dataclass(frozen=True)
class FunctionFacts:
    logical_id: str
    code_dir: Path
    handler_module: str  # "app" for Handler: app.handler
    memory_mb: int


@cache
def _template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def functions() -> list[FunctionFacts]:
    """Every function of the template, in template order."""
    resources = apply_globals(_template())
    return [
        FunctionFacts(
            logical_id=logical_id,
            code_dir=REPO / resource["Properties"]["CodeUri"],
            handler_module=resource["Properties"]["Handler"].rpartition(".")[0],
            memory_mb=int(resource["Properties"]["MemorySize"]),
        )
        for logical_id, resource in resources.items()
        if resource["Type"] == SERVERLESS_FUNCTION
    ]


def global_function_setting(name: str) -> Any:
    """A setting of the template's Globals.Function section (e.g. MemorySize)."""
    return _template()["Globals"]["Function"][name]


def parameter_default(name: str) -> str:
    return str(_template()["Parameters"][name]["Default"])


def layer_dirs() -> list[Path]:
    """Where the template's layers' code is (on Lambda, under /opt/python)."""
    return [
        REPO / resource["Properties"]["ContentUri"]
        for resource in _template()["Resources"].values()
        if resource["Type"] == "AWS::Serverless::LayerVersion"
    ]
