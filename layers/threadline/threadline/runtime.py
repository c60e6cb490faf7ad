"""The composition root: builds the real dependencies once per Lambda cold start.

Tests build `RunSteps` themselves with whatever they want to swap.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

import boto3

from threadline.errors import ConfigurationError
from threadline.runs import RunStore
from threadline.settings import Settings, load_settings
from threadline.threads import ThreadStore
from threadline.usage import UsageLedger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_s3 import S3Client
    from openai import OpenAI

    from threadline.assistant_config import AssistantConfig
    from threadline.backends.base import AssistantBackend
    from threadline.cleanup import Cleaner
    from threadline.files import FileStore
    from threadline.ingest import Ingestor
    from threadline.run_steps import RunSteps
    from threadline.tools import ToolRegistry
    from threadline.uploads import UploadPolicy, Uploads
    from threadline.webhook_waits import WebhookWaits


@cache
def table() -> Table:
    return boto3.resource("dynamodb").Table(load_settings().table_name)


@cache
def thread_store() -> ThreadStore:
    settings = load_settings()
    return ThreadStore(table(), retention=timedelta(days=settings.thread_retention_days))


@cache
def run_store() -> RunStore:
    return RunStore(table())


@cache
def usage_ledger() -> UsageLedger:
    return UsageLedger(table())


@cache
def backend_client() -> OpenAI:
    from threadline.openai_client import make_openai_client

    return make_openai_client(load_settings())


@cache
def backend() -> AssistantBackend:
    from threadline.backends import make_backend

    settings = load_settings()
    return make_backend(settings.openai_backend, backend_client(), settings.openai_model)


@cache
def _analyst_tools() -> ToolRegistry:
    from threadline.tools import build_data_analyst_tools, resolve_database

    settings = load_settings()
    s3 = boto3.client("s3") if (settings.analyst_database or "").startswith("s3://") else None
    return build_data_analyst_tools(resolve_database(settings.analyst_database, s3_client=s3))


def tools_for(assistant: AssistantConfig) -> ToolRegistry:
    """The function tools an assistant's configuration names, from the tool catalogue."""
    from threadline.tools import ToolRegistry

    catalogue = _analyst_tools()
    named = [(name, catalogue.get(name)) for name in assistant.function_tools]
    missing = [name for name, tool in named if tool is None]
    if missing:
        raise ConfigurationError(f"assistant {assistant.name} names unknown tools: {missing}")
    return ToolRegistry(tool for _, tool in named if tool is not None)


@cache
def run_steps() -> RunSteps:
    from threadline.run_steps import RunSteps

    settings: Settings = load_settings()
    return RunSteps(
        settings=settings,
        backend=backend,
        tools_for=tools_for,
        threads=thread_store,
        runs=run_store,
        usage=usage_ledger,
        files=file_store,
        s3=s3_client,
    )


@cache
def webhook_waits() -> WebhookWaits:
    from threadline.webhook_waits import WebhookWaits, WebhookWaitStore

    return WebhookWaits(
        store=WebhookWaitStore(table()),
        steps=run_steps(),
        stepfunctions=boto3.client("stepfunctions"),
    )


# -- files and cleanup ----------------------------------------------------------------------


@cache
def s3_client() -> S3Client:
    from botocore.config import Config

    # SigV4: presigned URLs and POST policies must work in every region.
    return boto3.client("s3", config=Config(signature_version="s3v4"))


@cache
def file_store() -> FileStore:
    from threadline.files import FileStore

    return FileStore(table(), backend=backend)


@cache
def upload_policy() -> UploadPolicy:
    from threadline.uploads import UploadPolicy

    settings = load_settings()
    return UploadPolicy.from_settings(settings.upload_allowed_types, settings.upload_max_bytes)


@cache
def uploads() -> Uploads:
    from threadline.uploads import Uploads

    return Uploads(
        threads=thread_store(),
        files=file_store(),
        s3_client=s3_client(),
        bucket=load_settings().bucket_name,
        policy=upload_policy(),
    )


@cache
def ingestor() -> Ingestor:
    from threadline.ingest import Ingestor

    return Ingestor(
        threads=thread_store(),
        files=file_store(),
        backend=backend(),
        s3_client=s3_client(),
        policy=upload_policy(),
    )


@cache
def cleaner() -> Cleaner:
    from threadline.cleanup import Cleaner

    settings = load_settings()
    return Cleaner(
        threads=thread_store(),
        files=file_store(),
        runs=run_store(),
        usage=usage_ledger(),
        backend=backend(),
        s3_client=s3_client(),
        bucket=settings.bucket_name,
        retention=timedelta(days=settings.thread_retention_days),
    )
