"""AWS::Cognito::UserPool and AWS::Cognito::UserPoolClient, created in moto (the template makes
them when no JwtIssuer is given; the local stack signs its own tokens otherwise)."""

from __future__ import annotations

from typing import Any

from local.aws.intrinsics import ProvisionedResource
from local.aws.resources.context import ProvisionContext


def provision_user_pool(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    name = properties.get("UserPoolName") or ctx.physical_name(logical_id, max_length=128)
    pool = ctx.client("cognito-idp").create_user_pool(PoolName=name)["UserPool"]
    # Fn::GetAtt ProviderURL is the issuer without its scheme, as CloudFormation gives it.
    provider = f"cognito-idp.{ctx.region}.amazonaws.com/{pool['Id']}"
    return ProvisionedResource(
        ref=pool["Id"], attributes={"Arn": pool["Arn"], "ProviderURL": provider}
    )


def provision_user_pool_client(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    client = ctx.client("cognito-idp").create_user_pool_client(
        UserPoolId=properties["UserPoolId"],
        ClientName=properties.get("ClientName", logical_id),
        GenerateSecret=bool(properties.get("GenerateSecret", False)),
    )["UserPoolClient"]
    return ProvisionedResource(ref=client["ClientId"])
