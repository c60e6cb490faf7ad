"""A whole local Threadline per backend: moto from template.yaml, the real ASL and handlers,
and the local OpenAI server over HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from local.stack_session import LocalThreadline, local_threadline
from tests.integration.lambda_api import Client
from threadline import runtime
from threadline.ids import new_id
from threadline.threads.records import Thread


@pytest.fixture(scope="module", params=["responses", "assistants"])
def product(request: pytest.FixtureRequest) -> Iterator[LocalThreadline]:
    with local_threadline(parameters={"Backend": request.param}) as session:
        yield session


@dataclass
class RunDriver:
    """Starts runs the way the API does and waits for their executions."""

    product: LocalThreadline
    user_id: str

    def new_thread(self) -> Thread:
        backend = runtime.current().backend()
        thread, _ = (
            runtime.current()
            .thread_creator()
            .get_or_create(
                self.user_id,
                new_id("purpose"),
                reuse_for=timedelta(hours=1),
                backend=backend.name,
                create_remote=backend.create_thread,
                delete_remote=backend.delete_thread,
            )
        )
        return thread

    def start(self, thread: Thread, message: str, **extra: Any) -> str:
        return self.product.start_run(thread.thread_id, self.user_id, message, **extra)

    def run(self, thread: Thread, message: str, **extra: Any) -> tuple[dict[str, Any], Any]:
        description = self.product.wait_for_execution(self.start(thread, message, **extra))
        run_id = description["name"]
        return description, runtime.current().run_store().get(thread.thread_id, run_id)


@pytest.fixture
def driver(product: LocalThreadline) -> RunDriver:
    assert product.openai is not None
    product.openai.script.clear()
    product.openai.faults.clear()
    product.openai.latency_seconds = 0
    return RunDriver(product=product, user_id=new_id("user"))


@pytest.fixture
def alice(product: LocalThreadline) -> Client:
    """A user calling the HTTP API through its Lambda, the model's script emptied."""
    assert product.openai is not None
    product.openai.script.clear()
    return Client(product, new_id("alice"))
