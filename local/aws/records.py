"""What provisioning recorded about functions and their triggers, for the in-process Lambda
runtime, a local HTTP server and a local scheduler to use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FunctionSpec:
    """One `AWS::Lambda::Function` (what the SAM transform made of a function), as created
    in moto; its calls are made with its role's permissions (`local.aws.iam_gate`)."""

    logical_id: str
    name: str
    arn: str
    role_arn: str
    code_dir: Path
    handler: str
    environment: Mapping[str, str]
    timeout: int
    memory: int


@dataclass(frozen=True)
class Invoker:
    """Who invokes a function on a service's behalf: the service (apigateway.amazonaws.com,
    s3.amazonaws.com, ...), allowed by the function's own policy for its source - or, where
    the service acts with a role (EventBridge Scheduler), that role."""

    service: str
    source_arn: str | None = None
    source_account: str | None = None
    role_arn: str | None = None


@dataclass
class RoleSpec:
    """An IAM role as provisioned: its inline policies' documents and the ARNs of the
    managed policies attached to it (AWS's, and the stack's own)."""

    logical_id: str
    name: str
    arn: str
    inline: list[dict[str, Any]] = field(default_factory=list)
    managed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AsyncInvokeConfig:
    """What Lambda does with a function's failed asynchronous invocations (its
    EventInvokeConfig): retry them, then send an invocation record to `on_failure`."""

    maximum_retry_attempts: int = 2  # Lambda's default
    on_failure: str | None = None  # the ARN of an SQS queue


@dataclass(frozen=True)
class JwtAuthorizer:
    name: str
    issuer: str
    audience: tuple[str, ...]
    identity_source: str


@dataclass(frozen=True)
class HttpApiSpec:
    """An HTTP API (`AWS::ApiGatewayV2::Api` with an OpenAPI Body, as SAM makes one)."""

    logical_id: str
    api_id: str
    endpoint: str
    authorizers: Mapping[str, JwtAuthorizer]


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str
    function_logical_id: str
    api_logical_id: str
    authorizer: str | None  # None: the route is public

    @property
    def auth_required(self) -> bool:
        return self.authorizer is not None


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule rule's (or EventBridge Scheduler schedule's) Lambda target: invoke the
    function on a rate or cron expression."""

    function_logical_id: str
    event_name: str  # SAM's event name (the rule's logical id less the function's)
    source: str  # aws.events (an EventBridge rule) or aws.scheduler (a Scheduler schedule)
    resource_arn: str  # the rule's or schedule's
    expression: str
    input: str | None  # the event the function receives, as a JSON string
    enabled: bool
    role_arn: str | None = None  # a Scheduler schedule's: it invokes with this role


@dataclass(frozen=True)
class S3Subscription:
    """A bucket's Lambda notification: S3 notifies the function of matching object events."""

    function_logical_id: str
    event_name: str
    bucket: str
    events: tuple[str, ...]
    prefix: str
    suffix: str

    def matches(self, bucket: str, key: str, event_name: str) -> bool:
        """Whether S3 would notify this subscription, e.g. of `s3:ObjectCreated:Put`."""
        return (
            bucket == self.bucket
            and key.startswith(self.prefix)
            and key.endswith(self.suffix)
            and any(
                pattern == event_name
                or (pattern.endswith("*") and event_name.startswith(pattern[:-1]))
                for pattern in self.events
            )
        )


@dataclass(frozen=True)
class QueueSubscription:
    """An event source mapping from an SQS queue: Lambda polls the queue and invokes the
    function with batches of the messages it receives."""

    function_logical_id: str
    queue_arn: str
    batch_size: int
    partial_batch_responses: bool  # FunctionResponseTypes has ReportBatchItemFailures

    @property
    def queue_name(self) -> str:
        return self.queue_arn.rsplit(":", 1)[1]


@dataclass(frozen=True)
class StreamSubscription:
    """A `DynamoDB` event: Lambda reads the table's stream and invokes the function with
    batches of the records its filters pass (all, without filters)."""

    function_logical_id: str
    event_name: str
    table_name: str
    stream_arn: str
    patterns: tuple[str, ...]  # FilterCriteria patterns, as JSON
    batch_size: int
    maximum_retry_attempts: int  # -1: until the record expires, as Lambda's default
    partial_batch_responses: bool  # FunctionResponseTypes has ReportBatchItemFailures
    on_failure: str | None  # the ARN of an SQS queue


@dataclass(frozen=True)
class WebSocketAuthorizer:
    """A REQUEST authorizer: its function, and the parts of the request it needs."""

    function_logical_id: str
    identity_source: tuple[str, ...]  # e.g. route.request.querystring.token


@dataclass
class WebSocketApiSpec:
    """An `AWS::ApiGatewayV2::Api` with ProtocolType WEBSOCKET, and what hangs off it."""

    logical_id: str
    api_id: str
    route_selection_expression: str
    authorizers: dict[str, WebSocketAuthorizer] = field(default_factory=dict)  # by id
    integrations: dict[str, str] = field(default_factory=dict)  # id -> function logical id
    # route key -> (integration id, authorizer id or None)
    routes: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    stages: list[str] = field(default_factory=list)
