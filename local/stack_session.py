"""Threadline on one machine: moto provisioned from template.yaml, the real state machine in
moto's ASL interpreter, the real handlers in-process, and the local OpenAI server (or, with
OPENAI_API_KEY set, the real OpenAI API).

Tests, `make demo` and `make serve` all start the product through `local_threadline()`.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import boto3
import requests
from moto import mock_aws
from moto.core.config import DefaultConfig, default_user_config
from moto.server import ThreadedMotoServer

from local.aws import (
    EnvironmentDeaths,
    LocalStack,
    deliver_s3_notifications,
    install,
    provision,
    run_schedules,
    service_limits,
)
from local.aws.async_invocations import invoking_asynchronously
from local.aws.atomic_dynamodb import atomic_item_writes
from local.aws.dynamodb_streams import deliver_table_streams
from local.aws.http_api import LocalHttpApi
from local.aws.iam import gate as iam_gate
from local.aws.iam.gate import IamGate
from local.aws.iam.usage import usage_directory
from local.aws.websocket_api import ConnectionLimits, LocalWebSocketApi
from local.openai_server import OpenAIServer
from local.tokens import LOCAL_AUDIENCE, LOCAL_ISSUER, public_keys, verified_claims

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "template.yaml"
LOCAL_KEY = "sk-local-threadline"  # what the local OpenAI server accepts; not a secret
LOCAL_WEBHOOK_URL = "http://127.0.0.1/webhooks/openai"  # delivered in-process, see below
TERMINAL_EXECUTION = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
MOTO_CONFIG: DefaultConfig = {"stepfunctions": {"execute_state_machine": True}}
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",  # nosec B105: fake, for moto only
    "AWS_SESSION_TOKEN": "local",  # nosec B105: fake, for moto only
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


class TraceEmitter(Protocol):
    """Where the X-Ray SDK sends trace documents (its UDPEmitter sends them to a daemon)."""

    def send_entity(self, entity: Any) -> None: ...


@dataclass
class LocalThreadline:
    stack: LocalStack
    openai: OpenAIServer | None  # None when talking to the real OpenAI API
    environment: dict[str, str]
    # Where the local AWS services answer over HTTP (moto's server), when they were asked to.
    aws_endpoint: str | None = None
    # The template's WebSocket API, when it was asked to be served.
    websocket: LocalWebSocketApi | None = None
    # Makes the functions' invocations die as an execution environment can (fault tests).
    lambda_deaths: EnvironmentDeaths = field(default_factory=EnvironmentDeaths)
    # IAM's decisions on the functions' and state machines' calls, as made.
    iam: IamGate | None = None
    sfn: Any = field(init=False)

    def __post_init__(self) -> None:
        self.sfn = boto3.client("stepfunctions")

    @property
    def state_machine_arn(self) -> str:
        return self.stack.state_machines["RunStateMachine"]

    @property
    def table(self) -> Any:
        return boto3.resource("dynamodb").Table(self.stack.resources["Table"])

    def start_run(self, thread_id: str, user_id: str, message: str, **extra: Any) -> str:
        """Start a run's execution as the API does (named by the run id; in the Express state
        machine with `tier="express"`); its ARN."""
        from threadline.ids import new_id

        run_id = new_id("run")
        machine = "RunExpressStateMachine" if extra.get("tier") == "express" else "RunStateMachine"
        execution = self.sfn.start_execution(
            stateMachineArn=self.stack.state_machines[machine],
            name=run_id,
            input=json.dumps(
                {
                    "run_id": run_id,
                    "thread_id": thread_id,
                    "user_id": user_id,
                    "message": message,
                    **extra,
                }
            ),
        )
        return str(execution["executionArn"])

    def http_api(self) -> LocalHttpApi:
        """The template's HTTP API, its JWT authorizer checking local tokens."""
        return LocalHttpApi(self.stack, check_token=verified_claims)

    def execution_of(self, state_machine: str, run_id: str) -> str:
        """The ARN of a run's execution of a state machine (executions are named by the run)."""
        machine = self.stack.state_machines[state_machine]
        return f"{machine.replace(':stateMachine:', ':execution:', 1)}:{run_id}"

    def wait_for_run(self, run_id: str, timeout: float = 60) -> dict[str, Any]:
        """Wait until a run's executions end: the Express one it started in, if any, then the
        Standard one it was handed to, if any; the description of the last."""
        try:
            description = self.wait_for_execution(
                self.execution_of("RunExpressStateMachine", run_id), timeout
            )
        except self.sfn.exceptions.ExecutionDoesNotExist:
            description = None
        try:
            return self.wait_for_execution(self.execution_of("RunStateMachine", run_id), timeout)
        except self.sfn.exceptions.ExecutionDoesNotExist:
            if description is None:
                raise
            return description

    def wait_for_execution(self, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
        """Wait until an execution ends (bounded) and return its description."""
        deadline = time.monotonic() + timeout
        while True:
            description = self.sfn.describe_execution(executionArn=execution_arn)
            if description["status"] in TERMINAL_EXECUTION:
                return description
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still {description['status']}")
            time.sleep(0.02)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]

    def entered_states(self, execution_arn: str) -> list[str]:
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.history(execution_arn)
            if "stateEnteredEventDetails" in event
        ]

    def stop_running_executions(self) -> None:
        paginator = self.sfn.get_paginator("list_executions")
        for page in paginator.paginate(
            stateMachineArn=self.state_machine_arn, statusFilter="RUNNING"
        ):
            for execution in page["executions"]:
                self.stop_execution(execution["executionArn"])

    def stop_execution(self, execution_arn: str) -> None:
        # moto cannot stop an execution whose worker has not set itself up yet (it raises
        # AttributeError from inside the interpreter): give the worker a moment.
        for _ in range(100):
            try:
                self.sfn.stop_execution(executionArn=execution_arn)
            except AttributeError:
                time.sleep(0.01)
            else:
                return


