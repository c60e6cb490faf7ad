"""The parts every capability shares: settings, AWS and OpenAI clients, and the stores."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from threadline.errors import ConfigurationError
from threadline.settings import ApiSettings, HandOffSettings, LaunchSettings, Settings, load

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient
    from openai import OpenAI

    from threadline.backends.base import AssistantBackend
    from threadline.callbacks.targets import CallbackTargets
    from threadline.files.records import FileStore
    from threadline.runs.records import RunStore
    from threadline.store.idempotency import Idempotency
    from threadline.store.job_lease import JobLease
    from threadline.threads.records import ThreadStore
    from threadline.threads.run_lock import RunLock
    from threadline.usage import UsageLedger

PartT = TypeVar("PartT")

logger = logging.getLogger(__name__)


class Parts:
    """Parts built once, on first use; overrides stand in for the parts they name (the rest
    is built as usual, around them)."""

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

    # -- settings and clients -------------------------------------------------------------

    def settings(self) -> Settings:
        return self._part("settings", lambda: load(Settings))

    def api_settings(self) -> ApiSettings:
        return self._part("api_settings", lambda: load(ApiSettings))

    def hand_off_settings(self) -> HandOffSettings:
        return self._part("hand_off_settings", lambda: load(HandOffSettings))

    def launch_settings(self) -> LaunchSettings:
        return self._part("launch_settings", lambda: load(LaunchSettings))

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

    def lambda_client(self) -> LambdaClient:
        """Invokes Lambda tools: no retries (a lost reply would run a tool twice) and a read
        timeout past Lambda's 15-minute limit (each tool's own timeout is kept by the caller)."""

        def build() -> LambdaClient:
            import boto3
            from botocore.config import Config

            config = Config(read_timeout=910, retries={"max_attempts": 1, "mode": "standard"})
            return boto3.client("lambda", config=config)

        return self._part("lambda_client", build)

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
                settings.openai_backend,
                self.backend_client(),
                settings.openai_model,
                mcp_secrets_prefix=settings.mcp_secrets_prefix,
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

    def webhooks_configured(self) -> bool:
        """Whether OpenAI's webhooks reach this deployment: its webhook secret holds one.
        Known for the execution environment once the secret was read or found missing (on
        AWS a missing secret answers AccessDenied: the grant names `{name}-??????`, which no
        ARN matches); a read that failed otherwise is tried again by the next run (which
        polls meanwhile)."""
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            return self._part("webhooks_configured", self._read_webhook_secret)
        except GetParameterError as error:
            logger.warning("webhook secret unreadable: runs poll", extra={"error": str(error)})
            return False

    def _read_webhook_secret(self) -> bool:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            return self.webhook_secret().startswith("whsec_")
        except ConfigurationError:
            return False  # no secret name, or an empty secret
        except GetParameterError as error:
            if "ResourceNotFoundException" not in str(error) and "AccessDenied" not in str(error):
                raise
            logger.warning(
                "no webhook secret (missing, or this role may not read it): runs poll",
                extra={"secret": self.settings().webhook_secret_name},
            )
            return False

    def callback_targets(self) -> CallbackTargets:
        def build() -> CallbackTargets:
            from threadline.callbacks.targets import CallbackTargets

            settings = self.settings()
            return CallbackTargets(
                settings.callback_allowed_hosts.split(","),
                allow_local_http=settings.callback_allow_local_http,
            )

        return self._part("callback_targets", build)

    # -- stores ---------------------------------------------------------------------------

    def idempotency(self) -> Idempotency:
        def build() -> Idempotency:
            from threadline.store.idempotency import Idempotency

            return Idempotency(dynamodb=self.dynamodb_client, table_name=self.settings().table_name)

        return self._part("idempotency", build)

    def job_lease(self) -> JobLease:
        def build() -> JobLease:
            from threadline.store.job_lease import JobLease

            return JobLease(self.table())

        return self._part("job_lease", build)

    def thread_store(self) -> ThreadStore:
        def build() -> ThreadStore:
            from threadline.threads.records import ThreadStore

            return ThreadStore(self.table())

        return self._part("thread_store", build)

    def run_lock(self) -> RunLock:
        def build() -> RunLock:
            from threadline.threads.run_lock import RunLock

            return RunLock(self.table(), threads=self.thread_store(), retention=self.retention())

        return self._part("run_lock", build)

    def retention(self) -> timedelta:
        """How long an idle thread is kept before cleanup deletes it."""
        return timedelta(days=self.settings().thread_retention_days)

    def run_store(self) -> RunStore:
        def build() -> RunStore:
            from threadline.runs.records import RunStore

            return RunStore(self.table())

        return self._part("run_store", build)

    def file_store(self) -> FileStore:
        def build() -> FileStore:
            from threadline.files.records import FileStore

            return FileStore(self.table(), backend=self.backend)

        return self._part("file_store", build)

    def usage_ledger(self) -> UsageLedger:
        def build() -> UsageLedger:
            from threadline.usage import UsageLedger

            return UsageLedger(self.table())

        return self._part("usage_ledger", build)
