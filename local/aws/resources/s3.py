"""AWS::S3::Bucket and AWS::S3::BucketPolicy."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from local.aws.intrinsics import ProvisionedResource
from local.aws.records import S3Subscription
from local.aws.resources.context import ProvisionContext, UnsupportedResource

if TYPE_CHECKING:
    from mypy_boto3_s3.literals import BucketLocationConstraintType

# CloudFormation lifecycle rule keys -> the PutBucketLifecycleConfiguration shape.
_LIFECYCLE_PASSED_THROUGH = (
    "Status",
    "NoncurrentVersionExpiration",
    "AbortIncompleteMultipartUpload",
)
_LIFECYCLE_TRANSLATED = ("Id", "Prefix", "ExpirationInDays", "Transitions")


def provision_bucket(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    s3 = ctx.client("s3")
    name = properties.get("BucketName") or ctx.physical_name(
        logical_id, max_length=63, lowercase=True
    )
    if ctx.region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        # A region's name is its location constraint (the stubs list them).
        location = cast("BucketLocationConstraintType", ctx.region)
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": location})
    for property_name, value in properties.items():
        if property_name == "NotificationConfiguration":
            _subscribe(ctx, logical_id, name, value)
        else:
            _configure(s3, name, logical_id, property_name, value)
    return ProvisionedResource(
        ref=name,
        attributes={
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{ctx.region}.amazonaws.com",
        },
    )


def _subscribe(
    ctx: ProvisionContext, logical_id: str, bucket: str, configuration: dict[str, Any]
) -> None:
    """The bucket's Lambda notifications, for the local S3 event delivery (moto sends none
    to functions)."""
    if set(configuration) - {"LambdaConfigurations"}:
        raise UnsupportedResource(logical_id, "notifications other than Lambda ones")
    for index, notification in enumerate(configuration["LambdaConfigurations"]):
        function = next(
            f for f in ctx.stack.functions.values() if f.arn == notification["Function"]
        )
        rules = notification.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        filters = {rule["Name"].lower(): rule["Value"] for rule in rules}
        ctx.stack.s3_subscriptions.append(
            S3Subscription(
                function_logical_id=function.logical_id,
                event_name=f"{logical_id}Notification{index}",
                bucket=bucket,
                events=(notification["Event"],),
                prefix=filters.get("prefix", ""),
                suffix=filters.get("suffix", ""),
            )
        )


def _configure(s3: Any, bucket: str, logical_id: str, property_name: str, value: Any) -> None:
    # moto accepts all of these, though it enforces none of encryption, public access and
    # lifecycle expiry: they are applied so reads of the configuration match AWS.
    match property_name:
        case "BucketName":
            return
        case "VersioningConfiguration":
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=value)
        case "BucketEncryption":
            rules = [
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    **(
                        {"BucketKeyEnabled": rule["BucketKeyEnabled"]}
                        if "BucketKeyEnabled" in rule
                        else {}
                    ),
                }
                for rule in value["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(
                Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules}
            )
        case "PublicAccessBlockConfiguration":
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=value)
        case "OwnershipControls":
            s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=value)
        case "LifecycleConfiguration":
            rules = [_lifecycle_rule(rule) for rule in value["Rules"]]
            s3.put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration={"Rules": rules}
            )
        case "LoggingConfiguration":
            # moto, like S3, refuses it unless the target bucket's policy lets log delivery
            # write (so that policy has to be provisioned first); it delivers no logs.
            s3.put_bucket_logging(
                Bucket=bucket,
                BucketLoggingStatus={"LoggingEnabled": _logging_target(logical_id, bucket, value)},
            )
        case "CorsConfiguration":
            s3.put_bucket_cors(
                Bucket=bucket,
                CORSConfiguration={"CORSRules": [_cors_rule(rule) for rule in value["CorsRules"]]},
            )
        case "Tags":
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": value})
        case _:
            raise UnsupportedResource(logical_id, f"AWS::S3::Bucket property {property_name}")


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    untranslated = set(rule) - {*_LIFECYCLE_PASSED_THROUGH, *_LIFECYCLE_TRANSLATED}
    if untranslated:
        raise ValueError(f"lifecycle rule keys {sorted(untranslated)} are not translated locally")
    translated: dict[str, Any] = {
        key: rule[key] for key in _LIFECYCLE_PASSED_THROUGH if key in rule
    }
    translated["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "Id" in rule:
        translated["ID"] = rule["Id"]
    if "ExpirationInDays" in rule:
        translated["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "Transitions" in rule:
        translated["Transitions"] = [
            {
                "Days": int(transition["TransitionInDays"]),
                "StorageClass": transition["StorageClass"],
            }
            for transition in rule["Transitions"]
        ]
    return translated


def _logging_target(logical_id: str, bucket: str, configuration: dict[str, Any]) -> dict[str, Any]:
    untranslated = set(configuration) - {"DestinationBucketName", "LogFilePrefix"}
    if untranslated:
        raise UnsupportedResource(logical_id, f"LoggingConfiguration keys {sorted(untranslated)}")
    # Without a destination, S3 logs into the bucket itself.
    return {
        "TargetBucket": configuration.get("DestinationBucketName", bucket),
        "TargetPrefix": configuration.get("LogFilePrefix", ""),
    }


def _cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    renamed = {"Id": "ID", "ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds"}
    return {renamed.get(key, key): value for key, value in rule.items()}


def provision_bucket_policy(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    bucket = properties["Bucket"]
    document = properties["PolicyDocument"]
    ctx.stack.resource_policies[f"arn:aws:s3:::{bucket}"] = document  # the whole of it
    # moto 5.2.5 evaluates bucket policies without a request context, so a condition such as
    # `aws:SecureTransport: false` always holds and a conditional Deny refuses every object
    # request. Those statements are left out; the rest of the policy is applied.
    statements = document["Statement"]
    applicable = [
        statement
        for statement in (statements if isinstance(statements, list) else [statements])
        if not (statement["Effect"] == "Deny" and "Condition" in statement)
    ]
    if applicable:
        ctx.client("s3").put_bucket_policy(
            Bucket=bucket, Policy=json.dumps({**document, "Statement": applicable})
        )
    return ProvisionedResource(ref=bucket)
