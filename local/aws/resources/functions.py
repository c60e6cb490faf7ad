"""AWS::Serverless::LayerVersion and AWS::Serverless::Function: created in moto with placeholder
code; the real handlers run in-process (see lambda_runtime) from the recorded FunctionSpec."""

from __future__ import annotations

import io
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

from local.aws.intrinsics import ProvisionedResource, as_template_string
from local.aws.records import FunctionSpec, S3Subscription, ScheduleSpec, StreamSubscription
from local.aws.resources.context import ProvisionContext, UnsupportedResource
from local.aws.resources.http_apis import route_for_event
from local.aws.resources.iam import create_execution_role

# Lambda's defaults when neither the function nor Globals set them.
_DEFAULT_TIMEOUT_SECONDS = 3
_DEFAULT_MEMORY_MB = 128


@cache
def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "Runs in-process: see local/aws/lambda_runtime.py\n")
    return buffer.getvalue()


def _existing_dir(ctx: ProvisionContext, logical_id: str, uri: Any, property_name: str) -> Path:
    if not isinstance(uri, str):
        raise UnsupportedResource(logical_id, f"{property_name} other than a local folder")
    path = (ctx.template_dir / uri).resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"{logical_id}: {property_name} {path} does not exist")
    return path


def provision_layer(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    # The layer's packages are importable already (pytest's pythonpath); it is published in
    # moto only because moto rejects functions that name unknown layer versions.
    content_dir = _existing_dir(ctx, logical_id, properties["ContentUri"], "ContentUri")
    ctx.stack.layers[logical_id] = content_dir
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
    if properties.get("PackageType", "Zip") != "Zip" or "InlineCode" in properties:
        raise UnsupportedResource(logical_id, "a function without a local CodeUri folder")
    code_dir = _existing_dir(ctx, logical_id, properties.get("CodeUri"), "CodeUri")
    handler = properties["Handler"]
    module_path = handler.rpartition(".")[0]
    source = code_dir / f"{module_path.replace('.', '/')}.py"
    if not source.is_file():
        raise FileNotFoundError(f"{logical_id}: handler {handler} needs {source}")

    async_invocation = (
        _async_invocation_config(logical_id, properties["EventInvokeConfig"])
        if "EventInvokeConfig" in properties
        else None
    )
    name = properties.get("FunctionName") or ctx.physical_name(logical_id, max_length=64)
    role = properties.get("Role") or create_execution_role(
        ctx, f"{logical_id}Role", "lambda.amazonaws.com", properties.get("Policies", [])
    )
    environment = {
        key: as_template_string(value)
        for key, value in properties.get("Environment", {}).get("Variables", {}).items()
    }
    timeout = int(properties.get("Timeout", _DEFAULT_TIMEOUT_SECONDS))
    memory = int(properties.get("MemorySize", _DEFAULT_MEMORY_MB))
    stack_layers = {ctx.stack.resources[layer_id] for layer_id in ctx.stack.layers}
    optional: dict[str, Any] = {
        key: properties[key] for key in ("Description", "Architectures") if key in properties
    }
    if "Tracing" in properties:
        optional["TracingConfig"] = {"Mode": properties["Tracing"]}
    arn = ctx.client("lambda").create_function(
        FunctionName=name,
        Runtime=properties["Runtime"],
        Role=role,
        Handler=handler,
        Code={"ZipFile": _placeholder_zip()},
        Timeout=timeout,
        MemorySize=memory,
        Environment={"Variables": environment},
        # Layers published elsewhere are unknown to moto (and their packages must be
        # importable here anyway), so only this stack's layers are attached.
        Layers=[layer for layer in properties.get("Layers", []) if layer in stack_layers],
        Tags={key: as_template_string(value) for key, value in properties.get("Tags", {}).items()},
        **optional,
    )["FunctionArn"]

    if async_invocation is not None:
        ctx.client("lambda").put_function_event_invoke_config(FunctionName=name, **async_invocation)
    if "ReservedConcurrentExecutions" in properties:
        # Recorded so it reads back as deployed; the in-process runtime throttles nothing.
        ctx.client("lambda").put_function_concurrency(
            FunctionName=name,
            ReservedConcurrentExecutions=int(properties["ReservedConcurrentExecutions"]),
        )
    events = properties.get("Events", {})
    ctx.stack.functions[logical_id] = FunctionSpec(
        logical_id=logical_id,
        name=name,
        arn=arn,
        code_dir=code_dir,
        handler=handler,
        environment=environment,
        timeout=timeout,
        memory=memory,
        events=events,
    )
    for event_name, event in events.items():
        _record_event(ctx, logical_id, event_name, event["Type"], event.get("Properties", {}))
    return ProvisionedResource(ref=name, attributes={"Arn": arn})


def _async_invocation_config(logical_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """SAM's EventInvokeConfig as PutFunctionEventInvokeConfig takes it. Stored in moto, where
    the local event sources read it back (`LocalStack.async_invoke_config`): they honour its
    retries and an SQS OnFailure destination, nothing else."""
    destinations = {}
    for outcome, destination in config.get("DestinationConfig", {}).items():
        # SAM's `Type` is not Lambda's; without a Destination SAM would make the queue.
        if (
            outcome != "OnFailure"
            or destination.get("Type") != "SQS"
            or not destination.get("Destination")
        ):
            raise UnsupportedResource(
                logical_id, f"an EventInvokeConfig {outcome} other than a given SQS queue"
            )
        destinations[outcome] = {"Destination": destination["Destination"]}
    limits: dict[str, int] = {
        key: int(config[key])
        for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds")
        if key in config
    }
    return {"DestinationConfig": destinations, **limits}


def _record_event(
    ctx: ProvisionContext,
    function_logical_id: str,
    event_name: str,
    event_type: str,
    properties: dict[str, Any],
) -> None:
    match event_type:
        case "HttpApi":
            ctx.stack.http_routes.append(route_for_event(ctx, function_logical_id, properties))
        case "S3":
            events = properties["Events"]
            key_rules = properties.get("Filter", {}).get("S3Key", {}).get("Rules", [])
            filters = {rule["Name"].lower(): rule["Value"] for rule in key_rules}
            ctx.stack.s3_subscriptions.append(
                S3Subscription(
                    function_logical_id=function_logical_id,
                    event_name=event_name,
                    bucket=properties["Bucket"],
                    events=(events,) if isinstance(events, str) else tuple(events),
                    prefix=filters.get("prefix", ""),
                    suffix=filters.get("suffix", ""),
                )
            )
        case "Schedule":
            ctx.stack.schedules.append(
                ScheduleSpec(
                    function_logical_id=function_logical_id,
                    event_name=event_name,
                    expression=properties["Schedule"],
                    input=properties.get("Input"),
                    # SAM takes either `Enabled: false` or `State: DISABLED`.
                    enabled=properties.get("Enabled", True) is not False
                    and properties.get("State", "ENABLED") == "ENABLED",
                )
            )
        case "ScheduleV2":
            ctx.stack.schedules.append(
                ScheduleSpec(
                    function_logical_id=function_logical_id,
                    event_name=event_name,
                    expression=properties["ScheduleExpression"],
                    input=properties.get("Input"),
                    enabled=properties.get("State", "ENABLED") == "ENABLED",
                )
            )
        case "DynamoDB":
            stream_arn = properties["Stream"]
            ctx.stack.stream_subscriptions.append(
                StreamSubscription(
                    function_logical_id=function_logical_id,
                    event_name=event_name,
                    # arn:aws:dynamodb:{region}:{account}:table/{name}/stream/{label}
                    table_name=stream_arn.split(":table/", 1)[1].split("/stream/", 1)[0],
                    stream_arn=stream_arn,
                    patterns=tuple(
                        item["Pattern"]
                        for item in properties.get("FilterCriteria", {}).get("Filters", [])
                    ),
                    batch_size=int(properties.get("BatchSize", 100)),
                    maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
                    partial_batch_responses="ReportBatchItemFailures"
                    in properties.get("FunctionResponseTypes", []),
                    on_failure=properties.get("DestinationConfig", {})
                    .get("OnFailure", {})
                    .get("Destination"),
                )
            )
        case _:
            raise UnsupportedResource(f"{function_logical_id}.{event_name}", f"{event_type} event")
