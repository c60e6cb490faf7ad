from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from local.aws import LocalStack, install, provision
from tests.local_aws.executions import stop_running_executions

FIXTURES = Path(__file__).parent / "fixtures"
REGION = "us-east-1"
MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    # Keep boto3's default session (and its parsed service models) across tests: recreating
    # it for every test costs about 0.5 s of JSON parsing.
    "core": {"mock_credentials": True, "reset_boto3_session": False},
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config=MOTO_CONFIG):
        yield


@contextmanager
def installed_stack(
    template: Path, stack_name: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalStack]:
    """A fixture template provisioned in moto, its handlers installed, its environment set."""
    provisioned = provision(template, stack_name=stack_name)
    for name, value in provisioned.environment().items():
        monkeypatch.setenv(name, value)
    with install(provisioned.registry):
        try:
            yield provisioned
        finally:
            stop_running_executions(provisioned)


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with installed_stack(FIXTURES / "template.yaml", "fixture", monkeypatch) as provisioned:
        yield provisioned
