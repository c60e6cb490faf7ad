"""The run metrics a finished run publishes: names, values and low-cardinality dimensions."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from aws_lambda_powertools import Metrics

from tests.conftest import template
from threadline.models import RunStatus, Usage
from threadline.runs.metrics import publish_run_metrics
from threadline.runs.records import RunOutcome
from threadline.runs.state import RunState
from threadline.settings import Settings


def test_a_finished_run_publishes_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = Metrics(namespace="Threadline", service="threadline")
    settings = Settings(table_name="table", bucket_name="bucket")
    state = RunState(
        run_id="run_1",
        thread_id="thr_1",
        user_id="alice",
        tool_calls=3,
        tool_errors=1,
        tool_rounds=2,
    )
    outcome = RunOutcome(
        status=RunStatus.COMPLETED,
        finished_at=datetime.now(UTC),
        duration_seconds=4.5,
        usage=Usage(input_tokens=100, output_tokens=20, total_tokens=120),
    )
    publish_run_metrics(metrics, settings, state, outcome)
    serialized = metrics.serialize_metric_set()
    # EMF lists values; a single value per name means one datapoint for this run.
    run_set = {
        key: value[0] if isinstance(value, list) else value for key, value in serialized.items()
    }
    metrics.clear_metrics()
    service_wide = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    (directive,) = serialized["_aws"]["CloudWatchMetrics"]
    dimensions = set(directive["Dimensions"][0])
    assert dimensions == {"service", "assistant", "model", "backend", "status"}
    assert "alice" not in json.dumps(run_set)
    assert run_set["status"] == "completed"
    assert run_set["RunDuration"] == 4.5
    assert (run_set["InputTokens"], run_set["OutputTokens"], run_set["TotalTokens"]) == (
        100,
        20,
        120,
    )
    assert (run_set["ToolCalls"], run_set["ToolErrors"], run_set["ToolRounds"]) == (3, 1, 2)
    by_name = {
        blob["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]: blob for blob in service_wide
    }
    assert by_name["ToolErrors"]["ToolErrors"] in (1, [1])
    assert by_name["ToolCalls"]["scope"] == "all"
    assert set(by_name["ToolCalls"]["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == {
        "service",
        "scope",
    }


@pytest.mark.parametrize("status", [RunStatus.FAILED, RunStatus.CANCELLED])
def test_a_run_is_counted_service_wide_by_status_as_the_failed_runs_alarm_reads_it(
    status: RunStatus, capsys: pytest.CaptureFixture[str]
) -> None:
    """RunsFailedAlarm watches every tier and assistant through one service-wide metric; a
    cancelled run is counted under its own status, so it does not trip the alarm."""
    metrics = Metrics(namespace="Threadline", service="threadline")
    state = RunState(run_id="run_1", thread_id="thr_1", user_id="alice")
    outcome = RunOutcome(
        status=status, finished_at=datetime.now(UTC), duration_seconds=1.0, usage=Usage()
    )
    publish_run_metrics(metrics, Settings(table_name="table", bucket_name="bucket"), state, outcome)
    metrics.clear_metrics()
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (runs,) = [
        b for b in blobs if b["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == "Runs"
    ]
    (dimension_names,) = runs["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    emitted = {name: runs[name] for name in dimension_names}

    alarm = template()["Resources"]["RunsFailedAlarm"]["Properties"]
    watched = {item["Name"]: item["Value"] for item in alarm["Dimensions"]}
    assert (alarm["Namespace"], alarm["MetricName"]) == ("Threadline", "Runs")
    assert (emitted == watched) is (status is RunStatus.FAILED)
    assert emitted == {**watched, "status": status.value}
