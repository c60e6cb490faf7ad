"""template.yaml is valid SAM, and every function it declares points at real code."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, template

FUNCTIONS = {
    name: resource["Properties"]
    for name, resource in template()["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
}


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(REPO / ".tools" / "bin")) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run `make dev`")
    return found


def test_cfn_lint_is_clean() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "template.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes_offline() -> None:
    result = subprocess.run(
        [_tool("sam"), "validate", "--lint", "--template", "template.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "HOME": str(REPO)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_function_handler_resolves_to_a_callable(logical_id: str) -> None:
    properties = FUNCTIONS[logical_id]
    module_name, _, attribute = properties["Handler"].rpartition(".")
    source = REPO / properties["CodeUri"] / f"{module_name}.py"
    assert source.is_file(), f"{logical_id}: {source} does not exist"
    spec = importlib.util.spec_from_file_location(f"handler_under_test_{logical_id}", source)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(getattr(module, attribute, None)), f"{logical_id}: no {attribute} in {source}"


def test_state_machine_substitutions_are_all_declared() -> None:
    machine = template()["Resources"]["RunStateMachine"]["Properties"]
    definition = (REPO / machine["DefinitionUri"]).read_text()
    used = {part.split("}")[0] for part in definition.split("${")[1:]}
    assert used == set(machine["DefinitionSubstitutions"]), "undeclared or unused substitutions"
    json.loads(definition)


def test_asl_validator_accepts_the_state_machine() -> None:
    validator = REPO / ".tools" / "node_modules" / ".bin" / "asl-validator"
    if not validator.exists():
        pytest.fail("asl-validator is not installed: run `make dev`")
    result = subprocess.run(
        [str(validator), "--no-arn-check", "--json-path", "statemachine/run.asl.json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_layer_requirements_match_the_lock() -> None:
    """The layer ships what uv.lock pins (regenerate with `make requirements`)."""
    result = subprocess.run(
        [
            _tool("uv"),
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--no-emit-package",
            "boto3",
            "--no-emit-package",
            "botocore",
            "--no-emit-package",
            "s3transfer",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    shipped = (REPO / "layers" / "threadline" / "requirements.txt").read_text()
    assert shipped.split() == result.stdout.split()


def test_dashboard_body_is_json() -> None:
    body = template()["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    assert {widget["type"] for widget in widgets} == {"metric", "alarm"}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_has_a_sample_event(logical_id: str) -> None:
    """`sam local invoke <Function> -e events/<dir>.json` works for every function."""
    code_dir = Path(FUNCTIONS[logical_id]["CodeUri"]).name
    event = REPO / "events" / f"{code_dir}.json"
    assert event.is_file(), f"{logical_id}: add {event.relative_to(REPO)}"
    assert json.loads(event.read_text())
