"""Resource types the product template is about to gain: topics, alarms, dashboards, rules,
secrets."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from local.aws import provision
from tests.local_aws.conftest import REGION

TEMPLATE = """
Parameters:
  AlarmPeriod: { Type: Number, Default: 60 }
Resources:
  AlertTopic:
    Type: AWS::SNS::Topic
    Properties:
      Subscription: [{ Protocol: email, Endpoint: ops@example.com }]
  ErrorsAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: Threadline
      MetricName: RunsFailed
      Statistic: Sum
      Period: !Ref AlarmPeriod
      EvaluationPeriods: 1
      Threshold: 1
      ComparisonOperator: GreaterThanOrEqualToThreshold
      AlarmActions: [!Ref AlertTopic]
  Dashboard:
    Type: AWS::CloudWatch::Dashboard
    Properties:
      DashboardBody: !Sub >-
        {"widgets": [{"type": "text", "properties": {"markdown": "${AWS::StackName}"}}]}
  Nightly:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: cron(0 3 * * ? *)
      Targets: [{ Id: topic, Arn: !Ref AlertTopic }]
  ApiKey:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: threadline/test-key
      GenerateSecretString:
        SecretStringTemplate: '{"user": "threadline"}'
        GenerateStringKey: password
        PasswordLength: 24
Outputs:
  AlarmArn: { Value: !GetAtt ErrorsAlarm.Arn }
"""


def test_monitoring_resources_are_created(aws: None, tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)

    stack = provision(path, stack_name="monitoring")

    topic_arn = stack.resources["AlertTopic"]
    subscriptions = boto3.client("sns", region_name=REGION).list_subscriptions_by_topic(
        TopicArn=topic_arn
    )["Subscriptions"]
    assert [subscription["Endpoint"] for subscription in subscriptions] == ["ops@example.com"]

    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[stack.resources["ErrorsAlarm"]])[
        "MetricAlarms"
    ]
    assert (alarm["Period"], alarm["AlarmActions"]) == (60, [topic_arn])
    assert stack.outputs["AlarmArn"] == alarm["AlarmArn"]
    body = cloudwatch.get_dashboard(DashboardName=stack.resources["Dashboard"])["DashboardBody"]
    assert json.loads(body)["widgets"][0]["properties"]["markdown"] == "monitoring"

    events = boto3.client("events", region_name=REGION)
    assert events.describe_rule(Name=stack.resources["Nightly"])["ScheduleExpression"] == (
        "cron(0 3 * * ? *)"
    )
    targets = events.list_targets_by_rule(Rule=stack.resources["Nightly"])["Targets"]
    assert [target["Arn"] for target in targets] == [topic_arn]

    secret = boto3.client("secretsmanager", region_name=REGION).get_secret_value(
        SecretId="threadline/test-key"
    )
    assert secret["ARN"] == stack.resources["ApiKey"]
    value = json.loads(secret["SecretString"])
    assert value["user"] == "threadline"
    assert len(value["password"]) == 24
