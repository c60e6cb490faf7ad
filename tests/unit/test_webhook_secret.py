"""Whether OpenAI's webhooks reach the deployment (RunWaitMode auto) is read from its webhook
secret once per execution environment, also when the secret is missing: on AWS a missing
secret answers AccessDenied (the role's grant names `{name}-??????`), and a read per run
would cost every StartRun a failing call and a warning."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.secrets import SecretsProvider
from botocore.stub import Stubber

from threadline.runtime import Runtime
from threadline.settings import Settings

SECRET = "threadline/openai-webhook-secret"


class Secrets(Stubber):
    """Secrets Manager's stubbed answers, and how many reads were made."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.reads = 0
        client.meta.events.register(
            "provide-client-params.secrets-manager.GetSecretValue", self._count
        )

    def _count(self, **_: Any) -> None:
        self.reads += 1


@pytest.fixture
def secrets() -> Iterator[Secrets]:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    with Secrets(client) as stubber:
        saved = dict(parameters.base.DEFAULT_PROVIDERS)
        parameters.base.DEFAULT_PROVIDERS["secrets"] = SecretsProvider(boto3_client=client)
        try:
            yield stubber
        finally:
            parameters.base.DEFAULT_PROVIDERS.clear()
            parameters.base.DEFAULT_PROVIDERS.update(saved)


def runtime() -> Runtime:
    settings = Settings(table_name="table", bucket_name="bucket", webhook_secret_name=SECRET)
    return Runtime(settings=settings)


@pytest.mark.parametrize("code", ["AccessDeniedException", "ResourceNotFoundException"])
def test_a_missing_secret_is_asked_for_once_and_runs_poll(secrets: Secrets, code: str) -> None:
    for _ in range(3):
        secrets.add_client_error("get_secret_value", service_error_code=code)
    parts = runtime()
    assert [parts.webhooks_configured() for _ in range(3)] == [False, False, False]
    assert secrets.reads == 1


def test_a_secret_that_failed_otherwise_is_asked_for_again(secrets: Secrets) -> None:
    secrets.add_client_error("get_secret_value", service_error_code="ThrottlingException")
    secrets.add_response(
        "get_secret_value", {"Name": SECRET, "SecretString": "whsec_c2VjcmV0"}, {"SecretId": SECRET}
    )
    parts = runtime()
    assert parts.webhooks_configured() is False
    assert parts.webhooks_configured() is True
    assert secrets.reads == 2
