"""The composition root: builds the real dependencies once per Lambda cold start.

One `Runtime` holds everything a handler uses, each part built on first use (a cold start pays
only for what it touches) and kept for the execution environment. The module-level functions
are the handlers' accessors, over the one current root; `reset()` starts a new one (a new cold
start: the local stack calls it between stacks, tests to swap parts). A root takes overrides
for its leaf clients and stores, so tests and the local stack can pass fakes or fresh clients.

Tests build `RunSteps` themselves with whatever they want to swap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from threadline.errors import ConfigurationError
from threadline.settings import Settings, load_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient
    from openai import OpenAI

    from threadline.assistant_config import AssistantConfig
    from threadline.backends.base import AssistantBackend
    from threadline.cleanup import Cleaner
    from threadline.files.ingest import Ingestor
    from threadline.files.policy import UploadPolicy
    from threadline.files.records import FileStore
    from threadline.files.settling import UploadSettler
    from threadline.files.sweep import UploadSweep
    from threadline.files.uploads import Uploads
    from threadline.runs.records import RunStore
    from threadline.runs.service import RunService
    from threadline.runs.starting import RunStarter
    from threadline.runs.steps import RunSteps
    from threadline.runs.webhook_waits import WebhookWaits
    from threadline.settings import ApiSettings
    from threadline.store.idempotency import Idempotency
    from threadline.threads.creation import ThreadCreator
    from threadline.threads.records import ThreadStore
    from threadline.threads.run_lock import RunLock
    from threadline.threads.service import ThreadService
    from threadline.tools import ToolRegistry
    from threadline.usage import UsageLedger

PartT = TypeVar("PartT")


class Runtime:
    """The dependencies of one execution environment, each built once, on first use.

    Overrides stand in for the parts they name (the rest is built as usual, around them).
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        table: Table | None = None,
        dynamodb_client: DynamoDBClient | None = None,
        s3_client: S3Client | None = None,
        stepfunctions: SFNClient | None = None,
        backend_client: OpenAI | None = None,
        backend: AssistantBackend | None = None,
        idempotency: Idempotency | None = None,
    ) -> None:
        given = {
            "settings": settings,
            "table": table,
            "dynamodb_client": dynamodb_client,
            "s3_client": s3_client,
            "stepfunctions": stepfunctions,
            "backend_client": backend_client,
            "backend": backend,
            "idempotency": idempotency,
        }
        self._parts: dict[str, Any] = {
            name: part for name, part in given.items() if part is not None
        }
        self._lock = threading.RLock()  # parts build parts

    def _part(self, name: str, build: Callable[[], PartT]) -> PartT:
        try:
            return cast(PartT, self._parts[name])
        except KeyError:
            pass
        with self._lock:
            if name not in self._parts:
                self._parts[name] = build()
            return cast(PartT, self._parts[name])

    def built(self) -> frozenset[str]:
        """The names of the parts built (or given) so far."""
        return frozenset(self._parts)

    # -- settings, clients, stores --------------------------------------------------------

    def settings(self) -> Settings:
        return self._part("settings", load_settings)

    def api_settings(self) -> ApiSettings:
        from threadline.settings import load_api_settings

        return self._part("api_settings", load_api_settings)

    def table(self) -> Table:
        def build() -> Table:
            import boto3

            return boto3.resource("dynamodb").Table(self.settings().table_name)

        return self._part("table", build)

    def dynamodb_client(self) -> DynamoDBClient:
        def build() -> DynamoDBClient:
            import boto3

            return boto3.client("dynamodb")

        return self._part("dynamodb_client", build)

    def s3_client(self) -> S3Client:
        def build() -> S3Client:
            import boto3
            from botocore.config import Config

            # SigV4: presigned URLs and POST policies must work in every region.
            return boto3.client("s3", config=Config(signature_version="s3v4"))

        return self._part("s3_client", build)

    def stepfunctions(self) -> SFNClient:
        def build() -> SFNClient:
            import boto3

            return boto3.client("stepfunctions")

        return self._part("stepfunctions", build)

    def thread_store(self) -> ThreadStore:
        def build() -> ThreadStore:
            from threadline.threads.records import ThreadStore

            return ThreadStore(self.table())

        return self._part("thread_store", build)

    def thread_creator(self) -> ThreadCreator:
        def build() -> ThreadCreator:
            from threadline.threads.creation import ThreadCreator

            return ThreadCreator(
                self.table(), threads=self.thread_store(), retention=self._retention()
            )

        return self._part("thread_creator", build)

    def run_lock(self) -> RunLock:
        def build() -> RunLock:
            from threadline.threads.run_lock import RunLock

            return RunLock(self.table(), threads=self.thread_store(), retention=self._retention())

        return self._part("run_lock", build)

    def _retention(self) -> timedelta:
        """How long an idle thread is kept before cleanup deletes it."""
        return timedelta(days=self.settings().thread_retention_days)

    def run_store(self) -> RunStore:
        def build() -> RunStore:
            from threadline.runs.records import RunStore

            return RunStore(self.table())

        return self._part("run_store", build)

    def usage_ledger(self) -> UsageLedger:
        def build() -> UsageLedger:
            from threadline.usage import UsageLedger

            return UsageLedger(self.table())

        return self._part("usage_ledger", build)

    def idempotency(self) -> Idempotency:
        def build() -> Idempotency:
            from threadline.store.idempotency import Idempotency

            return Idempotency(dynamodb=self.dynamodb_client, table_name=self.settings().table_name)

        return self._part("idempotency", build)

    # -- OpenAI ---------------------------------------------------------------------------

    def backend_client(self) -> OpenAI:
        def build() -> OpenAI:
            from threadline.openai_client import make_openai_client

            return make_openai_client(self.settings())

        return self._part("backend_client", build)

    def backend(self) -> AssistantBackend:
        def build() -> AssistantBackend:
            from threadline.backends import make_backend

            settings = self.settings()
            return make_backend(
                settings.openai_backend, self.backend_client(), settings.openai_model
            )

        return self._part("backend", build)

    def webhook_secret(self) -> str:
        def build() -> str:
            from threadline.secret_strings import secret_string

            name = self.settings().webhook_secret_name
            if not name:
                raise ConfigurationError("push mode needs WEBHOOK_SECRET_NAME")
            return secret_string(name, holding="a webhook secret")

        return self._part("webhook_secret", build)

    # -- runs -----------------------------------------------------------------------------

    def _analyst_tools(self) -> ToolRegistry:
        def build() -> ToolRegistry:
            import boto3

            from threadline.tools import build_data_analyst_tools, resolve_database

            database = self.settings().analyst_database
            s3 = boto3.client("s3") if (database or "").startswith("s3://") else None
            return build_data_analyst_tools(resolve_database(database, s3_client=s3))

        return self._part("analyst_tools", build)

    def tools_for(self, assistant: AssistantConfig) -> ToolRegistry:
        """The function tools an assistant's configuration names, from the tool catalogue."""
        from threadline.tools import ToolRegistry

        catalogue = self._analyst_tools()
        named = [(name, catalogue.get(name)) for name in assistant.function_tools]
        missing = [name for name, tool in named if tool is None]
        if missing:
            raise ConfigurationError(f"assistant {assistant.name} names unknown tools: {missing}")
        return ToolRegistry(tool for _, tool in named if tool is not None)

    def run_steps(self) -> RunSteps:
        def build() -> RunSteps:
            from threadline.runs.steps import RunSteps

            return RunSteps(
                settings=self.settings(),
                backend=self.backend,
                tools_for=self.tools_for,
                threads=self.thread_store,
                lock=self.run_lock,
                runs=self.run_store,
                usage=self.usage_ledger,
                files=self.file_store,
                s3=self.s3_client,
            )

        return self._part("run_steps", build)

    def webhook_waits(self) -> WebhookWaits:
        def build() -> WebhookWaits:
            from threadline.runs.webhook_waits import WebhookWaits, WebhookWaitStore

            return WebhookWaits(
                store=WebhookWaitStore(self.table()),
                steps=self.run_steps(),
                stepfunctions=self.stepfunctions(),
            )

        return self._part("webhook_waits", build)

    # -- the API's services ---------------------------------------------------------------

    def thread_service(self) -> ThreadService:
        def build() -> ThreadService:
            from threadline.threads.service import ThreadService

            settings = self.api_settings()
            return ThreadService(
                threads=self.thread_store(),
                creator=self.thread_creator,
                runs=self.run_store(),
                backend=self.backend,
                cleaner=self.cleaner,
                backend_name=settings.openai_backend,
                reuse_for=timedelta(hours=settings.thread_reuse_hours),
            )

        return self._part("thread_service", build)

    def run_starter(self) -> RunStarter:
        def build() -> RunStarter:
            from threadline.runs.starting import RunStarter

            settings = self.api_settings()
            return RunStarter(
                threads=self.thread_store(),
                lock=self.run_lock(),
                runs=self.run_store(),
                stepfunctions=self.stepfunctions(),
                state_machine_arn=settings.state_machine_arn,
                run_timeout_seconds=settings.run_timeout_seconds,
                usage=self.usage_ledger(),
                daily_token_budget=settings.daily_token_budget,
            )

        return self._part("run_starter", build)

    def run_service(self) -> RunService:
        def build() -> RunService:
            from threadline.runs.service import RunService

            settings = self.api_settings()
            return RunService(
                threads=self.thread_store(),
                runs=self.run_store(),
                starter=self.run_starter,
                backend=self.backend,
                s3=self.s3_client,
                bucket=settings.bucket_name,
                max_message_chars=settings.max_message_chars,
                idempotency=self.idempotency,
            )

        return self._part("run_service", build)

    # -- files and cleanup ----------------------------------------------------------------

    def file_store(self) -> FileStore:
        def build() -> FileStore:
            from threadline.files.records import FileStore

            return FileStore(self.table(), backend=self.backend)

        return self._part("file_store", build)

    def upload_policy(self) -> UploadPolicy:
        def build() -> UploadPolicy:
            from threadline.files.policy import UploadPolicy

            settings = self.settings()
            return UploadPolicy.from_settings(
                settings.upload_allowed_types, settings.upload_max_bytes
            )

        return self._part("upload_policy", build)

    def uploads(self) -> Uploads:
        def build() -> Uploads:
            from threadline.files.uploads import Uploads

            return Uploads(
                threads=self.thread_store(),
                files=self.file_store(),
                s3_client=self.s3_client(),
                bucket=self.settings().bucket_name,
                policy=self.upload_policy(),
            )

        return self._part("uploads", build)

    def ingestor(self) -> Ingestor:
        def build() -> Ingestor:
            from threadline.files.ingest import Ingestor

            return Ingestor(
                threads=self.thread_store(),
                files=self.file_store(),
                backend=self.backend(),
                s3_client=self.s3_client(),
                policy=self.upload_policy(),
            )

        return self._part("ingestor", build)

    def upload_settler(self) -> UploadSettler:
        def build() -> UploadSettler:
            from threadline.files.settling import UploadSettler

            # No Ingestor: giving up needs no OpenAI client (nor its key).
            return UploadSettler(files=self.file_store(), s3_client=self.s3_client())

        return self._part("upload_settler", build)

    def upload_sweep(self) -> UploadSweep:
        def build() -> UploadSweep:
            from threadline.files.sweep import UploadSweep

            return UploadSweep(
                files=self.file_store(),
                settler=self.ingestor(),
                s3_client=self.s3_client(),
                bucket=self.settings().bucket_name,
            )

        return self._part("upload_sweep", build)

    def cleaner(self) -> Cleaner:
        def build() -> Cleaner:
            from threadline.cleanup import Cleaner

            settings = self.settings()
            return Cleaner(
                threads=self.thread_store(),
                files=self.file_store(),
                runs=self.run_store(),
                usage=self.usage_ledger(),
                backend=self.backend(),
                s3_client=self.s3_client(),
                bucket=settings.bucket_name,
                retention=self._retention(),
            )

        return self._part("cleaner", build)