@contextmanager
def local_threadline(
    *,
    parameters: dict[str, str] | None = None,
    openai_latency_seconds: float = 0.0,
    schedule_time_scale: float | None = None,
    webhooks: bool | None = None,
    trace_to: TraceEmitter | None = None,
    aws_port: int | None = None,
    websocket_port: int | None = None,
    websocket_limits: ConnectionLimits | None = None,
    template: Path = TEMPLATE,
) -> Iterator[LocalThreadline]:
    """Start the whole product in this process; everything is torn down on exit.

    `template`: the product's template, or another (a changed copy) whose code locations
    are the repository's as template.yaml's are.

    `aws_port`: serve the local AWS services on 127.0.0.1 (moto's server; 0 picks a port),
    so that presigned URLs work from curl or a browser and the AWS CLI can look in
    (`--endpoint-url`); by default they are only reachable in-process.

    `websocket_port`: serve the template's WebSocket API on 127.0.0.1 (0 picks a port), so
    clients can subscribe to runs (`session.websocket.url`); by default it is not served.
    `websocket_limits`: its connections' quotas, API Gateway's unless a test shortens them.

    `webhooks`: whether the local OpenAI server sends its webhooks to the webhook route, as
    an OpenAI project with the endpoint configured does; by default only in push mode.

    `trace_to`: trace the functions as Lambda does with `Tracing: Active` (Powertools Tracer
    on, an X-Ray segment per invocation), sending the trace documents to this emitter instead
    of an X-Ray daemon. Off by default: there is no daemon here.
    """
    real_key = os.environ.get("OPENAI_API_KEY")
    # With a key, OPENAI_BASE_URL names another OpenAI-compatible server than OpenAI's.
    real_base_url = os.environ.get("OPENAI_BASE_URL") if real_key else None
    with ExitStack() as stack_of_contexts:
        saved_environment = dict(os.environ)
        stack_of_contexts.callback(_restore_environment, saved_environment)
        os.environ.update(FAKE_CREDENTIALS)
        overrides = {
            "PollInitialSeconds": "0",
            "PollMaxSeconds": "1",
            "ExpressPollSeconds": "0",
            # Tests choose push (or auto) where they mean it; webhooks then come.
            "RunWaitMode": "poll",
            "JwtIssuer": LOCAL_ISSUER,
            "JwtAudience": LOCAL_AUDIENCE,
            **(parameters or {}),
        }
        if webhooks is None:
            webhooks = overrides["RunWaitMode"] in ("push", "auto")
        webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        server = None
        if not real_key:
            server = OpenAIServer(
                latency_seconds=openai_latency_seconds,
                webhook_url=LOCAL_WEBHOOK_URL if webhooks else None,
                webhook_secret=webhook_secret if webhooks else None,
            )
            stack_of_contexts.callback(server.stop)
        base_url = server.start_background("127.0.0.1", 0) if server else real_base_url
        if base_url:
            overrides.setdefault("OpenAIBaseUrl", base_url)
        websocket = None
        if websocket_port is not None:
            websocket = LocalWebSocketApi(
                public_keys=public_keys, port=websocket_port, limits=websocket_limits
            )
            overrides.setdefault("JwksUrl", stack_of_contexts.enter_context(websocket).jwks_url)
        aws_endpoint = stack_of_contexts.enter_context(_local_aws(aws_port))
        local_stack = provision(template, parameters=overrides, folder=REPO)
        iam = stack_of_contexts.enter_context(
            iam_gate.enforced(
                local_stack, usage_to=usage_directory() if template == TEMPLATE else None
            )
        )
        environment = _functions_environment(local_stack, websocket)
        _store_secrets(environment, api_key=real_key or LOCAL_KEY, webhook_secret=webhook_secret)
        os.environ.update(environment)
        os.environ.pop("OPENAI_API_KEY", None)  # the handlers read the key from the secret
        if trace_to is not None:  # before install(): it ends after the handlers are unloaded
            stack_of_contexts.enter_context(_tracing_to(trace_to))
        _forget_cached_configuration()
        stack_of_contexts.callback(_forget_cached_configuration)
        lambda_deaths = stack_of_contexts.enter_context(
            install(local_stack.registry, active_tracing=trace_to is not None)
        )
        # After install(): on exit it delivers what is queued before the handlers unload.
        # The stream hook outlasts the deliveries: those drained at the end still stream.
        stack_of_contexts.enter_context(invoking_asynchronously(local_stack))
        stack_of_contexts.enter_context(deliver_table_streams(local_stack.event_sources))
        stack_of_contexts.enter_context(deliver_s3_notifications(local_stack))
        if schedule_time_scale is not None:  # off unless asked: timed firing is for serving
            stack_of_contexts.enter_context(
                run_schedules(local_stack, time_scale=schedule_time_scale)
            )
        session = LocalThreadline(
            stack=local_stack,
            iam=iam,
            openai=server,
            environment=environment,
            lambda_deaths=lambda_deaths,
            aws_endpoint=aws_endpoint,
            websocket=websocket,
        )
        stack_of_contexts.callback(session.stop_running_executions)
        if server is not None and webhooks:
            server.webhook_sender = _deliver_through_local_api(session)
            stack_of_contexts.callback(server.flush_webhooks)
        yield session


