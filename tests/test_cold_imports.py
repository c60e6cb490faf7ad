"""Handlers that only read DynamoDB must not pay for importing the OpenAI SDK."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

IMPORTS_OPENAI = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("app", "functions/{function}/app.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print("openai" in sys.modules)
"""


@pytest.mark.parametrize("function", ["api", "finish_run", "hand_off_run"])
def test_functions_that_need_no_openai_do_not_import_its_sdk(function: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS_OPENAI.replace("{function}", function)],
        cwd=REPO,
        # As Lambda has it: the function's code directory and the layer's package on the path.
        env={
            "PYTHONPATH": ":".join(
                str(path)
                for path in (REPO / "functions" / function, REPO / "layers" / "threadline", REPO)
            ),
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"


def test_run_steps_build_no_client_until_a_step_needs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """CheckRun and CancelRun never touch DynamoDB or S3: their cold start must not pay for
    those clients (boto3's DynamoDB resource alone costs ~90 ms to build)."""
    from threadline import runtime

    monkeypatch.setenv("TABLE_NAME", "threadline-table")
    monkeypatch.setenv("BUCKET_NAME", "threadline-files")
    root = runtime.reset()
    try:
        runtime.current().run_steps()
        assert root.built() & {"table", "s3_client", "backend", "backend_client"} == set()
    finally:
        runtime.reset()
