"""The run logic (RunSteps) over in-memory fakes: every route out of CheckRun, deadlines and
cancels, usage carried across tool rounds and counted once. No moto, no ASL, no HTTP."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.unit.fakes import (
    RETRIES,
    ROUTES,
    USER,
    Api,
    Execution,
    Reply,
    World,
    tokens_of,
)
from threadline.errors import BackendRequestError, ThreadBusyError, TransientBackendError
from threadline.models import RunStatus, ToolCall, Usage
from threadline.runs.polling import next_wait_seconds
from threadline.runs.records import RunRecord
from threadline.runs.state import CaughtError, RunState, StartRunInput

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "run.asl.json"
BOTH: list[Api] = ["responses", "assistants"]
LOOKUP = ("lookup", '{"key": "north"}')


@pytest.fixture(params=BOTH)
def world(request: pytest.FixtureRequest) -> World:
    return World(api=request.param)


def started(world: World, *replies: Reply, **request: object) -> RunState:
    world.backend.script.extend(replies)
    return world.start(**request)  # type: ignore[arg-type]


# -- the Python walk of the state machine follows run.asl.json ------------------------------


def test_the_executions_routes_and_retries_are_the_state_machines() -> None:
    states = json.loads(ASL.read_text())["States"]
    choices = states["RouteOnStatus"]["Choices"]
    assert {c["StringEquals"]: c["Next"] for c in choices} == ROUTES
    assert states["RouteOnStatus"]["Default"] == "FinishRun"
    for task, retries in RETRIES.items():
        retry = states[task]["Retry"]
        transient = [r for r in retry if "TransientBackendError" in r["ErrorEquals"]]
        assert [r["MaxAttempts"] for r in transient] == [retries]


# -- StartRun ---------------------------------------------------------------------------------


def test_start_records_the_run_locks_the_thread_and_waits(world: World) -> None:
    state = started(world, Reply.say("hi"))
    assert state.next == "wait"
    assert state.wait_seconds == 2
    assert state.deadline == world.clock() + timedelta(seconds=300)
    record = world.record()
    assert record.status is RunStatus.IN_PROGRESS
    assert state.handle is not None
    assert record.remote_run_id == state.handle.run_remote_id
    assert world.current_thread().active_run_id == "run_1"


def test_a_shorter_requested_timeout_is_the_deadline_a_longer_one_is_capped() -> None:
    world = World()
    shorter = started(world, Reply.say("a"), timeout_seconds=30)
    assert shorter.deadline == world.clock() + timedelta(seconds=30)
    other = World()
    longer = started(other, Reply.say("b"), timeout_seconds=3000)
    assert longer.deadline == other.clock() + timedelta(seconds=300)


def test_start_on_a_thread_another_run_holds_is_refused(world: World) -> None:
    started(world, Reply.forever())
    with pytest.raises(ThreadBusyError):
        started(world, Reply.say("second"), run_id="run_2")


def test_a_retried_start_keeps_the_lock_and_on_assistants_the_same_remote_run() -> None:
    world = World(api="assistants")
    first = started(world, Reply.forever())
    again = world.start()
    assert again.handle == first.handle
    assert len(world.backend.remotes) == 1
    assert world.current_thread().active_run_id == "run_1"


# -- CheckRun: every route out ----------------------------------------------------------------


def test_a_model_asking_for_tools_goes_to_the_tools(world: World) -> None:
    state = world.steps.check_run(started(world, Reply.call(LOOKUP)))
    assert state.next == "run_tools"
    assert state.status is RunStatus.REQUIRES_ACTION
    # The calls, with their arguments, are on the run's record; the state names them.
    pending = world.record().pending_tool_calls
    assert pending is not None
    (call,) = pending.calls
    assert (call.name, call.arguments) == LOOKUP
    assert state.pending_call_ids == [call.id]
    assert LOOKUP[1] not in state.model_dump_json()
    assert state.polls == 1
    # A response asking for tools has settled (the next round is another response); an
    # Assistants run has not.
    assert state.usage_settled is (world.api == "responses")


@pytest.mark.parametrize(
    ("api", "reply", "status"),
    [
        ("responses", Reply.say("The answer."), RunStatus.COMPLETED),
        ("assistants", Reply.say("The answer."), RunStatus.COMPLETED),
        ("responses", Reply.end(RunStatus.FAILED, "server_error: boom"), RunStatus.FAILED),
        ("assistants", Reply.end(RunStatus.FAILED, "rate_limit: slow"), RunStatus.FAILED),
        (
            "responses",
            Reply.end(RunStatus.INCOMPLETE, "incomplete: max_output_tokens"),
            RunStatus.INCOMPLETE,
        ),
        ("assistants", Reply.end(RunStatus.EXPIRED, "expired: late"), RunStatus.EXPIRED),
        ("responses", Reply.end(RunStatus.CANCELLED, "cancelled"), RunStatus.CANCELLED),
    ],
)
def test_a_run_that_ended_remotely_goes_to_finish_as_it_ended(
    api: Api, reply: Reply, status: RunStatus
) -> None:
    world = World(api=api)
    state = world.steps.check_run(started(world, reply))
    assert state.next == "finish"
    assert state.status is status
    assert state.usage_settled is True
    assert state.usage == tokens_of(10)
    assert "The answer." not in state.model_dump_json()  # the answer is on the record
    if status is RunStatus.COMPLETED:
        assert (world.record().answer, state.reason) == ("The answer.", None)
    else:
        assert state.reason == reply.error
        assert world.record().answer is None

    _finished, outcome, first = world.steps.finish_run(state)
    assert first is True
    assert outcome.status is status
    assert outcome.output_text == ("The answer." if status is RunStatus.COMPLETED else None)
    assert world.record().answer is None
    assert world.record().status is status
    assert world.record().reason == reply.error
    assert world.current_thread().active_run_id is None
    # Only a completed run moves the thread's head.
    head = world.current_thread().head_response_id
    assert head == (state.handle.run_remote_id if status is RunStatus.COMPLETED else None)
    assert world.tokens_today() == 10


def test_a_run_still_going_waits_longer_each_time_up_to_the_maximum() -> None:
    world = World()
    state = started(world, Reply.forever())
    waits = []
    for _ in range(8):
        state = world.steps.check_run(state)
        assert state.next == "wait"
        assert state.status is RunStatus.IN_PROGRESS
        waits.append(state.wait_seconds)
    assert waits == [
        next_wait_seconds(
            polls,
            initial=2,
            maximum=15,
            poll_hint=None,
            seconds_to_deadline=300,
        )
        for polls in range(8)
    ]
    assert waits[0] == 2
    assert waits[-1] == 15
    assert state.polls == 8


def test_the_wait_honours_the_servers_poll_hint_and_never_passes_the_deadline() -> None:
    world = World()
    slow = Reply.forever()
    slow.poll_after_seconds = 9.0
    state = world.steps.check_run(started(world, slow))
    assert state.wait_seconds == 9
    world.clock.advance(296)
    state = world.steps.check_run(state)
    assert state.next == "wait"
    assert state.wait_seconds == 4  # the deadline is 4 s away


def test_a_run_still_going_in_push_mode_waits_for_its_webhook() -> None:
    world = World(wait_mode="push")
    state = started(world, Reply.forever())
    assert state.next == "wait_for_webhook"
    assert state.webhook_wait_seconds == world.settings.webhook_wait_seconds
    state = world.steps.check_run(state)  # the wait ended without its webhook
    assert state.next == "wait_for_webhook"
    assert state.webhook_wait_seconds == 2 * world.settings.webhook_wait_seconds


@pytest.mark.parametrize("wait_mode", ["poll", "push"])
def test_a_run_still_going_at_its_deadline_is_cancelled(wait_mode: str) -> None:
    world = World(wait_mode=wait_mode)  # type: ignore[arg-type]
    state = started(world, Reply.forever())
    world.clock.advance(299)
    assert world.steps.check_run(state).next != "cancel"
    world.clock.advance(1)
    assert world.steps.check_run(state).next == "cancel"


def test_an_answer_that_came_at_the_deadline_is_used(world: World) -> None:
    state = started(world, Reply.say("just in time", polls=0))
    world.clock.advance(3600)
    checked = world.steps.check_run(state)
    assert checked.next == "finish"
    assert world.steps.finish_run(checked)[1].output_text == "just in time"


# -- CancelRun and the deadline ---------------------------------------------------------------


def test_the_deadline_cancels_the_remote_run_and_the_run_times_out(world: World) -> None:
    world.backend.script.append(Reply.forever())
    execution = Execution(world)
    finished = execution.run(world.request())
    assert execution.entered[-3:] == ["CheckRun", "CancelRun", "FinishRun"]
    assert finished.status is RunStatus.TIMED_OUT
    assert execution.outcome is not None
    assert execution.outcome.reason == "run passed its deadline and was cancelled"
    assert world.record().status is RunStatus.TIMED_OUT
    assert world.current_thread().active_run_id is None
    assert world.current_thread().head_response_id is None
    assert "cancel_run" in world.backend.calls


def test_a_cancelled_response_is_counted_at_finish() -> None:
    world = World(api="responses")
    world.backend.script.append(Reply.forever(tokens=7))
    finished = Execution(world).run(world.request())
    assert finished.usage_settled is True
    assert world.tokens_today() == 7


def test_an_assistants_run_still_cancelling_is_counted_by_the_threads_next_run() -> None:
    world = World(api="assistants")
    world.backend.script.append(Reply.forever(tokens=7))
    finished = Execution(world).run(world.request())
    assert finished.status is RunStatus.TIMED_OUT
    assert finished.usage_settled is False
    assert world.tokens_today() == 0  # not final yet: counting it now could count it short
    started(world, Reply.say("next"), run_id="run_2")
    assert world.tokens_today() == 7
    assert world.usage.counted_objects(world.thread.thread_id) == ["run_1"]


def test_cancel_that_loses_the_race_records_the_completion(world: World) -> None:
    state = started(world, Reply.say("won the race"))
    world.clock.advance(400)
    cancelled = world.steps.cancel_run(state)  # the remote run completes as the cancel lands
    assert cancelled.status is RunStatus.COMPLETED
    _finished, outcome, _first = world.steps.finish_run(cancelled)
    assert (outcome.status, outcome.output_text) == (RunStatus.COMPLETED, "won the race")
    assert world.tokens_today() == 10


# -- tool rounds and usage ---------------------------------------------------------------------


@pytest.mark.parametrize("api", ["responses", "assistants"])
def test_a_model_asking_for_tools_past_the_limit_fails_the_run_and_frees_the_thread(
    api: Api,
) -> None:
    world = World(api=api)
    world.steps = dataclasses.replace(
        world.steps, settings=world.settings.model_copy(update={"max_tool_rounds": 2})
    )
    world.backend.script.extend([Reply.call(LOOKUP)] * 3)
    finished = Execution(world).run(world.request())
    assert finished.status is RunStatus.FAILED
    assert world.record().tool_rounds == 2
    assert (world.record().reason or "").startswith("ToolRoundLimit: ")
    assert world.current_thread().active_run_id is None
    assert "cancel_run" in world.backend.calls  # the remote run waiting on the calls stops


def test_usage_is_carried_across_tool_rounds_and_each_response_counted_once() -> None:
    world = World(api="responses")
    state = started(
        world,
        Reply.call(LOOKUP, tokens=100),
        Reply.call(LOOKUP, ("broken", '{"key": "x"}'), tokens=40),
        Reply.say("North is up.", tokens=5),
    )
    state = world.steps.check_run(state)
    state = world.steps.process_tool_calls(state)
    assert state.handle is not None
    assert state.handle.carried_usage == tokens_of(100)
    assert state.next == "wait"
    assert (state.polls, state.tool_rounds, state.tool_calls) == (0, 1, 1)

    state = world.steps.check_run(state)
    assert state.usage == tokens_of(140)  # carried + this response's
    state = world.steps.process_tool_calls(state)
    assert (state.tool_rounds, state.tool_calls, state.tool_errors) == (2, 3, 1)

    state = world.steps.check_run(state)
    assert state.status is RunStatus.COMPLETED
    assert state.usage == tokens_of(145)
    _finished, outcome, _first = world.steps.finish_run(state)
    assert outcome.usage == tokens_of(145)
    assert world.tokens_today() == 145
    assert sorted(world.usage.counted_objects("thr_1")) == ["resp_1", "resp_2", "resp_3"]
    assert world.usage.counted[("thr_1", "resp_2")] == tokens_of(40)
    record = world.record()
    assert record.tool_rounds == 2
    assert [call.is_error for call in record.tool_calls] == [False, False, True]
    assert record.remote_object_ids == ["resp_1", "resp_2", "resp_3"]
    assert world.current_thread().head_response_id == "resp_3"
    # Each response continues from the one before, the first from the thread's head.
    assert [world.backend.remotes[f"resp_{n}"].previous_id for n in (1, 2, 3)] == [
        None,
        "resp_1",
        "resp_2",
    ]
    assert json.loads(world.backend.remotes["resp_2"].outputs[0].output)["value"] == "NORTH"


def test_an_assistants_run_reports_its_usage_once_for_all_its_rounds() -> None:
    world = World(api="assistants")
    state = started(world, Reply.call(LOOKUP, tokens=100), Reply.say("done", tokens=5))
    state = world.steps.check_run(state)
    assert state.usage == Usage()  # nothing reported before the run ends
    state = world.steps.process_tool_calls(state)
    assert state.handle is not None
    assert state.handle.finished_usage == {}
    assert state.handle.run_remote_id == "run_1"
    state = world.steps.check_run(state)
    assert state.usage == tokens_of(105)
    world.steps.finish_run(state)
    assert world.tokens_today() == 105
    assert world.usage.counted_objects("thr_1") == ["run_1"]


def test_a_retried_finish_counts_and_records_nothing_twice(world: World) -> None:
    state = started(world, Reply.call(LOOKUP, tokens=100), Reply.say("done", tokens=5))
    state = world.steps.process_tool_calls(world.steps.check_run(state))
    state = world.steps.check_run(state)
    finished, outcome, first = world.steps.finish_run(state)
    assert first is True
    world.clock.advance(5)
    again, outcome_again, first_again = world.steps.finish_run(state)
    assert first_again is False
    assert world.tokens_today() == 105
    assert world.usage.today(USER).runs == 1
    assert world.record().finished_at == outcome.finished_at  # the first outcome stays
    assert again.status is finished.status is RunStatus.COMPLETED
    assert outcome_again.usage == outcome.usage


def test_a_full_execution_with_a_tool_round_completes(world: World) -> None:
    world.backend.script.extend([Reply.call(LOOKUP, polls=1), Reply.say("fine", polls=2)])
    execution = Execution(world)
    finished = execution.run(world.request())
    assert finished.status is RunStatus.COMPLETED
    assert execution.entered.count("ProcessToolCalls") == 1
    assert execution.entered.count("CheckRun") == 5
    assert world.record().output_text == "fine"
    assert world.tokens_today() == 20
    assert world.usage.today(USER).runs == 1


def test_transient_errors_are_retried_and_a_refusal_fails_the_run(world: World) -> None:
    world.backend.script.extend([Reply.call(LOOKUP, polls=1), Reply.say("fine")])
    world.backend.fail_next("get_run", TransientBackendError("503"), TransientBackendError("429"))
    world.backend.fail_next("submit_tool_outputs", BackendRequestError("400: bad outputs"))
    execution = Execution(world)
    finished = execution.run(world.request())
    assert finished.status is RunStatus.FAILED
    assert finished.reason == "BackendRequestError: 400: bad outputs"
    assert world.record().reason == "BackendRequestError: 400: bad outputs"
    assert world.current_thread().active_run_id is None
    assert world.current_thread().head_response_id is None


# -- FinishRun stops an abandoned remote run ----------------------------------------------------


def failed_while_going(world: World, tokens: int = 7) -> RunState:
    state = world.steps.check_run(started(world, Reply.forever(tokens=tokens)))
    assert state.status is RunStatus.IN_PROGRESS
    return state.model_copy(update={"error": CaughtError(Error="States.Timeout", Cause=None)})


def test_finish_cancels_a_remote_run_abandoned_while_going_and_takes_its_usage() -> None:
    world = World(api="responses")
    state = failed_while_going(world)
    finished, outcome, _first = world.steps.finish_run(state)
    assert outcome.status is RunStatus.FAILED
    assert outcome.reason == "States.Timeout"
    assert world.backend.remotes["resp_1"].status == "cancelled"
    assert outcome.usage == tokens_of(7)
    assert world.tokens_today() == 7
    assert finished.usage_settled is True


def test_an_assistants_run_still_cancelling_is_looked_at_once_more() -> None:
    world = World(api="assistants")
    state = failed_while_going(world)
    _finished, outcome, _first = world.steps.finish_run(state)
    assert world.backend.calls[-2:] == ["cancel_run", "get_run"]
    assert world.backend.remotes["run_1"].status == "cancelled"
    assert outcome.usage == tokens_of(7)
    assert world.tokens_today() == 7


def test_a_failed_cancel_at_finish_looks_at_the_run_once_more() -> None:
    world = World(api="responses")
    state = world.steps.check_run(started(world, Reply.say("late", tokens=9, polls=1)))
    state = state.model_copy(update={"error": CaughtError(Error="Lambda.Unknown")})
    world.backend.fail_next("cancel_run", TransientBackendError("cancel: 503"))
    _finished, outcome, first = world.steps.finish_run(state)
    assert first is True
    assert world.backend.calls[-2:] == ["cancel_run", "get_run"]
    assert outcome.status is RunStatus.FAILED  # the error decides the outcome
    assert outcome.usage == tokens_of(9)  # the look found it settled: counted
    assert world.tokens_today() == 9


def test_finish_records_the_outcome_whatever_openai_answers() -> None:
    world = World(api="responses")
    state = failed_while_going(world)
    world.backend.fail_next("cancel_run", TransientBackendError("cancel: 503"))
    world.backend.fail_next("get_run", BackendRequestError("retrieve: 400"))
    _finished, outcome, first = world.steps.finish_run(state)
    assert first is True
    assert outcome.status is RunStatus.FAILED
    assert world.tokens_today() == 0  # nothing settled was seen; its webhook counts it
    assert world.current_thread().active_run_id is None


def test_a_run_that_failed_to_start_finishes_without_openai() -> None:
    world = World()
    world.backend.fail_next("start_run", BackendRequestError("400: bad model"))
    execution = Execution(world)
    finished = execution.run(world.request())
    assert execution.entered == ["StartRun", "FinishRun"]
    assert finished.status is RunStatus.FAILED
    assert finished.reason == "BackendRequestError: 400: bad model"
    assert world.record().status is RunStatus.FAILED
    assert world.current_thread().active_run_id is None
    assert world.backend.calls.count("cancel_run") == 0


# -- a response known only from its webhook ----------------------------------------------------


def test_a_settled_response_known_from_its_webhook_is_counted_once() -> None:
    world = World(api="responses")
    state = started(world, Reply.say("x", tokens=12, polls=1))
    assert state.handle is not None
    remote_id = state.handle.run_remote_id
    assert world.steps.counting.count_remote(remote_id) is False  # still going: not settled
    assert world.steps.counting.count_remote(remote_id) is True
    assert world.steps.counting.count_remote(remote_id) is False
    assert world.steps.counting.count_remote("resp_someone_elses") is False
    assert world.tokens_today() == 12
    # FinishRun then counts nothing twice.
    world.steps.finish_run(world.steps.check_run(state))
    assert world.tokens_today() == 12


def test_a_field_a_newer_release_adds_to_the_state_is_ignored_during_a_deploy() -> None:
    """While a deploy rolls out, a newer API or task can hand this code a state with fields it
    does not know yet: they are ignored, and the run goes on."""
    world = World(api="responses")
    world.backend.script.append(Reply.say("done"))
    newer = {**world.request().model_dump(mode="json"), "priority": "high"}
    state = world.steps.start_run(StartRunInput.model_validate(newer))
    newer_state = {**state.model_dump(mode="json"), "streaming": {"listeners": 2}}
    checked = world.steps.check_run(RunState.model_validate(newer_state))
    assert checked.status is RunStatus.COMPLETED


# -- a run another one interrupts (if_busy=interrupt) -------------------------------------------


def interrupt(world: World, run_id: str = "run_1") -> None:
    record = world.record(run_id)
    world.runs.records[(record.thread_id, run_id)] = record.model_copy(
        update={"interrupted_by": "run_2"}
    )


def test_an_interrupted_run_answers_no_tool_calls_and_ends_cancelled() -> None:
    world = World(api="responses")
    state = world.steps.check_run(started(world, Reply.call(("lookup", '{"key": "a"}'))))
    assert state.next == "run_tools"
    interrupt(world)
    state = world.steps.process_tool_calls(state)
    assert "submit_tool_outputs" not in world.backend.calls
    assert (state.status, state.next) == (RunStatus.CANCELLED, "finish")
    _finished, outcome, _first = world.steps.finish_run(state)
    assert (outcome.status, outcome.reason) == (RunStatus.CANCELLED, "interrupted")
    thread = world.current_thread()
    assert thread.active_run_id is None
    assert thread.head_response_id is None, "its unanswered calls are not the thread's history"


def test_a_run_interrupted_while_it_started_stops_at_once() -> None:
    world = World(api="responses")
    world.backend.script.append(Reply.forever())
    world.runs.put_new(
        RunRecord(
            run_id="run_1",
            thread_id=world.thread.thread_id,
            user_id=USER,
            assistant="data_analyst",
            message="How are sales?",
            created_at=world.clock(),
            interrupted_by="run_2",
        )
    )
    state = world.steps.check_run(world.start())
    assert world.backend.calls.count("cancel_run") == 1
    assert state.status is RunStatus.CANCELLED
    _finished, outcome, _first = world.steps.finish_run(state)
    assert outcome.reason == "interrupted"


# -- approvals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "asked_seconds_ago", "wait"),
    [("responses", 120, 86_400), ("assistants", 120, 420), ("assistants", 600, 1)],
)
def test_a_wait_for_approval_ends_before_an_assistants_run_expires(
    api: Api, asked_seconds_ago: int, wait: int
) -> None:
    """An Assistants run waiting for tool outputs expires ten minutes after it asked for them:
    its wait for a person ends a minute before (at once when that has passed)."""
    world = World(api=api)
    call = ToolCall(id="call_1", name="lookup", arguments='{"key": "north"}')
    state = RunState(
        run_id="run_1",
        thread_id="thr_1",
        user_id=USER,
        tier="standard",
        pending_tool_calls=[call],
        tools_requested_at=world.clock() - timedelta(seconds=asked_seconds_ago),
    )

    waiting = world.steps._ask_approval(state, [call])

    assert (waiting.next, waiting.status) == ("await_approval", RunStatus.REQUIRES_APPROVAL)
    assert waiting.approval_call_ids == ["call_1"]
    assert waiting.approval_wait_seconds == wait
