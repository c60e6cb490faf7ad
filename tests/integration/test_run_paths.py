"""Every path of the run state machine, on the real ASL in moto's interpreter, with the real
handlers and both OpenAI backends (the local OpenAI server over HTTP)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time

import pytest

from local.openai_server import Step
from tests.integration.conftest import RunDriver
from threadline import runtime
from threadline.backends.base import AssistantBackend, RunHandle
from threadline.errors import NotFoundError
from threadline.ids import new_id
from threadline.models import RunStatus
from threadline.runs.records import ANSWER_LIMIT_BYTES, TOOL_CALLS_LIMIT_BYTES
from threadline.runs.state import RunState

SALES_BY_REGION = "SELECT region, SUM(amount) AS revenue FROM sales GROUP BY region"


def thread_is_unlocked(driver: RunDriver, thread_id: str) -> bool:
    return runtime.current().thread_store().get(driver.user_id, thread_id).active_run_id is None


def test_plain_completion(driver: RunDriver) -> None:
    thread = driver.new_thread()
    driver.product.openai.script.push(Step.say("Hello from the model."), key=thread.remote_id)
    description, run = driver.run(thread, "Hi there")
    assert description["status"] == "SUCCEEDED"
    assert run.status is RunStatus.COMPLETED
    assert run.output_text == "Hello from the model."
    assert run.usage.total_tokens > 0
    assert run.usage.total_tokens == run.usage.input_tokens + run.usage.output_tokens
    assert run.tool_calls == []
    assert run.finished_at is not None
    assert run.duration_seconds is not None
    assert thread_is_unlocked(driver, thread.thread_id)
    states = driver.product.entered_states(description["executionArn"])
    assert states[:5] == ["Begin", "StartRun", "RouteOnStatus", "WaitForModel", "CheckRun"]
    assert states[-3:] == ["FinishRun", "RouteOnOutcome", "RunCompleted"]
    assert "ProcessToolCalls" not in states


def test_a_run_its_owner_cancels_ends_its_execution_as_cancelled(driver: RunDriver) -> None:
    """A run that does not complete fails its execution with its status as the error and a
    reason as the cause: on AWS a Fail state whose CausePath resolves to null (a cancel has
    no reason) ends in States.Runtime instead, and so it does on the local stack."""
    thread = driver.new_thread()
    driver.product.openai.script.push(Step.hang(), key=thread.remote_id)
    execution_arn = driver.start(thread, "Think")
    run_id = execution_arn.rsplit(":", 1)[-1]
    service = runtime.current().run_service()
    for _ in range(2000):  # bounded: it returns once StartRun has recorded the remote run
        with contextlib.suppress(NotFoundError):
            if runtime.current().run_store().get(thread.thread_id, run_id).remote_run_id:
                break
        time.sleep(0.01)
    service.cancel(driver.user_id, thread.thread_id, run_id)
    description = driver.product.wait_for_execution(execution_arn)
    assert (description["status"], description["error"]) == ("FAILED", "cancelled")
    assert description["cause"]
    assert isinstance(description["cause"], str)
    record = runtime.current().run_store().get(thread.thread_id, run_id)
    assert record.status is RunStatus.CANCELLED
    assert record.reason is None  # the run's own record says no more than what happened


def test_a_long_answer_is_kept_to_its_first_96_kb_and_never_enters_the_state(
    driver: RunDriver,
) -> None:
    """120,000 characters of three UTF-8 bytes each: 360 KB, over a state's 256 KB (a
    States.DataLimitExceeded no Catch can take, so FinishRun would never run) and near an
    item's 400 KB. The run completes; its record keeps the answer's first 96,000 bytes,
    marked truncated; no state of its execution carries the answer."""
    thread = driver.new_thread()
    answer = "答" * 120_000
    driver.product.openai.script.push(Step.say(answer), key=thread.remote_id)
    description, run = driver.run(thread, "Write at length")
    assert description["status"] == "SUCCEEDED", description
    assert run.status is RunStatus.COMPLETED
    assert run.output_truncated is True
    assert run.output_text == answer[: ANSWER_LIMIT_BYTES // 3]
    assert run.answer is None  # what FinishRun recorded is the output, kept once
    history = driver.product.sfn.get_execution_history(
        executionArn=description["executionArn"], maxResults=1000
    )["events"]
    assert "答答答" not in json.dumps(history, default=str)


def test_tool_calls_too_large_to_keep_fail_the_run_and_leave_the_thread_usable(
    driver: RunDriver,
) -> None:
    """A tool cannot run on part of its arguments: a round asking for more than a run keeps
    fails the run with the reason, stops the remote run and frees the thread."""
    thread = driver.new_thread()
    huge = "SELECT 1 -- " + "x" * (TOOL_CALLS_LIMIT_BYTES + 1)
    driver.product.openai.script.extend(
        [Step.call("query_database", {"query": huge}), Step.say("fine now")],
        key=thread.remote_id,
    )
    description, run = driver.run(thread, "Query at length")
    assert (description["status"], description["error"]) == ("FAILED", "failed")
    assert run.status is RunStatus.FAILED
    assert run.reason is not None
    assert run.reason.startswith("ToolCallsTooLarge:")
    assert run.pending_tool_calls is None
    assert thread_is_unlocked(driver, thread.thread_id)
    _description, after = driver.run(thread, "And now?")
    assert (after.status, after.output_text) == (RunStatus.COMPLETED, "fine now")


def test_tool_rounds_with_parallel_calls(driver: RunDriver) -> None:
    thread = driver.new_thread()
    driver.product.openai.script.extend(
        [
            Step.calls(
                [
                    ("get_table_schema", {"table_name": "sales"}),
                    ("get_table_schema", {"table_name": "products"}),
                ]
            ),
            Step.call("query_database", {"query": SALES_BY_REGION}),
        ],
        key=thread.remote_id,
    )
    description, run = driver.run(thread, "What is revenue by region?")
    assert description["status"] == "SUCCEEDED", description
    assert run.status is RunStatus.COMPLETED
    assert run.tool_rounds == 2
    assert [call.name for call in run.tool_calls] == [
        "get_table_schema",
        "get_table_schema",
        "query_database",
    ]
    assert not any(call.is_error for call in run.tool_calls)
    query = run.tool_calls[-1]
    assert query.summary["row_count"] == 4
    assert "query_database" in (run.output_text or "")
    states = driver.product.entered_states(description["executionArn"])
    assert states.count("ProcessToolCalls") == 2
    assert thread_is_unlocked(driver, thread.thread_id)


def test_tool_error_is_an_output_the_model_reads(driver: RunDriver) -> None:
    thread = driver.new_thread()
    driver.product.openai.script.extend(
        [
            Step.calls(
                [
                    ("query_database", {"query": "DELETE FROM sales"}),
                    ("no_such_tool", {}),
                    ("get_table_schema", {"wrong": "argument"}),
                ]
            )
        ],
        key=thread.remote_id,
    )
    description, run = driver.run(thread, "Delete everything")
    assert description["status"] == "SUCCEEDED"
    assert run.status is RunStatus.COMPLETED
    assert [call.is_error for call in run.tool_calls] == [True, True, True]
    assert "fail" in (run.output_text or "").lower()


@pytest.mark.parametrize(
    ("step", "status", "reason_part"),
    [
        (Step.fail(code="server_error", message="the model broke"), RunStatus.FAILED, "broke"),
        # Runs report max_completion_tokens, responses max_output_tokens: both are "max_".
        (Step.incomplete(reason="max_output_tokens"), RunStatus.INCOMPLETE, "incomplete: max_"),
    ],
    ids=["failed", "incomplete"],
)
def test_unsuccessful_runs_finish_with_a_reason(
    driver: RunDriver, step: Step, status: RunStatus, reason_part: str
) -> None:
    thread = driver.new_thread()
    driver.product.openai.script.push(step, key=thread.remote_id)
    description, run = driver.run(thread, "Try")
    assert description["status"] == "FAILED"
    assert description.get("error") == status.value
    assert run.status is status
    assert reason_part in (run.reason or "")
    assert thread_is_unlocked(driver, thread.thread_id)


def test_expired_run(driver: RunDriver) -> None:
    thread = driver.new_thread()
    driver.product.openai.script.push(Step.expire(), key=thread.remote_id)
    description, run = driver.run(thread, "Take your time")
    assert description["status"] == "FAILED"
    expected = (
        RunStatus.EXPIRED if runtime.current().backend().name == "assistants" else RunStatus.FAILED
    )
    assert run.status is expected
    assert "expire" in (run.reason or "")
    assert thread_is_unlocked(driver, thread.thread_id)


def test_transient_errors_are_retried_then_succeed(driver: RunDriver) -> None:
    thread = driver.new_thread()
    openai = driver.product.openai
    openai.script.push(Step.http_error(status=429, retry_after=0), key=thread.remote_id)
    openai.script.push(Step.http_error(status=500, retry_after=0), key=thread.remote_id)
    openai.script.push(Step.say("made it"), key=thread.remote_id)
    description, run = driver.run(thread, "Hello?")
    assert description["status"] == "SUCCEEDED", description
    assert run.output_text == "made it"
    retried = [
        event
        for event in driver.product.history(description["executionArn"])
        if event["type"] == "LambdaFunctionFailed"
    ]
    causes = [json.loads(e["lambdaFunctionFailedEventDetails"]["cause"]) for e in retried]
    assert [cause["errorType"] for cause in causes] == ["TransientBackendError"] * 2


def test_deadline_cancels_the_remote_run(driver: RunDriver) -> None:
    thread = driver.new_thread()
    driver.product.openai.script.push(Step.hang(), key=thread.remote_id)
    description, run = driver.run(thread, "Think forever", timeout_seconds=1)
    assert description["status"] == "FAILED"
    assert run.status is RunStatus.TIMED_OUT
    assert "deadline" in (run.reason or "")
    states = driver.product.entered_states(description["executionArn"])
    assert "CancelRun" in states
    assert thread_is_unlocked(driver, thread.thread_id)
    handle = RunHandle(thread_remote_id=thread.remote_id, run_remote_id=run.remote_run_id)
    remote_status = runtime.current().backend().get_run(handle).status
    if remote_status is RunStatus.IN_PROGRESS:  # Assistants: cancelling -> cancelled
        remote_status = runtime.current().backend().get_run(handle).status
    assert remote_status is RunStatus.CANCELLED


def test_second_run_on_a_locked_thread_is_refused(driver: RunDriver) -> None:
    thread = driver.new_thread()
    driver.product.openai.script.push(Step.hang(), key=thread.remote_id)
    first = driver.start(thread, "Keep going")
    for _ in range(6000):  # bounded: it returns once the condition holds
        if not thread_is_unlocked(driver, thread.thread_id):
            break
        time.sleep(0.01)
    description, run = driver.run(thread, "Me too")
    assert description["status"] == "FAILED"
    assert run.status is RunStatus.FAILED
    assert "ThreadBusyError" in (run.reason or "")
    holder = runtime.current().thread_store().get(driver.user_id, thread.thread_id).active_run_id
    assert holder == first.rsplit(":", 1)[-1], "the refused run must not release the lock"
    driver.product.stop_execution(first)


def test_a_retried_start_does_not_start_a_second_remote_run(driver: RunDriver) -> None:
    """Step Functions retries a task whose Lambda failed after its OpenAI call succeeded."""
    thread = driver.new_thread()
    request = {
        "run_id": new_id("run"),
        "thread_id": thread.thread_id,
        "user_id": driver.user_id,
        "message": "Just once",
    }
    objects_before = set(driver.product.openai.stats.snapshot()["objects"])
    first = driver.product.stack.invoke("StartRunFunction", request)
    again = driver.product.stack.invoke("StartRunFunction", request)
    created = set(driver.product.openai.stats.snapshot()["objects"]) - objects_before
    assert again["handle"] == first["handle"]
    assert created == {first["handle"]["run_remote_id"]}


def test_a_retried_tool_round_does_not_submit_twice(driver: RunDriver) -> None:
    thread = driver.new_thread()
    driver.product.openai.script.push(
        Step.call("get_table_schema", {"table_name": "sales"}), key=thread.remote_id
    )
    started = driver.product.stack.invoke(
        "StartRunFunction",
        {
            "run_id": new_id("run"),
            "thread_id": thread.thread_id,
            "user_id": driver.user_id,
            "message": "Schema please",
        },
    )
    checked = driver.product.stack.invoke("CheckRunFunction", started)
    assert checked["next"] == "run_tools"
    first = driver.product.stack.invoke("ProcessToolCallsFunction", checked)
    calls_after_first = driver.product.openai.stats.snapshot()["endpoints"]
    again = driver.product.stack.invoke("ProcessToolCallsFunction", checked)
    assert again == first
    assert driver.product.openai.stats.snapshot()["endpoints"] == calls_after_first, (
        "the retry must not call OpenAI again"
    )


def test_finishing_a_run_without_files_never_connects_to_openai(driver: RunDriver) -> None:
    """FinishRun's cold start skips the OpenAI SDK and the key secret unless files need it."""
    thread = driver.new_thread()
    driver.product.openai.script.push(Step.say("no files here"), key=thread.remote_id)
    description, _run = driver.run(thread, "Hi")
    final_state = RunState.model_validate_json(description["output"])

    def no_openai() -> AssistantBackend:
        raise AssertionError("FinishRun connected to OpenAI without a file to fetch")

    steps = dataclasses.replace(runtime.current().run_steps(), backend=no_openai)
    replayed = final_state.model_copy(update={"run_id": new_id("run")})
    finished, outcome, _first = steps.finish_run(replayed)
    assert finished.status is RunStatus.COMPLETED
    assert outcome.generated_files == []
