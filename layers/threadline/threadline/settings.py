"""Configuration read from the environment once per cold start.

Every function gets the same core variables from the template's Globals; the API function
also gets the state machine ARN (the state machine refers to the other functions, so giving
it to them would be a circular reference).
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Literal, TypeVar, cast

from pydantic import (
    Field,
    HttpUrl,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from threadline.errors import ConfigurationError

Backend = Literal["responses", "assistants"]
WaitMode = Literal["poll", "push"]
WaitModeSetting = Literal["auto", "poll", "push"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    table_name: str = Field(min_length=3)
    bucket_name: str = Field(min_length=3)
    openai_backend: Backend = "responses"
    openai_model: str = Field(default="gpt-4.1-mini", min_length=1)
    openai_base_url: HttpUrl | None = None
    # Secrets Manager secret holding the API key; OPENAI_API_KEY (local runs) takes precedence.
    openai_api_key_secret_name: str | None = None
    openai_timeout_seconds: PositiveFloat = 20.0
    thread_reuse_hours: PositiveInt = 24
    thread_retention_days: PositiveInt = 7
    run_timeout_seconds: PositiveInt = 300
    # The state machine's wait grows from the first to the last value, honouring poll hints.
    poll_initial_seconds: float = Field(default=2.0, ge=0)
    poll_max_seconds: float = Field(default=15.0, ge=0)
    tool_timeout_seconds: PositiveFloat = 20.0
    # A run whose model asks for tools more often than this fails (it is looping); the bound
    # also keeps a run's record and execution history within their limits.
    max_tool_rounds: int = Field(default=32, ge=1, le=100)
    # How long a tool call that needs approval waits for a person; unanswered, it is denied.
    approval_timeout_seconds: PositiveInt = 86_400
    # The Express tier: a run's first seconds are driven by an Express execution that checks
    # it every `express_poll_seconds`, then handed to the Standard one; 0 starts in Standard.
    express_tier_seconds: int = Field(default=180, ge=0, le=180)
    express_poll_seconds: int = Field(default=1, ge=0)
    # After the Express tier - poll: the state machine checks the run on a growing interval;
    # push: it sleeps until OpenAI's webhook says the response finished (Responses only);
    # auto: push where a webhook secret is configured, else poll.
    run_wait_mode: WaitModeSetting = "auto"
    webhook_secret_name: str | None = None
    # In push mode, how long a wait lasts before the machine checks the run itself; each wait
    # that ends so doubles the next, for the rest of the run, up to the maximum.
    webhook_wait_seconds: PositiveInt = 120
    webhook_wait_max_seconds: PositiveInt = 900
    upload_max_bytes: PositiveInt = 20 * 1024 * 1024
    upload_allowed_types: str | None = None  # None: every type threadline.files.policy checks
    # FinishRun, which the run state machines call, finds them through these SSM parameters.
    state_machine_arn_parameter: str | None = None
    express_state_machine_arn_parameter: str | None = None
    # Hosts (comma-separated; `*.example.com` for its subdomains) that runs' callbacks may go
    # to; none: runs take no callback_url. Only the local stack sets the local switch, which
    # also lets callbacks go to http://127.0.0.1 and http://localhost.
    callback_allowed_hosts: str = ""
    callback_allow_local_http: bool = False
    # Lambda tools' functions by the names assistants' files give them (a JSON object): the
    # template maps each to the ARN of a function it defines. A name not listed is used as is.
    tool_functions: dict[str, str] = Field(default_factory=dict)
    # Where the secrets an MCP server's `headers_secret` names live (the name is appended).
    mcp_secrets_prefix: str = ""

    @field_validator(
        "openai_base_url",
        "openai_api_key_secret_name",
        "webhook_secret_name",
        "upload_allowed_types",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # CloudFormation cannot omit an environment variable, so optional ones arrive as "".
        return None if value == "" else value

    @model_validator(mode="after")
    def _push_needs_responses(self) -> Settings:
        if self.run_wait_mode == "push" and self.openai_backend != "responses":
            raise ValueError("RUN_WAIT_MODE push needs OPENAI_BACKEND responses (webhooks)")
        return self


class HandOffSettings(Settings):
    """The functions that start runs' executions: HandOffRun (in the Standard one), and those
    that start runs (`LaunchSettings`)."""

    state_machine_arn: str = Field(min_length=20)  # the Standard one


class LaunchSettings(HandOffSettings):
    """The functions that start a run's first execution: the API, and FinishRun and
    FinishLostRuns, which start the run queued next on a thread they free."""

    # Runs start here when the Express tier is on (EXPRESS_TIER_SECONDS > 0).
    express_state_machine_arn: str | None = None


class ApiSettings(LaunchSettings):
    max_message_chars: PositiveInt = 32_000
    daily_token_budget: int = Field(default=0, ge=0)  # per user per UTC day; 0: no budget


class CallbackSettings(Settings):
    """DeliverCallbacks: its queue, the signing secret, the first retry's delay."""

    callback_queue_url: str = Field(min_length=1)
    callback_secret_name: str = Field(min_length=1)
    callback_retry_seconds: PositiveInt = 10


class EventSettings(Settings):
    """PublishEvents: where Threadline's events go and what they carry."""

    event_bus_name: str = Field(min_length=1)
    # Whether run events carry the user's message and the answer (off: ids, numbers, reasons).
    events_include_text: bool = False
    daily_token_budget: int = Field(default=0, ge=0)  # Budget Exceeded when a day crosses it


class StreamSettings(Settings):
    """The functions that stream runs to WebSocket clients."""

    # API Gateway's management endpoint of the WebSocket API (https://{api}.execute-api...).
    stream_endpoint: str = Field(min_length=1)
    # RelayText, which the subscription and PushUpdates start while a run's text is written
    # (RelayText itself starts none, and has none).
    relay_function_name: str | None = None


class TokenSettings(BaseSettings):
    """StreamAuthorizer: the JWTs it accepts, as the HTTP API's JWT authorizer does."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    jwt_issuer: str = Field(min_length=1)
    jwt_audience: str = Field(min_length=1, description="Comma-separated accepted audiences.")
    # Where the issuer's signing keys are; empty: {issuer}/.well-known/jwks.json (Cognito's).
    jwks_url: str = ""

    @property
    def audiences(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.jwt_audience.split(",") if part.strip())

    @property
    def keys_url(self) -> str:
        return self.jwks_url or f"{self.jwt_issuer.rstrip('/')}/.well-known/jwks.json"


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def _read(settings_type: type[SettingsT]) -> SettingsT:
    try:
        return settings_type()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"invalid environment: {problems}") from None


_loaded: dict[type[BaseSettings], BaseSettings] = {}
_loading = threading.Lock()
# The settings of one of many execution environments in a process (see runtime.__init__).
_loaded_here: ContextVar[dict[type[BaseSettings], BaseSettings] | None] = ContextVar(
    "threadline_settings", default=None
)


def load(settings_type: type[SettingsT]) -> SettingsT:
    """The settings of this type, read from the environment on first use and kept for the
    execution environment (`forget_loaded` reads them again, as a new cold start would)."""
    loaded = _loaded_here.get()
    with _loading:
        kept = _loaded if loaded is None else loaded
        if settings_type not in kept:
            kept[settings_type] = _read(settings_type)
        return cast("SettingsT", kept[settings_type])


def load_apart() -> None:
    """Keep the running context's settings apart from the process's: it is one execution
    environment of many, which may each see their own environment variables."""
    _loaded_here.set({})


def forget_loaded() -> None:
    with _loading:
        _loaded.clear()
