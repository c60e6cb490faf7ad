"""The same stack against a moto server (boto3 pointed at it through AWS_ENDPOINT_URL)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from local.aws import LocalStack, install, provision
from tests.local_aws.conftest import FIXTURES, REGION
from tests.local_aws.executions import run_to_end, stop_running_executions


@pytest.fixture
def server_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MOTO_PORT", str(port))  # where moto's Step Functions parser calls Lambda
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # What POST /moto-api/config does, for the server thread in this process.
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    try:
        stack = provision(FIXTURES / "template.yaml", stack_name="served")
        for name, value in stack.environment().items():
            monkeypatch.setenv(name, value)
        with install(stack.registry):
            try:
                yield stack
            finally:
                stop_running_executions(stack)
    finally:
        server.stop()


def test_state_machine_runs_against_a_moto_server(server_stack: LocalStack) -> None:
    execution = run_to_end(
        server_stack.state_machines["RunStateMachine"],
        {"run_id": "served", "transient_failures": 1},
        "served",
        REGION,
    )

    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["attempts"] == 2
    assert server_stack.invoke("PrepareFunction", {})["greeting"] == "hello"
