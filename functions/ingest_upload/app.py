"""IngestUpload: S3 reported an upload; check it by content, hand it to OpenAI, attach it.

Each record is ingested once per object version (Powertools idempotency on the table), so
S3's redeliveries and retries change nothing; a transient OpenAI error fails the invocation
and Lambda's asynchronous retry starts over, finding again what a create whose reply was lost
made. After the last retry Lambda sends its invocation record to the on-failure queue, where
FailUpload gives the upload up; the sweep (SweepUploads) settles what no event did.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3Model
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import runtime
from threadline.errors import reason_code
from threadline.files.ingest import INGEST_ONCE_KEY_PATH, INGEST_ONCE_NAME
from threadline.files.records import FileStatus
from threadline.files.settling import IngestResult, UploadedObject
from threadline.settings import Settings, load
from threadline.store.idempotency import once

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# A file still indexing is counted ingested: this handler's part (checked, at OpenAI,
# attached) is done; whether OpenAI could index it shows in the file's status later.
METRIC_BY_STATUS = {
    FileStatus.INGESTED: "FilesIngested",
    FileStatus.INDEXING: "FilesIngested",
    FileStatus.REJECTED: "FilesRejected",
    FileStatus.FAILED: "FilesFailed",
}


def ingest_and_count(upload: UploadedObject) -> IngestResult:
    """Ingest one object and count what happened; a replayed event skips both."""
    result = runtime.current().ingestor().ingest(upload)
    # Not the key (it holds the user's file name) nor the reason's detail.
    logged = result.model_dump(mode="json", exclude={"key", "reason"})
    logger.info("upload handled", extra={**logged, "reason": reason_code(result.reason)})
    if not result.duplicate:
        metrics.add_metric(METRIC_BY_STATUS[result.status], MetricUnit.Count, 1)
        if METRIC_BY_STATUS[result.status] == "FilesIngested":
            metrics.add_metric("IngestedBytes", MetricUnit.Bytes, result.bytes)
    return result


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=S3Model)
def handler(event: S3Model, context: LambdaContext) -> dict[str, Any]:
    metrics.add_dimension("backend", load(Settings).openai_backend)
    ingest = once(
        ingest_and_count,
        name=INGEST_ONCE_NAME,
        key_path=INGEST_ONCE_KEY_PATH,
        result_type=IngestResult,
        data_keyword="upload",
        context=context,
    )
    results = [ingest(upload=UploadedObject.from_record(record)) for record in event.Records]
    return {"results": [result.model_dump(mode="json") for result in results]}
