"""What the benchmark reads from template.yaml: each function's code, handler and memory
(as the SAM transform deploys them), the Globals, the layers and the parameters' defaults."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from local.aws.sam_translation import transformed
from local.aws.template import load_template
from local.stack_session import REPO, TEMPLATE


@dataclass(frozen=True)
class FunctionFacts:
    logical_id: str
    code_dir: Path
    handler_module: str  # "app" for Handler: app.handler
    memory_mb: int


@cache
def _template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@cache
def _deployed() -> dict[str, Any]:
    return transformed(TEMPLATE, {}, "us-east-1")["Resources"]


def functions() -> list[FunctionFacts]:
    """Every function of the template, in template order."""
    return [
        FunctionFacts(
            logical_id=logical_id,
            code_dir=REPO / resource["Properties"]["Code"]["S3Key"],
            handler_module=resource["Properties"]["Handler"].rpartition(".")[0],
            memory_mb=int(resource["Properties"]["MemorySize"]),
        )
        for logical_id, resource in _deployed().items()
        if resource["Type"] == "AWS::Lambda::Function"
    ]


def global_function_setting(name: str) -> Any:
    """A setting of the template's Globals.Function section (e.g. MemorySize)."""
    return _template()["Globals"]["Function"][name]


def parameter_default(name: str) -> str:
    return str(_template()["Parameters"][name]["Default"])


def layer_dirs() -> list[Path]:
    """Where the template's layers' code is (on Lambda, under /opt/python)."""
    return [
        REPO / resource["Properties"]["Content"]["S3Key"]
        for resource in _deployed().values()
        if resource["Type"] == "AWS::Lambda::LayerVersion"
    ]
