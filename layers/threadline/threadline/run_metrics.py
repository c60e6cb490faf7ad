"""The seed's RunMetrics, published for real: one EMF document per finished run.

Dimensions stay low-cardinality (assistant, model, backend, status): never user or thread ids.
"""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from threadline.assistant_config import load_assistant
from threadline.run_state import RunState
from threadline.runs import RunOutcome
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
    metrics.add_metric("ToolCalls", MetricUnit.Count, state.tool_calls)
    metrics.add_metric("ToolRounds", MetricUnit.Count, state.tool_rounds)
    metrics.add_metric("ToolErrors", MetricUnit.Count, state.tool_errors)
