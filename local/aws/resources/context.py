"""What every resource provisioner receives: where to create things and where to record them."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3

from local.aws.intrinsics import ProvisionedResource, Resolver
from local.aws.local_stack import LocalStack

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_stepfunctions import SFNClient


class UnsupportedResource(Exception):
    """The local stack cannot create this resource type (or this part of a resource)."""

    def __init__(self, logical_id: str, resource_type: str) -> None:
        super().__init__(f"{logical_id}: {resource_type} is not supported by the local stack")
        self.logical_id = logical_id
        self.resource_type = resource_type


@dataclass
class ProvisionContext:
    stack: LocalStack
    account_id: str
    template_dir: Path
    resolver: Resolver
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def region(self) -> str:
        return self.stack.region

    # Typed for the services whose stubs the project installs; others are untyped (Any), as
    # boto3.client itself is for them.
    @overload
    def client(self, service: Literal["dynamodb"]) -> DynamoDBClient: ...
    @overload
    def client(self, service: Literal["lambda"]) -> LambdaClient: ...
    @overload
    def client(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def client(self, service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
    @overload
    def client(self, service: Literal["stepfunctions"]) -> SFNClient: ...
    @overload
    def client(self, service: str) -> Any: ...
    def client(self, service: str) -> Any:
        if service not in self._clients:
            # boto3.client is typed for literal service names only.
            client = boto3.client(service, region_name=self.region)  # type: ignore[call-overload]
            self._clients[service] = client
        return self._clients[service]

    def physical_name(self, logical_id: str, *, max_length: int, lowercase: bool = False) -> str:
        """A CloudFormation-style generated name: `{stack}-{logical id}-{random suffix}`."""
        alphabet = string.ascii_uppercase + string.digits
        suffix = "".join(secrets.choice(alphabet) for _ in range(12))
        prefix = f"{self.stack.stack_name}-{logical_id}"[: max_length - len(suffix) - 1]
        name = f"{prefix}-{suffix}"
        return name.lower() if lowercase else name

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"

    def record(self, logical_id: str, resource: ProvisionedResource) -> None:
        """Make the resource resolvable by later Ref/GetAtt/Sub and list it in the stack."""
        self.resolver.add_resource(logical_id, resource)
        self.stack.resources[logical_id] = resource.ref


Provisioner = Callable[[ProvisionContext, str, dict[str, Any]], ProvisionedResource]
