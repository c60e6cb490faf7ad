"""Run metrics: one EMF document per finished run.

Dimensions stay low-cardinality (assistant, model, backend, status): never user or thread ids.
"""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from threadline.assistant_config import load_assistant
from threadline.runs.records import RunOutcome
from threadline.runs.state import RunState
from threadline.settings import Settings


def publish_run_metrics(
    metrics: Metrics, settings: Settings, state: RunState, outcome: RunOutcome
) -> None:
    assistant = load_assistant(state.assistant)
    metrics.add_dimension("assistant", assistant.name)
    metrics.add_dimension("model", assistant.model or settings.openai_model)
    metrics.add_dimension("backend", settings.openai_backend)
    metrics.add_dimension("status", outcome.status.value)
    metrics.add_metric("Runs", MetricUnit.Count, 1)
    metrics.add_metric("RunDuration", MetricUnit.Seconds, outcome.duration_seconds)
    metrics.add_metric("InputTokens", MetricUnit.Count, outcome.usage.input_tokens)
    metrics.add_metric("OutputTokens", MetricUnit.Count, outcome.usage.output_tokens)
    metrics.add_metric("TotalTokens", MetricUnit.Count, outcome.usage.total_tokens)
    metrics.add_metric("ToolRounds", MetricUnit.Count, state.tool_rounds)
    # Runs by status, and tool calls and errors, also go out service-wide (scope all), so one
    # alarm covers every assistant and model: RunsFailedAlarm, ToolErrorRateAlarm.
    with single_metric(name="Runs", unit=MetricUnit.Count, value=1) as runs:
        runs.add_dimension("scope", "all")
        runs.add_dimension("status", outcome.status.value)
    for name, value in (("ToolCalls", state.tool_calls), ("ToolErrors", state.tool_errors)):
        metrics.add_metric(name, MetricUnit.Count, value)
        with single_metric(name=name, unit=MetricUnit.Count, value=value) as service_wide:
            service_wide.add_dimension("scope", "all")
