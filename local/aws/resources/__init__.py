"""One provisioner per supported resource type; anything else is refused by name."""

from __future__ import annotations

from local.aws.resources.cognito import provision_user_pool, provision_user_pool_client
from local.aws.resources.context import Provisioner, UnsupportedResource
from local.aws.resources.dynamodb import provision_table
from local.aws.resources.events import provision_event_bus, provision_rule, provision_schedule
from local.aws.resources.functions import (
    provision_event_invoke_config,
    provision_event_source_mapping,
    provision_function,
    provision_layer,
    provision_permission,
)
from local.aws.resources.http_apis import (
    provision_api,
    provision_api_gateway_account,
    provision_stage,
)
from local.aws.resources.iam import provision_managed_policy, provision_role
from local.aws.resources.logs import provision_log_group
from local.aws.resources.monitoring import provision_alarm, provision_dashboard, provision_topic
from local.aws.resources.s3 import provision_bucket, provision_bucket_policy
from local.aws.resources.secrets_manager import provision_secret
from local.aws.resources.sqs import provision_queue, provision_queue_policy
from local.aws.resources.ssm import provision_parameter
from local.aws.resources.state_machines import provision_state_machine
from local.aws.resources.websocket_apis import (
    provision_authorizer,
    provision_integration,
    provision_route,
)

PROVISIONERS: dict[str, Provisioner] = {
    "AWS::DynamoDB::Table": provision_table,
    "AWS::S3::Bucket": provision_bucket,
    "AWS::S3::BucketPolicy": provision_bucket_policy,
    "AWS::IAM::ManagedPolicy": provision_managed_policy,
    "AWS::IAM::Role": provision_role,
    "AWS::ApiGateway::Account": provision_api_gateway_account,
    "AWS::Cognito::UserPool": provision_user_pool,
    "AWS::Cognito::UserPoolClient": provision_user_pool_client,
    "AWS::Lambda::LayerVersion": provision_layer,
    "AWS::Lambda::Function": provision_function,
    "AWS::Lambda::Permission": provision_permission,
    "AWS::Lambda::EventSourceMapping": provision_event_source_mapping,
    "AWS::Lambda::EventInvokeConfig": provision_event_invoke_config,
    "AWS::StepFunctions::StateMachine": provision_state_machine,
    "AWS::SNS::Topic": provision_topic,
    "AWS::CloudWatch::Alarm": provision_alarm,
    "AWS::CloudWatch::Dashboard": provision_dashboard,
    "AWS::Events::EventBus": provision_event_bus,
    "AWS::Events::Rule": provision_rule,
    "AWS::Scheduler::Schedule": provision_schedule,
    "AWS::SecretsManager::Secret": provision_secret,
    "AWS::SQS::Queue": provision_queue,
    "AWS::SQS::QueuePolicy": provision_queue_policy,
    "AWS::SSM::Parameter": provision_parameter,
    "AWS::Logs::LogGroup": provision_log_group,
    "AWS::ApiGatewayV2::Api": provision_api,
    "AWS::ApiGatewayV2::Authorizer": provision_authorizer,
    "AWS::ApiGatewayV2::Integration": provision_integration,
    "AWS::ApiGatewayV2::Route": provision_route,
    "AWS::ApiGatewayV2::Stage": provision_stage,
}


def provisioner_for(logical_id: str, resource_type: str) -> Provisioner:
    if resource_type not in PROVISIONERS:
        raise UnsupportedResource(logical_id, f"resource type {resource_type}")
    return PROVISIONERS[resource_type]
