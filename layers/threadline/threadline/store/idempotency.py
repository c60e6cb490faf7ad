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

`Idempotency` is the one helper every caller uses (the state tasks through `once`, the API's
run starts, the webhook): built once per cold start by the runtime, it keeps one persistence
layer and one configuration per `Once` (Powertools configures a layer once, with the first
function's key settings, so a layer serves one kind of record only).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from pydantic import BaseModel

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb import DynamoDBClient

ResultT = TypeVar("ResultT", bound=BaseModel)
FunctionT = TypeVar("FunctionT", bound=Callable[..., Any])
RESULT_RETENTION_SECONDS = 24 * 3600

# The invocation's Lambda context: per invocation (a contextvars context each, locally), so
# configurations shared for the cold start never read another invocation's remaining time.
_lambda_context: ContextVar[LambdaContext | None] = ContextVar("lambda_context", default=None)


@dataclass(frozen=True)
class Once:
    """One kind of idempotency record: its key prefix (part of every stored key, so it must
    never change while records live), the JMESPath of its key in the data, and its TTL."""

    key_prefix: str
    key_path: str
    expires_after_seconds: int = RESULT_RETENTION_SECONDS
    payload_path: str = ""  # with it, a request of the same key must have the same payload
    raise_on_no_key: bool = True


class _InvocationConfig(IdempotencyConfig):
    """A configuration built once whose Lambda context is the current invocation's."""

    @property
    def lambda_context(self) -> LambdaContext | None:
        return _lambda_context.get()

    @lambda_context.setter
    def lambda_context(self, context: LambdaContext | None) -> None:
        if context is not None:  # the base initialiser sets None: keep the invocation's
            _lambda_context.set(context)


class Idempotency:
    """Powertools idempotency on the table, one layer and configuration per `Once`, each
    built on first use."""

    def __init__(self, *, dynamodb: Callable[[], DynamoDBClient], table_name: str) -> None:
        self._dynamodb = dynamodb
        self._table_name = table_name
        self._built: dict[Once, tuple[DynamoDBPersistenceLayer, IdempotencyConfig]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def register_lambda_context(context: LambdaContext) -> None:
        """The invocation's context, so a record left by a timed-out invocation expires
        with it."""
        _lambda_context.set(context)

    def guard(
        self,
        function: FunctionT,
        once: Once,
        *,
        data_keyword: str,
        result_type: type[BaseModel] | None = None,
    ) -> FunctionT:
        """`function` made idempotent on `once.key_path` of its `data_keyword` argument."""
        persistence, config = self._layer(once)
        guarded: FunctionT = idempotent_function(
            function,
            data_keyword_argument=data_keyword,
            persistence_store=persistence,
            config=config,
            output_serializer=None
            if result_type is None
            else PydanticSerializer(model=result_type),
            key_prefix=once.key_prefix,
        )
        return guarded

    def _layer(self, once: Once) -> tuple[DynamoDBPersistenceLayer, IdempotencyConfig]:
        with self._lock:
            if once not in self._built:
                persistence = DynamoDBPersistenceLayer(
                    boto3_client=self._dynamodb(),
                    table_name=self._table_name,
                    key_attr="PK",
                    sort_key_attr="SK",
                    expiry_attr="expires_at",
                )
                config = _InvocationConfig(
                    event_key_jmespath=once.key_path,
                    payload_validation_jmespath=once.payload_path,
                    raise_on_no_idempotency_key=once.raise_on_no_key,
                    expires_after_seconds=once.expires_after_seconds,
                )
                self._built[once] = (persistence, config)
            return self._built[once]


def once(
    step: Callable[..., ResultT],
    *,
    name: str,
    key_path: str,
    result_type: type[ResultT],
    data_keyword: str,
    context: LambdaContext,
) -> Callable[..., ResultT]:
    """`step` made idempotent on the JMESPath `key_path` of its `data_keyword` argument, with
    the runtime's helper; records keyed `name#<hash>`.

    The Lambda context lets a record left by a timed-out invocation expire with it.
    """
    from threadline import runtime

    helper = runtime.current().idempotency()
    helper.register_lambda_context(context)
    return helper.guard(
        step,
        Once(key_prefix=name, key_path=key_path),
        data_keyword=data_keyword,
        result_type=result_type,
    )
