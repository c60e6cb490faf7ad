"""Access logging as the product template declares it: a log group behind the HTTP API, an S3
access-log bucket, and reserved concurrency read back as deployed."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from local.aws import UnsupportedResource, provision
from tests.local_aws.conftest import REGION

LOG_GROUP = """
  AccessLogs:
    Type: AWS::Logs::LogGroup
    Properties:
      RetentionInDays: 30
      Tags: [{ Key: app, Value: threadline }]
"""
API = """
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageName: test
      AccessLogSettings:
        DestinationArn: {destination}
        Format: '{format}'
"""
LOG_BUCKET = """
  LogBucket:
    Type: AWS::S3::Bucket
  Bucket:
    Type: AWS::S3::Bucket
    DependsOn: {depends_on}
    Properties:
      LoggingConfiguration:
        DestinationBucketName: !Ref LogBucket
        LogFilePrefix: files/
"""
LOG_BUCKET_POLICY = """
  LogBucketPolicy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref LogBucket
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: { Service: logging.s3.amazonaws.com }
            Action: s3:PutObject
            Resource: !Sub "${LogBucket.Arn}/*"
            Condition:
              StringEquals: { aws:SourceAccount: !Ref AWS::AccountId }
          - Effect: Deny
            Principal: "*"
            Action: "s3:*"
            Resource: !Sub "${LogBucket.Arn}/*"
            Condition:
              Bool: { aws:SecureTransport: "false" }
"""
REQUEST_ID_FORMAT = '{"requestId":"$context.requestId","status":"$context.status"}'


def _template(directory: Path, resources: str) -> Path:
    path = directory / "template.yaml"
    path.write_text(
        'AWSTemplateFormatVersion: "2010-09-09"\n'
        "Transform: AWS::Serverless-2016-10-31\n"
        f"Resources:{resources}"
    )
    return path


def test_http_api_access_logs_go_to_a_provisioned_log_group(aws: None, tmp_path: Path) -> None:
    api = API.format(destination="!GetAtt AccessLogs.Arn", format=REQUEST_ID_FORMAT)

    stack = provision(_template(tmp_path, LOG_GROUP + api), stack_name="logging")

    name = stack.resources["AccessLogs"]
    logs = boto3.client("logs", region_name=REGION)
    (group,) = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert name.startswith("logging-AccessLogs-")
    assert group["retentionInDays"] == 30
    assert logs.list_tags_for_resource(resourceArn=group["arn"].removesuffix(":*"))["tags"] == {
        "app": "threadline"
    }
    assert "Api" in stack.http_apis


@pytest.mark.parametrize(
    ("destination", "log_format", "message"),
    [
        ("!GetAtt AccessLogs.Arn", '{"status":"$context.status"}', "needs \\$context.requestId"),
        (
            "arn:aws:logs:us-east-1:123456789012:log-group:elsewhere:*",
            REQUEST_ID_FORMAT,
            "is no log group",
        ),
        ("!GetAtt LogBucket.Arn", REQUEST_ID_FORMAT, "is no log group"),
    ],
)
def test_access_logs_without_a_request_id_or_a_log_group_are_refused(
    aws: None, tmp_path: Path, destination: str, log_format: str, message: str
) -> None:
    resources = LOG_GROUP + "\n  LogBucket:\n    Type: AWS::S3::Bucket\n"
    resources += API.format(destination=destination, format=log_format)

    with pytest.raises(ValueError, match=rf"Api\w*Stage: .*{message}"):
        provision(_template(tmp_path, resources))


def test_log_group_property_not_applied_locally_is_refused(aws: None, tmp_path: Path) -> None:
    resources = LOG_GROUP + "      KmsKeyId: alias/threadline\n"

    with pytest.raises(UnsupportedResource, match=r"\['KmsKeyId'\]"):
        provision(_template(tmp_path, resources))


def test_bucket_logs_access_to_a_bucket_whose_policy_lets_s3_write(
    aws: None, tmp_path: Path
) -> None:
    resources = LOG_BUCKET.format(depends_on="LogBucketPolicy") + LOG_BUCKET_POLICY

    stack = provision(_template(tmp_path, resources))

    logging = boto3.client("s3", region_name=REGION).get_bucket_logging(
        Bucket=stack.resources["Bucket"]
    )
    assert logging["LoggingEnabled"] == {
        "TargetBucket": stack.resources["LogBucket"],
        "TargetPrefix": "files/",
    }


def test_bucket_logging_before_the_target_policy_is_refused(aws: None, tmp_path: Path) -> None:
    """As on AWS: what DependsOn on the policy is for."""
    resources = LOG_BUCKET.format(depends_on="LogBucket")

    with pytest.raises(ClientError, match="InvalidTargetBucketForLogging"):
        provision(_template(tmp_path, resources))


def test_reserved_concurrency_reads_back(aws: None, tmp_path: Path) -> None:
    (tmp_path / "functions" / "job").mkdir(parents=True)
    (tmp_path / "functions" / "job" / "app.py").write_text("def handler(event, context): ...\n")
    resources = (
        "\n  JobFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      CodeUri: functions/job/\n"
        "      Handler: app.handler\n"
        "      Runtime: python3.13\n"
        "      ReservedConcurrentExecutions: 1\n"
    )

    stack = provision(_template(tmp_path, resources))

    concurrency = boto3.client("lambda", region_name=REGION).get_function_concurrency(
        FunctionName=stack.functions["JobFunction"].name
    )
    assert concurrency["ReservedConcurrentExecutions"] == 1
