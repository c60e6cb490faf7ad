"""The provisioned local stack: what was created in moto, and how to drive its functions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import boto3

from local.aws.records import (
    AsyncInvokeConfig,
    FunctionSpec,
    HttpApiSpec,
    HttpRoute,
    Invoker,
    QueueSubscription,
    RoleSpec,
    S3Subscription,
    ScheduleSpec,
    StreamSubscription,
    WebSocketApiSpec,
)
from local.aws.s3_events import OBJECT_CREATED_PUT, object_created_event

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

    from local.aws.event_sources import EventSources

# The object-created events S3 sends; a subscription names these or `s3:ObjectCreated:*`.
OBJECT_CREATED_EVENTS = frozenset(
    {
        OBJECT_CREATED_PUT,
        "s3:ObjectCreated:Post",
        "s3:ObjectCreated:Copy",
        "s3:ObjectCreated:CompleteMultipartUpload",
    }
)


class InvokeChecks(Protocol):
    """What IAM says of a service's invocation (local.aws.iam.gate.IamGate)."""

    def refusal(self, invoker: Invoker, function_arn: str) -> str | None: ...


class FunctionInvocationError(Exception):
    """A function failed; `payload` is the runtime's errorType/errorMessage/stackTrace."""

    def __init__(self, function_name: str, payload: dict[str, Any]) -> None:
        super().__init__(
            f"{function_name} failed with {payload.get('errorType')}: {payload.get('errorMessage')}"
        )
        self.function_name = function_name
        self.payload = payload


