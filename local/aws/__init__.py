"""Run the SAM template on moto, with the Lambda handlers executed in-process."""

from local.aws.event_sources import (
    AmbiguousSchedule,
    Delivery,
    EventSources,
    ScheduleNotFound,
    deliver_s3_notifications,
    fire_schedule,
    run_schedules,
)
from local.aws.lambda_runtime import EnvironmentDeaths, install
from local.aws.local_stack import FunctionInvocationError, LocalStack
from local.aws.records import FunctionSpec
from local.aws.resources.context import UnsupportedResource
from local.aws.stack import provision

__all__ = [
    "AmbiguousSchedule",
    "Delivery",
    "EnvironmentDeaths",
    "EventSources",
    "FunctionInvocationError",
    "FunctionSpec",
    "LocalStack",
    "ScheduleNotFound",
    "UnsupportedResource",
    "deliver_s3_notifications",
    "fire_schedule",
    "install",
    "provision",
    "run_schedules",
]
