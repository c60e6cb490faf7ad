"""AWS::DynamoDB::Table."""

from __future__ import annotations

from typing import Any

from local.aws.intrinsics import ProvisionedResource
from local.aws.resources.context import ProvisionContext

# Properties whose CloudFormation shape is also the CreateTable shape.
_PASSED_THROUGH = (
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "ProvisionedThroughput",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "TableClass",
    "DeletionProtectionEnabled",
    "Tags",
)


def provision_table(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    dynamodb = ctx.client("dynamodb")
    name = properties.get("TableName") or ctx.physical_name(logical_id, max_length=255)
    request: dict[str, Any] = {key: properties[key] for key in _PASSED_THROUGH if key in properties}
    if "StreamSpecification" in properties:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": properties["StreamSpecification"]["StreamViewType"],
        }
    if "SSESpecification" in properties:
        sse = properties["SSESpecification"]
        request["SSESpecification"] = {
            "Enabled": sse.get("SSEEnabled", False),
            **{key: sse[key] for key in ("SSEType", "KMSMasterKeyId") if key in sse},
        }
    table = dynamodb.create_table(TableName=name, **request)["TableDescription"]
    if "TimeToLiveSpecification" in properties:
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification=properties["TimeToLiveSpecification"]
        )
    if "PointInTimeRecoverySpecification" in properties:
        dynamodb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification=properties["PointInTimeRecoverySpecification"],
        )
    attributes = {"Arn": table["TableArn"]}
    if "LatestStreamArn" in table:
        attributes["StreamArn"] = table["LatestStreamArn"]
    return ProvisionedResource(ref=name, attributes=attributes)
