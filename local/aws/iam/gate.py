"""IAM on the local stack: each function's AWS calls are made with its own role's
permissions, and each state machine's with its role's, as on AWS.

moto checks no permissions, so every API call any client makes passes through here first:
the call is mapped to what IAM checks (`requests`), and the principal making it - the
function whose invocation is running, or the state machine whose execution is - must be
allowed by its role's policies and the resource's own policy (`policies`). A call that is
not allowed fails as on AWS: `AccessDenied(Exception)`, naming the role's session (the
function), the action and the resource. Calls made outside any invocation (the local
stack setting itself up, tests looking in) are not checked.

A principal is the invocation's: threads a handler's executor runs (its tool calls, S3's
transfer threads) act as it, as every thread of a Lambda process has its role. Every
decision is kept, for the report of what each role used (`make iam`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from botocore import signers
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.events.models import Rule
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.s3.responses import S3Response
from moto.secretsmanager.models import secretsmanager_backends
from moto.sqs.models import sqs_backends
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from local.aws.iam.policies import Policies, PolicySimulator, Request, Result
from local.aws.iam.requests import Call, RequestMapper
from local.aws.iam.usage import write_usage
from local.aws.local_stack import LocalStack
from local.aws.records import Invoker

logger = logging.getLogger(__name__)
# A request's context: API calls to AWS go over TLS.
_CALL_CONTEXT = {"aws:SecureTransport": "true"}
# The services whose "access denied" error code has no `Exception` suffix.
_SHORT_DENIAL_CODES = frozenset({"s3", "sqs"})


@dataclass(frozen=True)
class Principal:
    """Who makes a call: a function (its role assumed in a session named by the function)
    or a state machine (its role)."""

    name: str  # the function's or state machine's logical id
    role_arn: str
    session: str

    @property
    def arn(self) -> str:
        """The assumed role's ARN, as AWS names the caller in an AccessDenied message."""
        account, role = self.role_arn.split(":")[4], self.role_arn.rsplit("/", 1)[-1]
        return f"arn:aws:sts::{account}:assumed-role/{role}/{self.session}"


_acting: ContextVar[Principal | None] = ContextVar("iam_principal", default=None)
# Set while moto serves a call: what it does meanwhile (the local stack's own calls) is not
# the caller's.
_serving: ContextVar[bool] = ContextVar("iam_serving", default=False)


@contextmanager
def acting_as(principal: Principal | None) -> Iterator[None]:
    """Make the calls of this context (and of threads its executors run) as `principal`: an
    invocation's, or an execution's, even while the call that started it is being served."""
    acting, serving = _acting.set(principal), _serving.set(False)
    try:
        yield
    finally:
        _serving.reset(serving)
        _acting.reset(acting)


@dataclass(frozen=True)
class Decision:
    principal: str  # the logical id (or a service)
    action: str
    resource: str
    result: Result
    role_arn: str | None = None  # the role the principal acted with (None: a service)


@cache
def _aws_managed_policies() -> dict[str, Any]:
    documents: dict[str, Any] = json.loads(aws_managed_policies_data)
    return documents


def aws_managed_policy(arn: str) -> dict[str, Any]:
    """An AWS managed policy's document (moto keeps AWS's)."""
    document: dict[str, Any] = _aws_managed_policies()[arn.rsplit("/", 1)[-1]]["Document"]
    return document


