"""Cold start: every function's handler import, in fresh interpreters set up as Lambda sets
them up, next to importing only the third-party modules that import pulled in."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.template_facts import FunctionFacts, functions, global_function_setting, layer_dirs
from local.stack_session import REPO

PROBE = Path(__file__).with_name("import_probe.py")
REGION = "us-east-1"
# Functions that must not load the OpenAI SDK when imported: the API answers most routes from
# DynamoDB (its OpenAI routes import the SDK when called); FinishRun and HandOffRun never call
# OpenAI.
MUST_NOT_IMPORT_OPENAI = ("ApiFunction", "FinishRunFunction", "HandOffRunFunction")


@dataclass(frozen=True)
class ColdStart:
    function: str
    import_ms: list[float]
    libraries_ms: list[float]
    libraries: list[str]  # top-level names of the third-party modules imported
    third_party_modules: int
    failed_library_imports: list[str]
    openai_at_import: bool

    @property
    def flagged(self) -> bool:
        return self.openai_at_import and self.function in MUST_NOT_IMPORT_OPENAI

    def as_json(self) -> dict[str, Any]:
        return {
            "import_ms_median": round(statistics.median(self.import_ms), 1),
            "libraries_ms_median": round(statistics.median(self.libraries_ms), 1),
            "import_ms_samples": [round(sample, 1) for sample in self.import_ms],
            "libraries_ms_samples": [round(sample, 1) for sample in self.libraries_ms],
            "libraries": self.libraries,
            "third_party_modules": self.third_party_modules,
            "failed_library_imports": self.failed_library_imports,
            "openai_at_import": self.openai_at_import,
            "flagged_openai_at_import": self.flagged,
        }


def measure_cold_starts(repeats: int, *, warm_up: bool = True) -> list[ColdStart]:
    return [_measure(function, repeats, warm_up=warm_up) for function in functions()]


def _measure(function: FunctionFacts, repeats: int, *, warm_up: bool) -> ColdStart:
    environment = _lambda_environment(function)
    handler_arguments = ["handler", str(function.code_dir), function.handler_module]
    # The first import lists the modules; with `warm_up` it only warms the bytecode caches,
    # without it it is the first sample.
    first = _probe(handler_arguments, environment, function.code_dir)
    modules: list[str] = first["third_party_modules"]
    samples, library_samples = ([], []) if warm_up else ([first], [])
    for index in range(repeats):  # interleaved, so that background load hits both alike
        if warm_up or index > 0:
            samples.append(_probe(handler_arguments, environment, function.code_dir))
        library_samples.append(
            _probe(["libraries"], environment, function.code_dir, stdin="\n".join(modules))
        )
    return ColdStart(
        function=function.logical_id,
        import_ms=[sample["import_ms"] for sample in samples],
        libraries_ms=[sample["import_ms"] for sample in library_samples],
        libraries=sorted({module.partition(".")[0] for module in modules}),
        third_party_modules=len(modules),
        failed_library_imports=library_samples[0]["failed"],
        openai_at_import=first["openai_loaded"],
    )


def _probe(
    arguments: list[str], environment: dict[str, str], cwd: Path, stdin: str = ""
) -> dict[str, Any]:
    """Run the probe in a fresh interpreter, in the function's directory (Lambda's cwd)."""
    completed = subprocess.run(
        [sys.executable, "-P", str(PROBE), *arguments],
        input=stdin,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"import probe {arguments} in {cwd} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _lambda_environment(function: FunctionFacts) -> dict[str, str]:
    """What the Lambda runtime sets that changes what imports do (tracing is on in a function:
    Powertools patches libraries when it sees LAMBDA_TASK_ROOT), plus the template's literal
    Globals variables; the code and layer paths are on PYTHONPATH, and the assistants folder
    (which the build puts in the layer) is named."""
    template_variables = global_function_setting("Environment")["Variables"]
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(str(path) for path in layer_dirs()),
        "ASSISTANTS_DIR": str(REPO / "assistants"),
        "LAMBDA_TASK_ROOT": str(function.code_dir),
        "AWS_LAMBDA_FUNCTION_NAME": function.logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        **{name: value for name, value in template_variables.items() if isinstance(value, str)},
    }