def _functions_environment(
    local_stack: LocalStack, websocket: LocalWebSocketApi | None
) -> dict[str, str]:
    environment = local_stack.environment()
    # The local stack alone lets callbacks go to http://127.0.0.1 and localhost (a receiver
    # on this machine); a deployment cannot.
    environment["CALLBACK_ALLOW_LOCAL_HTTP"] = "true"
    # Powertools keeps the secrets it read for the whole process, which here holds every
    # function: each reads its own, with its own role, as it would in a process of its own.
    environment["POWERTOOLS_PARAMETERS_MAX_AGE"] = "0"
    if websocket is not None:  # its management API, where the deployed one's is
        environment["STREAM_ENDPOINT"] = websocket.attach(local_stack)
    return environment


@contextmanager
def _local_aws(port: int | None) -> Iterator[str | None]:
    """moto, in-process or served on `port`, as strict as AWS where the product meets it;
    where it answers over HTTP, if it does."""
    with ExitStack() as contexts:
        endpoint = None
        if port is None:
            contexts.enter_context(mock_aws(config=MOTO_CONFIG))
        else:
            endpoint = contexts.enter_context(_served_aws(port))
        contexts.enter_context(atomic_item_writes())
        contexts.enter_context(service_limits.enforced())
        yield endpoint