class IamGate:
    def __init__(self, stack: LocalStack, simulator: PolicySimulator) -> None:
        self._stack = stack
        self._simulator = simulator
        self._mapper = RequestMapper(
            secret_arn=self._secret_arn, management_api=self._management_api
        )
        self._lock = threading.Lock()
        self.decisions: list[Decision] = []
        # Presigned requests whose signer may not make them: S3 refuses them.
        self.refused_signatures: set[str] = set()

    def check(self, client: BaseClient, operation: str, params: dict[str, Any]) -> None:
        """Refuse the call, as AWS would, unless the calling principal may make it."""
        principal = _acting.get()
        if principal is None:
            return
        call = Call(
            service=client.meta.service_model.service_name,
            operation=operation,
            params=params,
            region=client.meta.region_name,
            account=DEFAULT_ACCOUNT_ID,
            endpoint=client.meta.endpoint_url,
        )
        for request in self._mapper.requests(call):
            result = self.decide(principal, request)
            if result != "Allowed":
                raise AccessDenied(call.service, operation, principal, request, result)

    def decide(self, principal: Principal, request: Request) -> Result:
        """What IAM decides on `principal`'s request, with its role's policies and the
        resource's own; kept for the report."""
        request = Request(request.action, request.resource, {**_CALL_CONTEXT, **request.context})
        result = self._simulator.decide(
            principal.arn,
            DEFAULT_ACCOUNT_ID,
            request,
            self._policies_of(principal.role_arn),
            self._resource_policy(request.resource),
        )
        with self._lock:
            self.decisions.append(
                Decision(
                    principal.name, request.action, request.resource, result, principal.role_arn
                )
            )
        return result

    def refusal(self, invoker: Invoker, function_arn: str) -> str | None:
        """Why `invoker` may not invoke the function (None if it may): a service needs the
        function's permission for its source, a role (a schedule's) a grant of its own."""
        if invoker.role_arn is not None:
            principal = Principal(
                name=invoker.service, role_arn=invoker.role_arn, session=invoker.service
            )
            request = Request("lambda:InvokeFunction", function_arn)
            result = self.decide(principal, request)
            caller = principal.arn
        else:
            context = {
                key: value
                for key, value in (
                    ("aws:SourceArn", invoker.source_arn),
                    ("aws:SourceAccount", invoker.source_account),
                )
                if value is not None
            }
            request = Request("lambda:InvokeFunction", function_arn, context)
            result = self._simulator.decide(
                invoker.service,
                DEFAULT_ACCOUNT_ID,
                request,
                Policies(key=invoker.service, identity=[]),
                self._resource_policy(function_arn),
            )
            with self._lock:
                self.decisions.append(
                    Decision(invoker.service, request.action, function_arn, result)
                )
            caller = invoker.service
        if result == "Allowed":
            return None
        source = f" from {invoker.source_arn}" if invoker.source_arn else ""
        return (
            f"{caller} is not authorized to perform: lambda:InvokeFunction on resource: "
            f"{function_arn}{source}: the function's policy allows no such invocation"
        )

    def service_may_send(self, service: str, queue_arn: str, source_arn: str) -> bool:
        """Whether `service` (EventBridge, for a rule) may send to the queue: its policy
        must allow the service from that source."""
        request = Request("sqs:SendMessage", queue_arn, {"aws:SourceArn": source_arn})
        result = self._simulator.decide(
            service,
            DEFAULT_ACCOUNT_ID,
            request,
            Policies(key=service, identity=[]),
            self._resource_policy(queue_arn),
        )
        with self._lock:
            self.decisions.append(Decision(service, request.action, queue_arn, result))
        return result == "Allowed"

    def check_lambdas_reach(self) -> None:
        """What Lambda checks when a mapping or destination is configured, so a deploy fails
        on it: the function's role reads its stream or queue and sends to its OnFailure
        queue. ValueError naming the function, the action and the resource otherwise."""
        for function_logical_id, requests in self._lambda_reads():
            spec = self._stack.functions[function_logical_id]
            principal = Principal(name=spec.logical_id, role_arn=spec.role_arn, session=spec.name)
            for request in requests:
                result = self.decide(principal, request)
                if result != "Allowed":
                    raise ValueError(
                        f"{spec.logical_id}: {principal.arn} is not authorized to perform: "
                        f"{request.action} on resource: {request.resource}"
                    )

    def _lambda_reads(self) -> Iterator[tuple[str, list[Request]]]:
        stream_reads = ("GetRecords", "GetShardIterator", "DescribeStream")
        for stream in self._stack.stream_subscriptions:
            reads = [Request(f"dynamodb:{action}", stream.stream_arn) for action in stream_reads]
            reads.append(Request("dynamodb:ListStreams", "*"))
            if stream.on_failure:
                reads.append(Request("sqs:SendMessage", stream.on_failure))
            yield stream.function_logical_id, reads
        queue_reads = ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")
        for queue in self._stack.queue_subscriptions:
            yield (
                queue.function_logical_id,
                [Request(f"sqs:{action}", queue.queue_arn) for action in queue_reads],
            )
        for logical_id in self._stack.functions:
            destination = self._stack.async_invoke_config(logical_id).on_failure
            if destination:
                yield logical_id, [Request("sqs:SendMessage", destination)]

    def _policies_of(self, role_arn: str) -> Policies:
        role = self._stack.roles[role_arn]
        managed = [
            self._stack.managed_policies[arn]
            if arn in self._stack.managed_policies
            else aws_managed_policy(arn)
            for arn in role.managed
        ]
        return Policies(key=role_arn, identity=[*role.inline, *managed])

    def _resource_policy(self, resource: str) -> tuple[str, dict[str, Any]] | None:
        """The policy of the resource itself: a bucket's (for its objects too), a function's
        (its permissions), as provisioned; a queue's as it is now (queues made after the
        stack, as an operator subscribes, have theirs)."""
        if resource.startswith("arn:aws:sqs:"):
            region, account, name = resource.split(":")[3:6]
            queue = sqs_backends[account][region].queues.get(name)
            document = queue.policy if queue is not None else None
            return (f"{resource}:{document}", json.loads(document)) if document else None
        owner = resource.split("/", 1)[0] if resource.startswith("arn:aws:s3:::") else resource
        policy = self._stack.resource_policies.get(owner)
        return (owner, policy) if policy is not None else None

    def _secret_arn(self, secret_id: str) -> str:
        """A secret's ARN, with the random suffix Secrets Manager gave it; a secret that does
        not exist has none, so a grant on `{name}-??????` does not match it (AccessDenied, on
        AWS too)."""
        if secret_id.startswith("arn:"):
            return secret_id
        backend = secretsmanager_backends[DEFAULT_ACCOUNT_ID][self._stack.region]
        secret = backend.secrets.get(secret_id)
        if secret is not None:
            return str(secret.arn)
        return (
            f"arn:aws:secretsmanager:{self._stack.region}:{DEFAULT_ACCOUNT_ID}:secret:{secret_id}"
        )

    def _management_api(self, endpoint: str) -> tuple[str, str]:
        """(API id, stage) of a WebSocket API's management endpoint: a deployed one's host
        names its API; the local one's path names its stage."""
        url = urlparse(endpoint)
        stage = url.path.strip("/").split("/")[0]
        for api in self._stack.websocket_apis.values():
            if (url.hostname and url.hostname.startswith(f"{api.api_id}.")) or stage in api.stages:
                return api.api_id, stage
        raise ValueError(f"{endpoint} is no WebSocket API's management endpoint")


