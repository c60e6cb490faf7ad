"""SweepUploads: on a schedule, ingest again or give up the uploads still pending long after
their URL was issued, so that none stays pending (see `threadline.files.sweep`). A sweep
that runs out of time leaves the rest to the next one, which starts from the oldest again.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import runtime
from threadline.files.ingest import INGEST_ONCE_KEY_PATH, INGEST_ONCE_NAME
from threadline.files.settling import IngestResult
from threadline.settings import Settings, load
from threadline.store.idempotency import once
from threadline.store.job_lease import one_at_a_time

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@one_at_a_time("sweep_uploads", lambda: runtime.current().job_lease())
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Idempotent as IngestUpload's ingest: an S3 event arriving late finds the result.
    ingest_once = once(
        runtime.current().ingestor().ingest,
        name=INGEST_ONCE_NAME,
        key_path=INGEST_ONCE_KEY_PATH,
        result_type=IngestResult,
        data_keyword="uploaded",
        context=context,
    )
    report = (
        runtime.current()
        .upload_sweep()
        .run(
            deadline_ms=context.get_remaining_time_in_millis,
            ingest=lambda uploaded: ingest_once(uploaded=uploaded),
        )
    )
    logger.info("upload sweep finished", extra=report.model_dump())
    metrics.add_dimension("backend", load(Settings).openai_backend)
    metrics.add_metric("FilesIngested", MetricUnit.Count, report.ingested)
    metrics.add_metric("FilesRejected", MetricUnit.Count, report.rejected)
    metrics.add_metric("FilesFailed", MetricUnit.Count, report.failed)
    metrics.add_metric("SweptUploadRetries", MetricUnit.Count, report.retrying)
    return report.model_dump()
