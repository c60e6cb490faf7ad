"""Run the SAM template on moto, with the Lambda handlers executed in-process."""

from local.aws.lambda_runtime import install
from local.aws.local_stack import FunctionInvocationError, LocalStack
from local.aws.records import FunctionSpec
from local.aws.resources.context import UnsupportedResource
from local.aws.stack import provision

__all__ = [
    "FunctionInvocationError",
    "FunctionSpec",
    "LocalStack",
    "UnsupportedResource",
    "install",
    "provision",
]
