"""FailUpload: IngestUpload's on-failure queue. An upload whose ingest failed every retry
Lambda made is given up at once: settled `failed` (the reason the API shows names the error's
type, never its message) and its object deleted; one that settled meanwhile is left as it is.

Partial batch responses: a message whose upload could not be settled now stays in the queue
for another try. A message that is not IngestUpload's invocation record is dropped (the sweep
settles its upload regardless).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import S3Model
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from threadline import runtime
from threadline.files.settling import UploadedObject
from threadline.settings import Settings, load

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


# Field names are Lambda's.
class RequestContext(BaseModel):
    condition: str  # RetriesExhausted, or EventAgeExceeded
    approximateInvokeCount: int


class FunctionError(BaseModel):
    errorType: str | None = None


class FailedInvocation(BaseModel):
    """The invocation record Lambda sends an on-failure destination (what matters of it)."""

    requestContext: RequestContext
    requestPayload: S3Model  # the S3 event IngestUpload could not handle
    responsePayload: FunctionError | None = None


def failure_reason(invocation: FailedInvocation) -> str:
    error = invocation.responsePayload.errorType if invocation.responsePayload else None
    attempts = invocation.requestContext.approximateInvokeCount
    return (
        f"ingest_failed: not processed after {attempts} attempts ({error or 'no error type'}); "
        "upload it again"
    )


@tracer.capture_method
def give_up(record: SQSRecord) -> None:
    try:
        invocation = FailedInvocation.model_validate_json(record.body)
    except ValidationError:
        logger.warning("dropped a message that is no invocation record of IngestUpload")
        return
    reason = failure_reason(invocation)
    for s3_record in invocation.requestPayload.Records:
        result = (
            runtime.current()
            .upload_settler()
            .give_up(UploadedObject.from_record(s3_record), reason)
        )
        logger.info(
            "upload given up",
            extra={
                "upload_id": result.upload_id,
                "status": result.status,
                "duplicate": result.duplicate,
                "condition": invocation.requestContext.condition,
            },
        )
        if not result.duplicate:
            metrics.add_metric("FilesFailed", MetricUnit.Count, 1)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    metrics.add_dimension("backend", load(Settings).openai_backend)
    return process_partial_response(
        event=event, record_handler=give_up, processor=processor, context=context
    )
