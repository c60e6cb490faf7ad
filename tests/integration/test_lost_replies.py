"""Runs against an OpenAI that is not idempotent: a create can happen with its reply lost or
late, a step can fail for good after the model asked for tools, a cancel can arrive after the
run ended. Whatever happens, the thread stays usable, the user's message is in its history
once, and the recorded outcome is what happened remotely. Both backends, on the real ASL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from local.chaos import history_at_server, tokens_by_user
from local.openai_server import Fault, Step
from local.stack_session import LocalThreadline, local_threadline
from tests.integration.conftest import RunDriver
from threadline import runtime
from threadline.backends.base import RunView
from threadline.ids import new_id
from threadline.models import RunStatus
from threadline.runs.state import CaughtError, RunState
from threadline.threads.records import Thread

SDK_TIMEOUT = "1"  # seconds; a reply held longer is one the client gave up on
CREATE_PATH = {"responses": "/v1/responses", "assistants": "/v1/threads/*/runs"}
CANCEL_PATH = {"responses": "/v1/responses/*/cancel", "assistants": "/v1/threads/*/runs/*/cancel"}
SCHEMA_CALL = ("get_table_schema", {"table_name": "sales"})


@pytest.fixture(scope="module", params=["responses", "assistants"])
def product(request: pytest.FixtureRequest) -> Iterator[LocalThreadline]:
    parameters = {"Backend": request.param, "OpenAITimeoutSeconds": SDK_TIMEOUT}
    with local_threadline(parameters=parameters) as session:
        yield session


def backend_name() -> str:
    return runtime.current().backend().name


def history(driver: RunDriver, thread: Thread) -> list[tuple[str, str]]:
    """(role, text) of every message the model will see on the thread's next run."""
    assert driver.product.openai is not None
    current = runtime.current().thread_store().get(driver.user_id, thread.thread_id)
    return history_at_server(driver.product.openai, current)


def questions(driver: RunDriver, thread: Thread) -> list[str]:
    return [text for role, text in history(driver, thread) if role == "user"]


def assert_usable(driver: RunDriver, thread: Thread, asked_before: list[str]) -> None:
    """The thread's next run completes, and the history holds each question once, in order."""
    script = driver.product.openai.script
    script.clear()  # steps scripted for a duplicate the run did not make
    script.push(Step.say("still here"), key=thread.remote_id)
    description, run = driver.run(thread, "Are you there?")
    assert run.status is RunStatus.COMPLETED, (description, run.reason)
    assert run.output_text == "still here"
    assert questions(driver, thread) == [*asked_before, "Are you there?"]


def kept_if_assistants(asked: list[str]) -> list[str]:
    """The questions of runs that did not complete: a chain of responses leaves them out of
    the thread's history; an Assistants thread keeps every message posted to it."""
    return asked if backend_name() == "assistants" else []


def start_state(driver: RunDriver, thread: Thread, message: str) -> RunState:
    request = {
        "run_id": new_id("run"),
        "thread_id": thread.thread_id,
        "user_id": driver.user_id,
        "message": message,
    }
    return RunState.model_validate(driver.product.stack.invoke("StartRunFunction", request))


def remote_view(state: RunState, until: Callable[[RunView], bool]) -> RunView:
    """The remote run as CheckRun reads it, once `until` holds for it (bounded)."""
    assert state.handle is not None
    for _ in range(6000):  # bounded: it returns once the condition holds
        view = runtime.current().backend().get_run(state.handle)
        if until(view):
            return view
        time.sleep(0.01)
    raise TimeoutError(f"{state.handle.run_remote_id} never got there")


def remote_status(state: RunState, until: RunStatus) -> RunStatus:
    return remote_view(state, lambda view: view.status is until).status


def invoke(driver: RunDriver, function: str, state: RunState) -> dict[str, Any]:
    return driver.product.stack.invoke(function, state.to_output())


def test_a_lost_reply_on_starting_a_run_adds_the_message_once(driver: RunDriver) -> None:
    thread = driver.new_thread()
    openai = driver.product.openai
    openai.script.extend(
        [Step.call(*SCHEMA_CALL), Step.call(*SCHEMA_CALL), Step.say("sales has 5 columns")],
        key=thread.remote_id,
    )
    openai.faults.add(Fault.lost_reply(), method="POST", path=CREATE_PATH[backend_name()])

    description, run = driver.run(thread, "Describe sales")

    assert description["status"] == "SUCCEEDED", description
    assert run.status is RunStatus.COMPLETED
    assert run.output_text == "sales has 5 columns"
    assert questions(driver, thread) == ["Describe sales"]
    assert_usable(driver, thread, ["Describe sales"])


def test_a_reply_past_the_timeout_adds_message_and_answer_once(driver: RunDriver) -> None:
    thread = driver.new_thread()
    openai = driver.product.openai
    openai.script.extend([Step.say("the answer")] * 2, key=thread.remote_id)
    openai.faults.add(Fault.slow_reply(1.5), method="POST", path=CREATE_PATH[backend_name()])

    description, run = driver.run(thread, "Hello?")

    assert description["status"] == "SUCCEEDED", description
    assert run.output_text == "the answer"
    assert history(driver, thread) == [("user", "Hello?"), ("assistant", "the answer")]
    assert_usable(driver, thread, ["Hello?"])


