"""Handlers that only read DynamoDB must not pay for importing the OpenAI SDK."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

IMPORTS_OPENAI = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("app", "functions/api/app.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print("openai" in sys.modules)
"""


def test_api_function_does_not_import_the_openai_sdk() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS_OPENAI],
        cwd=REPO,
        env={"PYTHONPATH": f"{REPO / 'layers' / 'threadline'}:{REPO}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"
