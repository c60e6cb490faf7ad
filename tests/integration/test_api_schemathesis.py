"""Property-based API testing from the committed OpenAPI document: whatever schemathesis
generates, valid or not and sent as any content type, the API answers without a 5xx, in the
shape the document promises, and refuses in the error shape."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from local.stack_session import LocalThreadline, local_threadline
from local.tokens import issue_token
from threadline.api_models import ErrorBody

# What clients send besides JSON, and made-up media types.
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=fuzz",
        "application/xml",
        "application/octet-stream",
    ]
) | st.from_regex(r"\A[a-z]{1,12}/[a-z0-9.+-]{1,24}(; ?[a-z]{1,8}=[a-z0-9-]{1,12})?\Z")


@pytest.fixture(scope="module")
def product() -> Iterator[LocalThreadline]:
    with local_threadline() as session:
        yield session


@pytest.fixture(scope="module")
def api_schema(product: LocalThreadline) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_wsgi("/openapi.json", product.http_api())


@pytest.fixture(scope="module")
def operations(api_schema: schemathesis.BaseSchema) -> list[schemathesis.APIOperation]:
    found = [result.ok() for result in api_schema.get_all_operations()]
    assert len(found) >= 9
    return found


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token('fuzzer')}"}


def refusals_in_the_error_shape(
    ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """Every 4xx and 5xx the API itself answers is `{"error": {"code", "message", ...}}`."""
    if response.status_code >= 400:
        assert response.headers.get("content-type", [""])[0].startswith("application/json")
        assert ErrorBody.model_validate_json(response.content).error.code
    return None


def test_no_5xx_and_responses_match_the_document(
    operations: list[schemathesis.APIOperation],
) -> None:
    headers = bearer()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8,
            deadline=None,
            derandomize=True,  # the same examples every run: a failure is reproducible
            suppress_health_check=list(HealthCheck),
        )
        def answers_well(case: schemathesis.Case) -> None:
            # Cursors are opaque tokens the schema cannot describe: a made-up one is rightly 400.
            case.call_and_validate(
                headers=headers,
                excluded_checks=[positive_data_acceptance],
                additional_checks=[refusals_in_the_error_shape],
            )

        answers_well()


@pytest.mark.parametrize("mode", list(GenerationMode))
def test_any_content_type_and_invalid_data_are_refused_in_the_error_shape(
    operations: list[schemathesis.APIOperation], mode: GenerationMode
) -> None:
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        refusals_in_the_error_shape,
    ]
    if mode.is_negative:
        checks.append(negative_data_rejection)
    auth = bearer()
    for operation in operations:
        inputs = (operation.path_parameters, operation.query, operation.headers, operation.body)
        if mode.is_negative and not any(inputs):
            continue  # nothing in it can be made invalid

        @given(case=operation.as_strategy(generation_mode=mode), content_type=CONTENT_TYPES)
        @settings(
            max_examples=8,
            deadline=None,
            derandomize=True,  # the same examples every run: a failure is reproducible
            suppress_health_check=list(HealthCheck),
        )
        def refused_well(case: schemathesis.Case, content_type: str) -> None:
            case.call_and_validate(headers=auth | {"Content-Type": content_type}, checks=checks)

        refused_well()