@contextmanager
def _served_aws(port: int) -> Iterator[str]:
    """moto's server on 127.0.0.1 in a thread of this process, the SDK pointed at it: the same
    backends the in-process mock uses, now also reachable over HTTP."""
    # A line per request would drown what the demo and `make serve` print.
    access_log = logging.getLogger("werkzeug")
    saved_level = access_log.level
    access_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _, bound = server.get_host_and_port()
    endpoint = f"http://127.0.0.1:{bound}"
    # As mock_aws does, the stack starts and ends with empty backends (they are this
    # process's: a later stack must not find this one's tables).
    reset = functools.partial(requests.post, f"{endpoint}/moto-api/reset", timeout=10)
    reset()
    # POST /moto-api/config does this for a server in another process.
    saved = default_user_config.get("stepfunctions")
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    # MOTO_PORT: where moto's Step Functions interpreter sends its Lambda invocations.
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "MOTO_PORT": str(bound)})
    try:
        yield endpoint
    finally:
        reset()
        server.stop()
        access_log.setLevel(saved_level)
        if saved is None:
            default_user_config.pop("stepfunctions", None)
        else:
            default_user_config["stepfunctions"] = saved


def _store_secrets(environment: dict[str, str], *, api_key: str, webhook_secret: str) -> None:
    """Put the secrets where AWS keeps them: the Secrets Manager secrets the template names."""
    secrets_manager = boto3.client("secretsmanager")
    secrets_manager.create_secret(
        Name=environment["OPENAI_API_KEY_SECRET_NAME"], SecretString=api_key
    )
    secrets_manager.create_secret(
        Name=environment["WEBHOOK_SECRET_NAME"], SecretString=webhook_secret
    )


def _deliver_through_local_api(
    session: LocalThreadline,
) -> Callable[[str, bytes, dict[str, str]], None]:
    """The local OpenAI server's webhooks reach the template's webhook route through the
    local API Gateway in-process, as OpenAI's would reach API Gateway."""
    from werkzeug.test import Client

    api = session.http_api()

    def deliver(url: str, body: bytes, headers: dict[str, str]) -> None:
        # A client per delivery: they run on several threads at once.
        answer = Client(api, use_cookies=False).post(urlsplit(url).path, data=body, headers=headers)
        if not 200 <= answer.status_code < 300:
            raise OSError(f"webhook answered {answer.status_code}")

    return deliver


def _forget_cached_configuration() -> None:
    """Settings and clients are kept per cold start; a new local stack is a new cold start."""
    from aws_lambda_powertools.utilities import parameters

    from threadline import runtime

    parameters.clear_caches()
    runtime.reset()


@contextmanager
def _tracing_to(emitter: TraceEmitter) -> Iterator[None]:
    """X-Ray on, its documents to `emitter`. Powertools traces only where Lambda's
    LAMBDA_TASK_ROOT is set, and a Tracer once disabled (as every test's is) keeps the X-Ray
    SDK off for the process until its configuration is reset."""
    import aws_xray_sdk
    from aws_lambda_powertools import Tracer
    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.core.context import Context

    saved = (xray_recorder.emitter, xray_recorder.context, xray_recorder.sampling)
    recorder_log = logging.getLogger("aws_xray_sdk.core.recorder")
    saved_level = recorder_log.level
    os.environ.update({"POWERTOOLS_TRACE_DISABLED": "false", "LAMBDA_TASK_ROOT": str(REPO)})
    Tracer._reset_config()
    aws_xray_sdk.global_sdk_config.set_sdk_enabled(True)
    # Every invocation is traced. Calls made outside one (by the local API Gateway, Step
    # Functions, a test) belong to no trace, as in AWS: not an error, and not worth a warning.
    xray_recorder.configure(
        # The SDK takes any emitter with send_entity; its stubs name only its UDPEmitter.
        emitter=emitter,  # type: ignore[arg-type]
        context=Context(context_missing="IGNORE_ERROR"),
        sampling=False,
    )
    recorder_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        # The SDK's patches (botocore, httpx, ...) cannot be undone; disabled, they only pass
        # calls through.
        aws_xray_sdk.global_sdk_config.set_sdk_enabled(False)
        Tracer._reset_config()
        xray_recorder.emitter, xray_recorder.context, xray_recorder.sampling = saved
        recorder_log.setLevel(saved_level)


def _restore_environment(saved: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(saved)
