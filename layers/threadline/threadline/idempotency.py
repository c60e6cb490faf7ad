"""Replay of the steps that create things remotely, once they have returned.

Step Functions retries a task when its Lambda fails. For StartRun and ProcessToolCalls a
retry of an invocation that returned (its result lost to a Lambda or Step Functions fault)
gets the first result back from the table, through Powertools idempotency, instead of
creating a second response.

This does not cover a step that raised: Powertools deletes the record then, and the retry
runs the step again, although its OpenAI create may have happened with the reply lost. That
is made safe where the remote objects are made (docs/reliability.md): a response is created
from the thread's head, so a second one is a branch nobody continues from, and the webhook
counts and records one whose reply was lost; an Assistants run is found again by its
metadata before another is created.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from pydantic import BaseModel

from threadline.settings import load_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ResultT = TypeVar("ResultT", bound=BaseModel)
RESULT_RETENTION_SECONDS = 24 * 3600


@cache
def _dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb")


def persistence() -> DynamoDBPersistenceLayer:
    """A new persistence layer per idempotent function: Powertools configures a layer once,
    with the first function's key settings, so layers must not be shared between functions."""
    return DynamoDBPersistenceLayer(
        boto3_client=_dynamodb(),
        table_name=load_settings().table_name,
        key_attr="PK",
        sort_key_attr="SK",
        expiry_attr="expires_at",
    )


def once(
    step: Callable[..., ResultT],
    *,
    name: str,
    key_path: str,
    result_type: type[ResultT],
    data_keyword: str,
    context: Any,
) -> Callable[..., ResultT]:
    """`step` made idempotent on the JMESPath `key_path` of its `data_keyword` argument.

    The Lambda context lets a record left by a timed-out invocation expire with it.
    """
    config = IdempotencyConfig(
        event_key_jmespath=key_path,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=RESULT_RETENTION_SECONDS,
    )
    config.register_lambda_context(context)
    return idempotent_function(
        step,
        data_keyword_argument=data_keyword,
        persistence_store=persistence(),
        config=config,
        output_serializer=PydanticSerializer(model=result_type),
        key_prefix=name,
    )