@dataclass
class LocalStack:
    stack_name: str
    region: str
    resources: dict[str, str] = field(default_factory=dict)  # logical id -> physical id/ARN
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    layers: dict[str, Path] = field(default_factory=dict)  # logical id -> ContentUri
    http_apis: dict[str, HttpApiSpec] = field(default_factory=dict)
    http_routes: list[HttpRoute] = field(default_factory=list)
    websocket_apis: dict[str, WebSocketApiSpec] = field(default_factory=dict)
    schedules: list[ScheduleSpec] = field(default_factory=list)
    s3_subscriptions: list[S3Subscription] = field(default_factory=list)
    stream_subscriptions: list[StreamSubscription] = field(default_factory=list)
    queue_subscriptions: list[QueueSubscription] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    # What IAM decides with (local/aws/iam): the roles, the stack's managed policies' and
    # the resources' own policies (buckets', queues', functions') documents, by ARN.
    roles: dict[str, RoleSpec] = field(default_factory=dict)
    managed_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    resource_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Each API's stage (by API id), for the ARNs its calls come from.
    api_stages: dict[str, str] = field(default_factory=dict)
    # Set while IAM is enforced (local.aws.iam.gate.enforced).
    iam: InvokeChecks | None = field(default=None, repr=False, compare=False)
    # S3 notifications, table streams and schedules delivered asynchronously (see
    # local/aws/event_sources.py).
    event_sources: EventSources = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from local.aws.event_sources import EventSources  # that module imports this one

        self.event_sources = EventSources(self)

    @property
    def registry(self) -> dict[str, FunctionSpec]:
        """Functions by name, for `lambda_runtime.install`."""
        return {spec.name: spec for spec in self.functions.values()}

    def environment(self) -> dict[str, str]:
        """Every function's environment variables, plus the region variables Lambda sets, for
        os.environ: in-process handlers share one environment, so values must agree."""
        merged = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        owners = dict.fromkeys(merged, "Lambda")
        for spec in self.functions.values():
            for name, value in spec.environment.items():
                if name in merged and merged[name] != value:
                    raise ValueError(
                        f"{spec.logical_id} sets {name}={value!r} but {owners[name]} sets "
                        f"{merged[name]!r}; in-process handlers share one environment"
                    )
                merged[name] = value
                owners.setdefault(name, spec.logical_id)
        return merged

    def function(self, logical_id_or_name: str) -> FunctionSpec:
        if logical_id_or_name in self.functions:
            return self.functions[logical_id_or_name]
        for spec in self.functions.values():
            if spec.name == logical_id_or_name:
                return spec
        raise KeyError(f"the stack has no function {logical_id_or_name!r}")

    def invoke(self, logical_id_or_name: str, event: Any, *, invoker: Invoker | None = None) -> Any:
        """Invoke a function through moto's Lambda API (so through the in-process runtime) and
        return its decoded result; raise FunctionInvocationError if it failed, or if
        `invoker` (a service) may not invoke it (then it does not run)."""
        spec = self.function(logical_id_or_name)
        refusal = self.iam.refusal(invoker, spec.arn) if self.iam and invoker else None
        if refusal is not None:
            raise FunctionInvocationError(
                spec.name, {"errorType": "AccessDeniedException", "errorMessage": refusal}
            )
        response = self._lambda.invoke(FunctionName=spec.name, Payload=json.dumps(event))
        payload = json.loads(response["Payload"].read() or b"null")
        if "FunctionError" in response:
            raise FunctionInvocationError(spec.name, payload)
        return payload

    def async_invoke_config(self, logical_id_or_name: str) -> AsyncInvokeConfig:
        """The function's EventInvokeConfig as stored in moto (Lambda's defaults without)."""
        spec = self.function(logical_id_or_name)
        try:
            config = self._lambda.get_function_event_invoke_config(FunctionName=spec.name)
        except self._lambda.exceptions.ResourceNotFoundException:
            return AsyncInvokeConfig()
        return AsyncInvokeConfig(
            maximum_retry_attempts=config.get("MaximumRetryAttempts", 2),
            on_failure=config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"),
        )

    def send_to_queue(self, queue_arn: str, message: Any) -> None:
        """Send `message` (as JSON) to the SQS queue with this ARN, as a destination would."""
        account, name = queue_arn.split(":")[4:6]
        url = self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        self._sqs.send_message(QueueUrl=url, MessageBody=json.dumps(message))

    def deliver_s3_event(
        self, bucket: str, key: str, event_name: str = OBJECT_CREATED_PUT
    ) -> list[Any]:
        """Notify the functions subscribed to `event_name` (e.g. `s3:ObjectCreated:Copy`) on
        this object (bucket by logical id or name) as S3 would, synchronously; return their
        results in order."""
        bucket_name = self.resources.get(bucket, bucket)
        head = self._s3.head_object(Bucket=bucket_name, Key=key)
        return [
            self.invoke(function_logical_id, event)
            for function_logical_id, event in self.s3_notifications(
                bucket_name, key, event_name, head
            )
        ]

    def s3_notifications(
        self, bucket_name: str, key: str, event_name: str, head: Mapping[str, Any]
    ) -> list[tuple[str, dict[str, Any]]]:
        """The (function logical id, event) pairs S3 sends when `event_name` happens to an
        object described by `head` (a `head_object` response, or the same fields)."""
        if event_name not in OBJECT_CREATED_EVENTS:
            raise ValueError(f"{event_name!r} is not one of {sorted(OBJECT_CREATED_EVENTS)}")
        notifications = []
        for subscription in self.s3_subscriptions:
            if not subscription.matches(bucket_name, key, event_name):
                continue
            event = object_created_event(
                bucket=bucket_name,
                key=key,
                head=head,
                region=self.region,
                configuration_id=subscription.event_name,
            )
            # object_created_event names every event `ObjectCreated:Put`.
            event["Records"][0]["eventName"] = event_name.removeprefix("s3:")
            notifications.append((subscription.function_logical_id, event))
        return notifications

    @cached_property
    def _lambda(self) -> LambdaClient:
        return boto3.client("lambda", region_name=self.region)

    @cached_property
    def _s3(self) -> S3Client:
        return boto3.client("s3", region_name=self.region)

    @cached_property
    def _sqs(self) -> Any:  # no SQS stubs are installed
        return boto3.client("sqs", region_name=self.region)
