"""Serving over real HTTP: `start_background` and `python -m local.openai_server`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openai

from local.openai_server import OpenAIServer

REPO = Path(__file__).resolve().parents[2]


def test_start_background_serves_the_sdk() -> None:
    server = OpenAIServer()
    base_url = server.start_background()
    try:
        client = openai.OpenAI(api_key="local", base_url=base_url, max_retries=0)
        assert client.responses.create(model="m", input="hi").output_text == "You said: hi"
    finally:
        server.stop()


def test_module_entry_point_answers_over_http() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "local.openai_server", "--port", "0", "--quiet"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = process.stdout.readline().strip()  # printed once it listens
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        client = openai.OpenAI(api_key="local", base_url=base_url, max_retries=0)
        assert client.conversations.create().object == "conversation"
    finally:
        process.terminate()
        process.wait(timeout=5)
