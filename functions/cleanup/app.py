"""Cleanup: delete threads idle longer than the retention, with everything they own.

Runs on a schedule. The event is the rule's constant input (`{"dry_run": true}` to only
count) or, without one, EventBridge's scheduled event, whose other keys are ignored. When
time runs short the report's `next_cursor` says where to resume (`{"resume_from": ...}`);
the next scheduled run starts from the oldest stale thread again, which also retries the
threads that failed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from threadline import runtime
from threadline.settings import Settings, load
from threadline.store.job_lease import one_at_a_time

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class CleanupRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # a scheduled event's envelope has other keys

    dry_run: bool = False
    resume_from: str | None = Field(default=None, max_length=2048)
    page_size: int = Field(default=25, ge=1, le=100)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@one_at_a_time("cleanup", lambda: runtime.current().job_lease())
@event_parser(model=CleanupRequest)
def handler(request: CleanupRequest, context: LambdaContext) -> dict[str, Any]:
    report = (
        runtime.current()
        .cleaner()
        .run(
            deadline_ms=context.get_remaining_time_in_millis,
            dry_run=request.dry_run,
            page_size=request.page_size,
            resume_from=request.resume_from,
        )
    )
    logger.info("cleanup finished", extra=report.model_dump(mode="json"))
    if not report.dry_run:  # a dry run deleted nothing: its counts are not deletions
        metrics.add_dimension("backend", load(Settings).openai_backend)
        metrics.add_metric("ThreadsDeleted", MetricUnit.Count, report.threads_deleted)
        metrics.add_metric("FilesDeleted", MetricUnit.Count, report.files_deleted)
        metrics.add_metric("BytesDeleted", MetricUnit.Bytes, report.bytes_deleted)
        metrics.add_metric("CleanupFailures", MetricUnit.Count, len(report.failures))
    return report.model_dump(mode="json")
