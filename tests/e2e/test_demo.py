"""`make demo` end to end: the story over HTTP against the local stack must hold."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.e2e
def test_demo_story_holds() -> None:
    environment = {**os.environ, "PYTHONPATH": f"{REPO / 'layers' / 'threadline'}:{REPO}"}
    environment.pop("OPENAI_API_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", "local.demo"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The story held" in result.stdout
    assert result.stdout.count("ok  run completed") == 5
    assert "queued, first in line, while the thread is busy" in result.stdout
    assert "ok  it started when the thread freed" in result.stdout
    assert "IngestUpload checked it and handed it to OpenAI (ingested)" in result.stdout
    assert "bob's stale thread is gone (404)" in result.stdout
    assert "bob's token -> 404" in result.stdout
    assert "bob cannot answer for alice (404)" in result.stdout
    assert "ok  the approved export ran" in result.stdout
    assert "woken by webhook" in result.stdout, "the demo runs in push mode by default"
    # How many pieces the answer arrives in depends on timing; their numbering does not.
    assert re.search(
        r"ok  (\d+) updates, numbered 1-\1, the last the run's final view", result.stdout
    )
