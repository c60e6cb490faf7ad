"""Lambda as the SAM transform leaves it: AWS::Lambda::LayerVersion and ::Function (created
in moto with placeholder code; the real handlers run in-process, see lambda_runtime, from
the recorded FunctionSpec), ::Permission, ::EventSourceMapping and ::EventInvokeConfig."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.aws.intrinsics import ProvisionedResource, as_template_string
from local.aws.records import FunctionSpec, QueueSubscription, StreamSubscription
from local.aws.resources.context import ProvisionContext, UnsupportedResource
from local.aws.sam_translation import LOCAL_CODE_BUCKET

if TYPE_CHECKING:
    from mypy_boto3_lambda.type_defs import DestinationConfigTypeDef

# Lambda's defaults when the template sets none.
_DEFAULT_TIMEOUT_SECONDS = 3
_DEFAULT_MEMORY_MB = 128


@cache
def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "Runs in-process: see local/aws/lambda_runtime.py\n")
    return buffer.getvalue()


def code_folder(ctx: ProvisionContext, logical_id: str, location: Any) -> Path:
    """The template's folder a packaged code location names (`sam_translation.packaged`)."""
    if not isinstance(location, dict) or location.get("S3Bucket", location.get("Bucket")) != (
        LOCAL_CODE_BUCKET
    ):
        raise UnsupportedResource(logical_id, "code other than a folder of the template's")
    path = (ctx.template_dir / str(location.get("S3Key", location.get("Key")))).resolve()
    if not path.exists():
        raise FileNotFoundError(f"{logical_id}: {path} does not exist")
    return path


