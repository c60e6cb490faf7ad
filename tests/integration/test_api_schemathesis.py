"""Property-based API testing from the committed OpenAPI document: whatever schemathesis
generates, the API answers without a 5xx and in the shape the document promises."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from local.http_api import LocalHttpApi
from local.stack_session import LocalThreadline, local_threadline
from local.tokens import issue_token


@pytest.fixture(scope="module")
def product() -> Iterator[LocalThreadline]:
    with local_threadline() as session:
        yield session


@pytest.fixture(scope="module")
def api_schema(product: LocalThreadline) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_wsgi("/openapi.json", LocalHttpApi(product))


def test_no_5xx_and_responses_match_the_document(api_schema: schemathesis.BaseSchema) -> None:
    headers = {"Authorization": f"Bearer {issue_token('fuzzer')}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 9

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
        def answers_well(case: schemathesis.Case) -> None:
            # Cursors are opaque tokens the schema cannot describe: a made-up one is rightly 400.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        answers_well()
