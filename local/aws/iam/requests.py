"""What IAM checks for one AWS API call: the actions, on which resources, with which
condition keys (the Service Authorization Reference's mapping, for the calls the product
makes). A call this module does not know is refused loudly: the local stack would otherwise
let through what AWS checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from local.aws.iam.policies import Request


@dataclass(frozen=True)
class Call:
    """One API call as botocore makes it."""

    service: str  # botocore's service name, e.g. dynamodb, stepfunctions
    operation: str  # e.g. PutItem
    params: Mapping[str, Any]
    region: str
    account: str
    endpoint: str  # the client's endpoint URL


class UnmappedCall(Exception):
    """A call the local stack cannot check: map it in local/aws/iam/requests.py."""


def _arn(call: Call, service: str, resource: str) -> str:
    return f"arn:aws:{service}:{call.region}:{call.account}:{resource}"


def _table(call: Call, name: str, index: str | None = None) -> str:
    table = name.rsplit(":table/", 1)[-1]  # a name, or the table's ARN
    return _arn(call, "dynamodb", f"table/{table}" + (f"/index/{index}" if index else ""))


def _dynamodb(call: Call) -> list[Request]:
    params, operation = call.params, call.operation
    if operation == "TransactWriteItems":
        kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
        kinds["ConditionCheck"] = "ConditionCheckItem"
        return [
            Request(f"dynamodb:{kinds[kind]}", _table(call, item[kind]["TableName"]))
            for item in params["TransactItems"]
            for kind in item
        ]
    if operation in ("BatchWriteItem", "BatchGetItem"):
        tables = params["RequestItems"]
        return [Request(f"dynamodb:{operation}", _table(call, name)) for name in tables]
    table = _table(call, params["TableName"], params.get("IndexName"))
    return [Request(f"dynamodb:{operation}", table)]


def _object(call: Call, key: str, version: str | None, action: str) -> Request:
    versioned = {"GetObject": "GetObjectVersion", "DeleteObject": "DeleteObjectVersion"}
    return Request(
        f"s3:{versioned[action] if version and action in versioned else action}",
        f"arn:aws:s3:::{call.params['Bucket']}/{key}",
    )


def _s3(call: Call) -> list[Request]:
    params, operation = call.params, call.operation
    listings = {"ListObjectsV2": "ListBucket", "ListObjects": "ListBucket"}
    listings["ListObjectVersions"] = "ListBucketVersions"
    if operation in listings:
        prefix = {"s3:prefix": params["Prefix"]} if "Prefix" in params else {}
        return [Request(f"s3:{listings[operation]}", f"arn:aws:s3:::{params['Bucket']}", prefix)]
    if operation == "DeleteObjects":
        return [
            _object(call, item["Key"], item.get("VersionId"), "DeleteObject")
            for item in params["Delete"]["Objects"]
        ]
    actions = {"HeadObject": "GetObject", "GetObject": "GetObject", "PutObject": "PutObject"}
    actions |= {"DeleteObject": "DeleteObject", "CreateMultipartUpload": "PutObject"}
    actions |= {"UploadPart": "PutObject", "CompleteMultipartUpload": "PutObject"}
    if operation in actions:
        return [_object(call, params["Key"], params.get("VersionId"), actions[operation])]
    raise UnmappedCall(f"s3:{operation}")


def _lambda(call: Call) -> list[Request]:
    if call.operation != "Invoke":
        raise UnmappedCall(f"lambda:{call.operation}")
    name = call.params["FunctionName"]
    arn = name if name.startswith("arn:") else _arn(call, "lambda", f"function:{name}")
    if "Qualifier" in call.params:
        arn = f"{arn}:{call.params['Qualifier']}"
    return [Request("lambda:InvokeFunction", arn)]


def _stepfunctions(call: Call) -> list[Request]:
    params = call.params
    by_arn = {
        "StartExecution": "stateMachineArn",
        "ListExecutions": "stateMachineArn",
        "DescribeExecution": "executionArn",
        "StopExecution": "executionArn",
        "GetExecutionHistory": "executionArn",
    }
    if call.operation in by_arn:
        return [Request(f"states:{call.operation}", params[by_arn[call.operation]])]
    if call.operation in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
        return [Request(f"states:{call.operation}", "*")]  # the token is what authorises
    raise UnmappedCall(f"states:{call.operation}")


def _secret(call: Call, secret_arn: Callable[[str], str]) -> list[Request]:
    if call.operation not in ("GetSecretValue", "DescribeSecret"):
        raise UnmappedCall(f"secretsmanager:{call.operation}")
    return [Request(f"secretsmanager:{call.operation}", secret_arn(call.params["SecretId"]))]


def _ssm(call: Call) -> list[Request]:
    names = call.params["Names"] if call.operation == "GetParameters" else [call.params["Name"]]
    if call.operation not in ("GetParameter", "GetParameters"):
        raise UnmappedCall(f"ssm:{call.operation}")
    return [
        Request(f"ssm:{call.operation}", _arn(call, "ssm", f"parameter/{name.lstrip('/')}"))
        for name in names
    ]


def _events(call: Call) -> list[Request]:
    if call.operation != "PutEvents":
        raise UnmappedCall(f"events:{call.operation}")
    buses = {entry.get("EventBusName", "default") for entry in call.params["Entries"]}
    arns = [b if b.startswith("arn:") else _arn(call, "events", f"event-bus/{b}") for b in buses]
    return [Request("events:PutEvents", arn) for arn in sorted(arns)]


def _sqs(call: Call) -> list[Request]:
    if call.operation == "GetQueueUrl":
        return [Request("sqs:GetQueueUrl", _arn(call, "sqs", call.params["QueueName"]))]
    path = urlparse(call.params["QueueUrl"]).path.strip("/").split("/")
    action = call.operation.removesuffix("Batch")
    return [Request(f"sqs:{action}", _arn(call, "sqs", path[-1]))]


def _connections(call: Call, api_of: Callable[[str], tuple[str, str]]) -> list[Request]:
    methods = {"PostToConnection": "POST", "GetConnection": "GET", "DeleteConnection": "DELETE"}
    if call.operation not in methods:
        raise UnmappedCall(f"execute-api:{call.operation}")
    api_id, stage = api_of(call.endpoint)
    method, connection = methods[call.operation], call.params["ConnectionId"]
    resource = f"{api_id}/{stage}/{method}/@connections/{connection}"
    return [Request("execute-api:ManageConnections", _arn(call, "execute-api", resource))]


@dataclass(frozen=True)
class RequestMapper:
    """Maps calls to requests; `secret_arn` names a secret's ARN (its random suffix is the
    service's), `management_api` the (API id, stage) of a WebSocket management endpoint."""

    secret_arn: Callable[[str], str]
    management_api: Callable[[str], tuple[str, str]]

    def requests(self, call: Call) -> list[Request]:
        mappers: dict[str, Callable[[Call], list[Request]]] = {
            "dynamodb": _dynamodb,
            "s3": _s3,
            "lambda": _lambda,
            "stepfunctions": _stepfunctions,
            "secretsmanager": lambda call: _secret(call, self.secret_arn),
            "ssm": _ssm,
            "events": _events,
            "sqs": _sqs,
            "apigatewaymanagementapi": lambda call: _connections(call, self.management_api),
        }
        if call.service not in mappers:
            raise UnmappedCall(f"{call.service}:{call.operation}")
        return mappers[call.service](call)
