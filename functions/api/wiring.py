"""The API's domain services, built once per execution environment on first use from the
runtime's providers (tests swap a service by clearing its cache and patching the provider).

The idempotency configuration is this environment's: the handler registers each
invocation's Lambda context on it.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

from threadline import runtime
from threadline.run_requests import RunStarter
from threadline.run_service import RunService
from threadline.settings import load_api_settings
from threadline.thread_service import ThreadService

# A run request's identity is its caller, thread and key; its body must match the first's.
IDEMPOTENCY_TTL_SECONDS = 24 * 3600


@cache
def idempotency_config() -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath="[user_id, thread_id, idempotency_key]",
        payload_validation_jmespath="[message, assistant]",
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
    )


@cache
def threads() -> ThreadService:
    settings = load_api_settings()
    return ThreadService(
        threads=runtime.thread_store(),
        runs=runtime.run_store(),
        backend=runtime.backend,
        cleaner=runtime.cleaner,
        backend_name=settings.openai_backend,
        reuse_for=timedelta(hours=settings.thread_reuse_hours),
    )


@cache
def run_starter() -> RunStarter:
    import boto3

    settings = load_api_settings()
    return RunStarter(
        threads=runtime.thread_store(),
        runs=runtime.run_store(),
        stepfunctions=boto3.client("stepfunctions"),
        state_machine_arn=settings.state_machine_arn,
        run_timeout_seconds=settings.run_timeout_seconds,
        usage=runtime.usage_ledger(),
        daily_token_budget=settings.daily_token_budget,
    )


@cache
def runs() -> RunService:
    from threadline.idempotency import persistence

    settings = load_api_settings()
    return RunService(
        threads=runtime.thread_store(),
        runs=runtime.run_store(),
        starter=run_starter,
        backend=runtime.backend,
        s3=runtime.s3_client,
        bucket=settings.bucket_name,
        max_message_chars=settings.max_message_chars,
        idempotency=idempotency_config(),
        persistence=persistence,
    )