class AccessDenied(ClientError):
    """What AWS answers a call its caller may not make (403)."""

    def __init__(
        self, service: str, operation: str, principal: Principal, request: Request, result: Result
    ) -> None:
        why = (
            "with an explicit deny in a resource-based policy"
            if result == "ExplicitlyDenied"
            else f"because no identity-based policy allows the {request.action} action"
        )
        code = "AccessDenied" if service in _SHORT_DENIAL_CODES else "AccessDeniedException"
        message = (
            f"User: {principal.arn} is not authorized to perform: {request.action} on "
            f"resource: {request.resource} {why}"
        )
        response: Any = {  # botocore's TypedDict wants every header; AWS sends these
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }
        super().__init__(response, operation)


def _gated_api_call(gate: IamGate, original: Callable[..., Any]) -> Callable[..., Any]:
    def make_api_call(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if _serving.get():
            return original(self, operation, params)
        gate.check(self, operation, params)
        token = _serving.set(True)
        try:
            return original(self, operation, params)
        finally:
            _serving.reset(token)

    return make_api_call


Submit = Callable[..., Future[Any]]


def _submit_in_the_callers_context(original: Submit) -> Submit:
    """An executor's task runs in its submitter's context: the invocation's principal, and
    its execution environment's root (threadline.runtime)."""

    def submit(
        self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        if _acting.get() is None:
            return original(self, fn, *args, **kwargs)
        return original(self, contextvars.copy_context().run, fn, *args, **kwargs)

    return submit


def _threads_in_the_starters_context(original: Callable[[threading.Thread], None]) -> Any:
    """A thread started while a principal acts (a Step Functions task's invocation thread,
    a handler's own thread) acts as it too."""

    def start(self: threading.Thread) -> None:
        if _acting.get() is not None:
            context, run = contextvars.copy_context(), self.run
            self.run = lambda: context.run(run)  # type: ignore[method-assign]
        original(self)

    return start


# A presigned request's signature, as S3 reads it (X-Amz-Signature, or a form's field).
_SIGNATURE = re.compile(rb"(?i)x-amz-signature(?:=|\"\r\n\r\n)([0-9a-f]{64})")


def _signed_as_their_signer(gate: IamGate, method: str, original: Callable[..., Any]) -> Any:
    """A presigned URL (or POST) works only if its signer may make the request: the URL is
    made whatever the signer's role says, as on AWS, and S3 refuses it when used."""

    def presign(self: BaseClient, *args: Any, **kwargs: Any) -> Any:
        signed = original(self, *args, **kwargs)
        principal = _acting.get()
        if principal is None:
            return signed
        if method == "post":
            bucket, key = (
                args[0] if args else kwargs["Bucket"],
                args[1] if len(args) > 1 else kwargs["Key"],
            )
            action, signature = "s3:PutObject", signed["fields"]["x-amz-signature"]
        else:
            operation = args[0] if args else kwargs["ClientMethod"]
            params = (args[1] if len(args) > 1 else kwargs.get("Params")) or {}
            bucket, key = params["Bucket"], params["Key"]
            action = {"get_object": "s3:GetObject", "put_object": "s3:PutObject"}[operation]
            signature = parse_qs(urlparse(signed).query)["X-Amz-Signature"][0]
        if gate.decide(principal, Request(action, f"arn:aws:s3:::{bucket}/{key}")) != "Allowed":
            gate.refused_signatures.add(signature)
        return signed

    return presign


def _presigned_requests_checked(gate: IamGate, original: Callable[..., Any]) -> Any:
    def respond(self: S3Response, request: Any, full_url: str, *args: Any) -> Any:
        body = request.data if isinstance(getattr(request, "data", None), bytes) else b""
        found = _SIGNATURE.findall(full_url.encode() + b"\n" + body)
        if any(signature.decode() in gate.refused_signatures for signature in found):
            denied = b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
            return (
                403,
                {"content-type": "application/xml"},
                denied + b"<Message>Access Denied</Message></Error>",
            )
        return original(self, request, full_url, *args)

    return respond


def _rule_targets_allowed(gate: IamGate, original: Callable[..., Any]) -> Callable[..., Any]:
    """EventBridge sends a rule's events to a queue only where the queue's policy lets it;
    it drops the others (the rule's FailedInvocations), as here."""

    def send_to_sqs_queue(self: Rule, resource_id: str, event: dict[str, Any], *args: Any) -> None:
        queue = f"arn:aws:sqs:{self.region_name}:{self.account_id}:{resource_id}"
        if gate.service_may_send("events.amazonaws.com", queue, self.arn):
            original(self, resource_id, event, *args)
        else:
            logger.warning("EventBridge may not send to %s for %s: dropped", queue, self.arn)

    return send_to_sqs_queue


def _executions_as_their_role(
    stack: LocalStack, original: Callable[..., Any]
) -> Callable[..., Any]:
    machines = {arn: logical_id for logical_id, arn in stack.state_machines.items()}

    def execution_logic(self: ExecutionWorker) -> None:
        details = self._evaluation_details
        machine = details.state_machine_details.arn
        role = details.aws_execution_details.role_arn
        name = machines.get(machine, machine.rsplit(":", 1)[-1])
        with acting_as(Principal(name=name, role_arn=role, session=name)):
            original(self)

    return execution_logic


@contextmanager
def enforced(stack: LocalStack, *, usage_to: Path | None = None) -> Iterator[IamGate]:
    """Enforce the stack's roles on every AWS call while the context lasts; `usage_to`: the
    folder to write, at the end, which grants were used (`local.aws.iam.usage`)."""
    simulator = PolicySimulator()
    gate = IamGate(stack, simulator)
    patches = [
        (BaseClient, "_make_api_call", lambda original: _gated_api_call(gate, original)),
        (ThreadPoolExecutor, "submit", _submit_in_the_callers_context),
        (threading.Thread, "start", _threads_in_the_starters_context),
        (Rule, "_send_to_sqs_queue", lambda original: _rule_targets_allowed(gate, original)),
        (signers, "generate_presigned_url", lambda o: _signed_as_their_signer(gate, "url", o)),
        (signers, "generate_presigned_post", lambda o: _signed_as_their_signer(gate, "post", o)),
        (S3Response, "key_response", lambda o: _presigned_requests_checked(gate, o)),
        (S3Response, "bucket_response", lambda o: _presigned_requests_checked(gate, o)),
        (
            ExecutionWorker,
            "_execution_logic",
            lambda original: _executions_as_their_role(stack, original),
        ),
    ]
    originals = [(owner, name, owner.__dict__[name]) for owner, name, _wrap in patches]
    for owner, name, wrap in patches:
        setattr(owner, name, wrap(owner.__dict__[name]))
    stack.iam = gate
    try:
        gate.check_lambdas_reach()
        yield gate
    finally:
        if usage_to is not None:
            write_usage(stack, gate.decisions, usage_to)
        stack.iam = None
        for owner, name, original in originals:
            setattr(owner, name, original)
        simulator.close()
