"""FinishLostRuns: on a schedule, finish the runs whose execution ended without finishing
them, and free their threads (see `threadline.runs.lost`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import runtime

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = runtime.current().lost_runs().finish(time_left_ms=context.get_remaining_time_in_millis)
    logger.info("lost runs finished", extra=report.model_dump())
    metrics.add_metric("LostRunsFinished", MetricUnit.Count, report.finished)
    metrics.add_metric("StaleLocksReleased", MetricUnit.Count, report.released)
    metrics.add_metric("QueuedRunsStarted", MetricUnit.Count, report.started)
    metrics.add_metric("LostRunsNotFinished", MetricUnit.Count, report.failed)
    return report.model_dump()