def test_a_lost_reply_on_the_tool_outputs_does_not_fail_the_run(driver: RunDriver) -> None:
    thread = driver.new_thread()
    openai = driver.product.openai
    openai.script.extend(
        [Step.call(*SCHEMA_CALL), Step.say("done"), Step.say("done")], key=thread.remote_id
    )
    if backend_name() == "responses":  # the outputs start the run's second response
        openai.faults.add(Fault.lost_reply(), method="POST", path="/v1/responses", after=1)
    else:
        openai.faults.add(
            Fault.lost_reply(), method="POST", path="/v1/threads/*/runs/*/submit_tool_outputs"
        )

    description, run = driver.run(thread, "Schema?")

    assert description["status"] == "SUCCEEDED", description
    assert (run.status, run.output_text, run.tool_rounds) == (RunStatus.COMPLETED, "done", 1)
    assert questions(driver, thread) == ["Schema?"]
    assert_usable(driver, thread, ["Schema?"])


def test_a_run_that_fails_with_tool_calls_unanswered_leaves_the_thread_usable(
    driver: RunDriver,
) -> None:
    """As when CheckRun's retries run out while the model asks for tools remotely."""
    thread = driver.new_thread()
    driver.product.openai.script.push(Step.call(*SCHEMA_CALL), key=thread.remote_id)
    state = start_state(driver, thread, "Schema, then nothing")
    remote_status(state, until=RunStatus.REQUIRES_ACTION)
    caught = CaughtError(Error="TransientBackendError", Cause="retrieve response: 503")

    invoke(driver, "FinishRunFunction", state.model_copy(update={"error": caught}))

    run = runtime.current().run_store().get(thread.thread_id, state.run_id)
    assert run.status is RunStatus.FAILED
    assert run.usage.total_tokens > 0, "the tokens the model spent are counted"
    assert (
        runtime.current().usage_ledger().today(driver.user_id).total_tokens
        == run.usage.total_tokens
    )
    assert_usable(driver, thread, kept_if_assistants(["Schema, then nothing"]))


def finished_while_cancel_failed(driver: RunDriver, thread: Thread) -> RunState:
    """A run that failed (CheckRun's retries ran out) while the model asked for tools, whose
    FinishRun could not cancel the remote run."""
    openai = driver.product.openai
    openai.script.push(Step.call(*SCHEMA_CALL), key=thread.remote_id)
    state = start_state(driver, thread, "Schema, then nothing")
    remote_status(state, until=RunStatus.REQUIRES_ACTION)
    openai.faults.add(Fault.http_error(503), path=CANCEL_PATH[backend_name()])
    caught = CaughtError(Error="TransientBackendError", Cause="retrieve response: 503")
    invoke(driver, "FinishRunFunction", state.model_copy(update={"error": caught}))
    return state


def test_a_remote_run_its_run_could_not_stop_is_counted_by_the_next_run(
    driver: RunDriver,
) -> None:
    """FinishRun's cancel fails. A response that asked for tools has settled: FinishRun looks
    once more and counts it. An Assistants run waits for its outputs and sends no webhook:
    the thread's next run stops it and counts it once it settled."""
    thread = driver.new_thread()
    finished_while_cancel_failed(driver, thread)

    assert_usable(driver, thread, kept_if_assistants(["Schema, then nothing"]))

    spent = tokens_by_user(driver.product.openai)[driver.user_id]
    assert spent > 0
    assert runtime.current().usage_ledger().today(driver.user_id).total_tokens == spent


def test_a_remote_run_that_settles_after_its_thread_last_ran_is_counted_by_cleanup(
    driver: RunDriver,
) -> None:
    thread = driver.new_thread()
    state = finished_while_cancel_failed(driver, thread)
    assert state.handle is not None
    runtime.current().backend().cancel_run(state.handle)  # stopped at OpenAI after the run ended
    remote_view(state, until=lambda view: view.settled)
    spent = tokens_by_user(driver.product.openai)[driver.user_id]

    runtime.current().cleaner().purge(
        runtime.current().thread_store().get(driver.user_id, thread.thread_id)
    )

    assert spent > 0
    assert runtime.current().usage_ledger().today(driver.user_id).total_tokens == spent


def test_a_tool_round_cancelled_at_the_deadline_leaves_the_thread_usable(
    driver: RunDriver,
) -> None:
    thread = driver.new_thread()
    driver.product.openai.script.extend(
        [Step.call(*SCHEMA_CALL), Step.hang()], key=thread.remote_id
    )

    description, run = driver.run(thread, "Think long", timeout_seconds=1)

    assert description["status"] == "FAILED"
    assert (run.status, run.tool_rounds) == (RunStatus.TIMED_OUT, 1)
    assert_usable(driver, thread, kept_if_assistants(["Think long"]))


def test_an_incomplete_response_with_calls_ends_the_run_and_the_thread_goes_on(
    driver: RunDriver,
) -> None:
    thread = driver.new_thread()
    driver.product.openai.script.push(
        Step.incomplete("max_output_tokens", calls=[SCHEMA_CALL]), key=thread.remote_id
    )

    description, run = driver.run(thread, "Cut short")

    assert description["status"] == "FAILED"
    assert run.status is RunStatus.INCOMPLETE
    assert run.tool_rounds == 0, "calls of an incomplete response are never run"
    assert_usable(driver, thread, kept_if_assistants(["Cut short"]))


def test_a_cancel_that_loses_the_race_records_what_happened(driver: RunDriver) -> None:
    thread = driver.new_thread()
    driver.product.openai.script.push(Step.say("made it in time"), key=thread.remote_id)
    state = start_state(driver, thread, "Quick one")
    remote_status(state, until=RunStatus.COMPLETED)

    cancelled = RunState.model_validate(invoke(driver, "CancelRunFunction", state))
    invoke(driver, "FinishRunFunction", cancelled)

    run = runtime.current().run_store().get(thread.thread_id, state.run_id)
    assert (run.status, run.output_text) == (RunStatus.COMPLETED, "made it in time")
    assert_usable(driver, thread, ["Quick one"])