def provision_layer(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    # The layer's packages are importable already (pytest's pythonpath); it is published in
    # moto only because moto rejects functions that name unknown layer versions.
    ctx.stack.layers[logical_id] = code_folder(ctx, logical_id, properties["Content"])
    optional = {
        key: properties[key]
        for key in ("Description", "CompatibleRuntimes", "CompatibleArchitectures")
        if key in properties
    }
    arn = ctx.client("lambda").publish_layer_version(
        LayerName=properties.get("LayerName", logical_id),
        Content={"ZipFile": _placeholder_zip()},
        **optional,
    )["LayerVersionArn"]
    return ProvisionedResource(ref=arn)


def provision_function(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    if properties.get("PackageType", "Zip") != "Zip" or "ZipFile" in properties["Code"]:
        raise UnsupportedResource(logical_id, "a function without a local code folder")
    code_dir = code_folder(ctx, logical_id, properties["Code"])
    handler = properties["Handler"]
    source = code_dir / f"{handler.rpartition('.')[0].replace('.', '/')}.py"
    if not source.is_file():
        raise FileNotFoundError(f"{logical_id}: handler {handler} needs {source}")
    name = properties.get("FunctionName") or ctx.physical_name(logical_id, max_length=64)
    environment = {
        key: as_template_string(value)
        for key, value in properties.get("Environment", {}).get("Variables", {}).items()
    }
    timeout = int(properties.get("Timeout", _DEFAULT_TIMEOUT_SECONDS))
    memory = int(properties.get("MemorySize", _DEFAULT_MEMORY_MB))
    stack_layers = {ctx.stack.resources[layer_id] for layer_id in ctx.stack.layers}
    optional: dict[str, Any] = {
        key: properties[key]
        for key in ("Description", "Architectures", "TracingConfig")
        if key in properties
    }
    arn = ctx.client("lambda").create_function(
        FunctionName=name,
        Runtime=properties["Runtime"],
        Role=properties["Role"],
        Handler=handler,
        Code={"ZipFile": _placeholder_zip()},
        Timeout=timeout,
        MemorySize=memory,
        Environment={"Variables": environment},
        # Layers published elsewhere are unknown to moto (and their packages must be
        # importable here anyway), so only this stack's layers are attached.
        Layers=[layer for layer in properties.get("Layers", []) if layer in stack_layers],
        Tags={tag["Key"]: as_template_string(tag["Value"]) for tag in properties.get("Tags", [])},
        **optional,
    )["FunctionArn"]
    if "ReservedConcurrentExecutions" in properties:
        # Recorded so it reads back as deployed; the in-process runtime throttles nothing.
        ctx.client("lambda").put_function_concurrency(
            FunctionName=name,
            ReservedConcurrentExecutions=int(properties["ReservedConcurrentExecutions"]),
        )
    ctx.stack.functions[logical_id] = FunctionSpec(
        logical_id=logical_id,
        name=name,
        arn=arn,
        role_arn=properties["Role"],
        code_dir=code_dir,
        handler=handler,
        environment=environment,
        timeout=timeout,
        memory=memory,
    )
    return ProvisionedResource(ref=name, attributes={"Arn": arn})


def _function_named(ctx: ProvisionContext, logical_id: str, name: str) -> FunctionSpec:
    """The stack's function a FunctionName (a name or an ARN, unqualified) names."""
    for spec in ctx.stack.functions.values():
        if name in (spec.name, spec.arn, f"{spec.arn}:$LATEST"):
            return spec
    raise ValueError(f"{logical_id}: {name!r} is no function of the stack")


def provision_permission(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    """A statement of the function's resource policy, in moto: who else may invoke it."""
    function = _function_named(ctx, logical_id, properties["FunctionName"])
    optional = {key: properties[key] for key in ("SourceArn", "SourceAccount") if key in properties}
    statement = json.loads(
        ctx.client("lambda").add_permission(
            FunctionName=function.name,
            StatementId=logical_id,
            Action=properties["Action"],
            Principal=properties["Principal"],
            **optional,
        )["Statement"]
    )
    policy = ctx.stack.resource_policies.setdefault(
        function.arn, {"Version": "2012-10-17", "Statement": []}
    )
    policy["Statement"].append(statement)
    return ProvisionedResource(ref=statement["Sid"])


def provision_event_source_mapping(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    """What Lambda polls for the function: an SQS queue, or a DynamoDB table's stream.
    Recorded on the stack, not created in moto: moto's SQS would invoke the function as each
    message is sent, one at a time, and delete a message the function reported failed; the
    local event sources poll as Lambda does instead (local/aws/event_sources.py)."""
    function = _function_named(ctx, logical_id, properties["FunctionName"])
    if properties.get("Enabled", True) not in (False, "false"):
        subscription = _subscription(logical_id, function, properties)
        if isinstance(subscription, QueueSubscription):
            ctx.stack.queue_subscriptions.append(subscription)
        else:
            ctx.stack.stream_subscriptions.append(subscription)
    mapping_id = str(uuid.uuid4())
    return ProvisionedResource(
        ref=mapping_id,
        attributes={
            "EventSourceMappingArn": ctx.arn("lambda", f"event-source-mapping:{mapping_id}")
        },
    )


def _subscription(
    logical_id: str, function: FunctionSpec, properties: dict[str, Any]
) -> QueueSubscription | StreamSubscription:
    source = properties["EventSourceArn"]
    partial = "ReportBatchItemFailures" in properties.get("FunctionResponseTypes", [])
    if ":sqs:" in source:
        return QueueSubscription(
            function_logical_id=function.logical_id,
            queue_arn=source,
            batch_size=int(properties.get("BatchSize", 10)),
            partial_batch_responses=partial,
        )
    if ":dynamodb:" not in source or "/stream/" not in source:
        raise UnsupportedResource(logical_id, "an event source other than SQS or DynamoDB")
    return StreamSubscription(
        function_logical_id=function.logical_id,
        event_name=logical_id,
        # arn:aws:dynamodb:{region}:{account}:table/{name}/stream/{label}
        table_name=source.split(":table/", 1)[1].split("/stream/", 1)[0],
        stream_arn=source,
        patterns=tuple(
            item["Pattern"] for item in properties.get("FilterCriteria", {}).get("Filters", [])
        ),
        batch_size=int(properties.get("BatchSize", 100)),
        maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
        partial_batch_responses=partial,
        on_failure=properties.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"),
    )


def provision_event_invoke_config(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    """What Lambda does with the function's failed asynchronous invocations, stored in moto
    (the local event sources read it back: they honour its retries and an SQS OnFailure
    destination, nothing else)."""
    function = _function_named(ctx, logical_id, properties["FunctionName"])
    destinations: DestinationConfigTypeDef = {}
    for outcome, destination in properties.get("DestinationConfig", {}).items():
        if outcome != "OnFailure" or ":sqs:" not in destination.get("Destination", ""):
            raise UnsupportedResource(logical_id, f"an {outcome} destination other than SQS")
        destinations["OnFailure"] = {"Destination": destination["Destination"]}
    config: dict[str, Any] = {
        key: int(properties[key])
        for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds")
        if key in properties
    }
    ctx.client("lambda").put_function_event_invoke_config(
        FunctionName=function.name, DestinationConfig=destinations, **config
    )
    return ProvisionedResource(ref=f"{function.name}:{properties.get('Qualifier', '$LATEST')}")