# -- the current root, and the handlers' accessors over it ----------------------------------


class _Current:
    """The one current root (None until first use)."""

    root: Runtime | None = None
    lock = threading.Lock()


def current() -> Runtime:
    """This execution environment's root, made on first use."""
    with _Current.lock:
        if _Current.root is None:
            _Current.root = Runtime()
        return _Current.root


def reset(root: Runtime | None = None) -> Runtime:
    """Start over as a new cold start would: `root` (or a new default root) becomes current,
    and the settings read from the environment are read again."""
    from threadline.assistant_config import available_assistants
    from threadline.settings import load_api_settings

    load_settings.cache_clear()
    load_api_settings.cache_clear()
    available_assistants.cache_clear()
    with _Current.lock:
        _Current.root = root if root is not None else Runtime()
        return _Current.root


def table() -> Table:
    return current().table()


def thread_store() -> ThreadStore:
    return current().thread_store()


def thread_creator() -> ThreadCreator:
    return current().thread_creator()


def run_store() -> RunStore:
    return current().run_store()


def usage_ledger() -> UsageLedger:
    return current().usage_ledger()


def idempotency() -> Idempotency:
    return current().idempotency()


def backend_client() -> OpenAI:
    return current().backend_client()


def backend() -> AssistantBackend:
    return current().backend()


def webhook_secret() -> str:
    return current().webhook_secret()


def tools_for(assistant: AssistantConfig) -> ToolRegistry:
    return current().tools_for(assistant)


def run_steps() -> RunSteps:
    return current().run_steps()


def webhook_waits() -> WebhookWaits:
    return current().webhook_waits()


def s3_client() -> S3Client:
    return current().s3_client()


def file_store() -> FileStore:
    return current().file_store()


def upload_policy() -> UploadPolicy:
    return current().upload_policy()


def uploads() -> Uploads:
    return current().uploads()


def ingestor() -> Ingestor:
    return current().ingestor()


def upload_settler() -> UploadSettler:
    return current().upload_settler()


def upload_sweep() -> UploadSweep:
    return current().upload_sweep()


def cleaner() -> Cleaner:
    return current().cleaner()
