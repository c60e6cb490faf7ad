"""The Express tier and the hand-off to the Standard one, over in-memory fakes: a run is
checked every second for its Express stretch, then handed on once, whatever repeats."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.unit.fakes import (
    EXPRESS_ROUTES,
    STANDARD_MACHINE,
    Execution,
    Reply,
    World,
)
from threadline.models import RunStatus
from threadline.runs.state import RunState

STATE_MACHINES = Path(__file__).resolve().parents[2] / "statemachine"
LOOKUP = ("lookup", '{"key": "north"}')


def express_run(world: World, *replies: Reply) -> tuple[Execution, RunState]:
    world.backend.script.extend(replies)
    execution = Execution(world)
    return execution, execution.run(world.request(tier="express"), max_states=2000)


def steps_of(state: RunState) -> list[tuple[str, str]]:
    return [(entry.step, entry.tier) for entry in state.timeline]


def test_the_express_machines_routes_are_the_walkers_and_it_has_no_task_tokens() -> None:
    express = json.loads((STATE_MACHINES / "run_express.asl.json").read_text())["States"]
    standard_machine = json.loads((STATE_MACHINES / "run.asl.json").read_text())
    standard = standard_machine["States"]
    choices = express["RouteOnStatus"]["Choices"]
    assert {c["StringEquals"]: c["Next"] for c in choices} == EXPRESS_ROUTES
    assert not [s for s in express.values() if ".waitForTaskToken" in s.get("Resource", "")]
    # The Express tier retries quickly what Standard retries, hands on what needs time
    # (tests/test_first_deploy.py) and fails the run on the rest, as Standard does.
    for task in ("StartRun", "CheckRun", "ProcessToolCalls", "CancelRun", "FinishRun"):
        standard_errors = {e for r in standard[task]["Retry"] for e in r["ErrorEquals"]}
        for retrier in express[task]["Retry"]:
            assert set(retrier["ErrorEquals"]) <= standard_errors, task
        assert express[task].get("Catch", [])[-1:] == standard[task].get("Catch", [])[-1:], task
    # A handed-on run enters the Standard machine where it left off, not at StartRun.
    begin = standard[standard_machine["StartAt"]]
    assert begin["Choices"] == [{"Variable": "$.next", "IsPresent": True, "Next": "RouteOnStatus"}]


@pytest.mark.parametrize("api", ["responses", "assistants"])
def test_a_short_run_is_checked_every_second_and_never_handed_on(api: str) -> None:
    world = World(api=api)  # type: ignore[arg-type]
    execution, state = express_run(world, Reply.say("hi", polls=4))

    assert state.status is RunStatus.COMPLETED
    assert execution.entered.count("WaitForModel") == execution.entered.count("CheckRun") == 5
    assert "HandOffRun" not in execution.entered
    assert world.stepfunctions.started == []
    assert world.clock() - world.record().created_at == timedelta(seconds=5)
    assert steps_of(state) == [("started", "express"), ("finished", "express")]
    assert [entry.checks for entry in world.record().timeline] == [0, 5]


def test_a_long_run_is_handed_to_the_standard_machine_once_its_stretch_is_over() -> None:
    world = World(express_tier_seconds=10)
    execution, state = express_run(world, Reply.say("done at last", polls=30))

    assert state.status is RunStatus.COMPLETED
    assert execution.entered.count("HandOffRun") == 1
    waits = execution.entered.index("HandOffRun")
    assert execution.entered[:waits].count("CheckRun") == 10, "one check a second for 10 s"
    (standard,) = world.stepfunctions.started
    assert standard["name"] == "run_1"
    handed = RunState.model_validate_json(standard["input"])
    assert (handed.tier, handed.next, handed.wait_seconds, handed.polls) == (
        "standard",
        "wait",
        2,
        0,
    ), "the Standard machine starts its own growing waits"
    assert world.record().execution_arn == (
        STANDARD_MACHINE.replace(":stateMachine:", ":execution:") + ":run_1"
    )
    assert steps_of(state) == [
        ("started", "express"),
        ("handed_off", "express"),
        ("finished", "standard"),
    ]
    assert sum(entry.checks for entry in state.timeline) == 30 + 1


def test_push_mode_continues_with_a_webhook_wait() -> None:
    world = World(wait_mode="push", express_tier_seconds=3)
    execution, state = express_run(world, Reply.say("pushed", polls=4))

    assert state.status is RunStatus.COMPLETED
    after = execution.entered[execution.entered.index("HandOffRun") :]
    assert "WaitForWebhook" in after
    assert "WaitForWebhook" not in execution.entered[: execution.entered.index("HandOffRun")]


def test_tool_rounds_in_the_express_stretch_keep_its_clock() -> None:
    world = World()
    _execution, state = express_run(
        world,
        Reply.call(LOOKUP, polls=2),
        Reply.call(LOOKUP, polls=2),
        Reply.say("ok", polls=176),
    )

    assert state.status is RunStatus.COMPLETED
    assert state.tool_rounds == 2
    assert steps_of(state) == [
        ("started", "express"),
        ("tool_round", "express"),
        ("tool_round", "express"),
        ("handed_off", "express"),
        ("finished", "standard"),
    ]
    assert state.timeline[3].at - state.timeline[0].at == timedelta(seconds=180)


def test_tools_asked_for_late_in_the_stretch_run_after_the_hand_off() -> None:
    """A tool round (and its retries) must end inside Express's five minutes: within the
    stretch's last minute the run is handed on first and the round runs in Standard."""
    world = World()
    execution, state = express_run(world, Reply.call(LOOKUP, polls=150), Reply.say("ok"))

    assert state.status is RunStatus.COMPLETED
    assert execution.entered.index("HandOffRun") < execution.entered.index("ProcessToolCalls")
    assert steps_of(state) == [
        ("started", "express"),
        ("handed_off", "express"),
        ("tool_round", "standard"),
        ("finished", "standard"),
    ]


def test_a_repeated_hand_off_starts_nothing_new() -> None:
    """Express runs at least once and a Lambda may be retried: a second hand-off of the same
    run (its timeline differs) finds the Standard execution started and changes nothing."""
    world = World(express_tier_seconds=1)
    world.backend.script.append(Reply.say("slow", polls=20))
    state = world.start(tier="express")
    world.clock.advance(2)
    state = world.steps.check_run(state)
    assert state.next == "hand_off"

    first = world.hand_off.hand_off(state)
    world.clock.advance(1)
    again = world.hand_off.hand_off(state)

    assert len(world.stepfunctions.started) == 1
    assert first.tier == again.tier == "standard"
    assert world.record().execution_arn is not None
    assert world.record().execution_arn.endswith(":execution:run:run_1")


def test_a_hand_off_that_fails_for_good_fails_the_run_and_frees_the_thread() -> None:
    world = World(express_tier_seconds=1)
    world.backend.script.append(Reply.say("never seen", polls=50))
    world.stepfunctions.fail_with = "AccessDeniedException"
    state = Execution(world).run(world.request(tier="express"))

    assert state.status is RunStatus.FAILED
    assert state.reason is not None
    assert "AccessDeniedException" in state.reason
    assert world.current_thread().active_run_id is None
    assert "cancel_run" in world.backend.calls, "the remote run is stopped, not left spending"


def test_a_deadline_inside_the_express_stretch_cancels_there() -> None:
    world = World()
    execution = Execution(world)
    world.backend.script.append(Reply.say("too slow", polls=100))
    state = execution.run(world.request(tier="express", timeout_seconds=4))

    assert state.status is RunStatus.TIMED_OUT
    assert "HandOffRun" not in execution.entered
    assert steps_of(state)[-2:] == [("cancelled", "express"), ("finished", "express")]


@pytest.mark.parametrize(
    ("api", "configured", "mode"),
    [("responses", True, "push"), ("responses", False, "poll"), ("assistants", True, "poll")],
)
def test_auto_waits_for_webhooks_only_where_they_can_come(
    api: str, configured: bool, mode: str
) -> None:
    world = World(api=api, wait_mode="auto")  # type: ignore[arg-type]
    world.steps = replace(world.steps, webhooks_configured=lambda: configured)
    world.backend.script.append(Reply.say("hi"))

    assert world.start().wait_mode == mode


class WaitRecordingExecution(Execution):
    waits: list[int]

    def _step(self, task: str, state: RunState) -> RunState:
        if task == "WaitForWebhook":
            self.waits = [*getattr(self, "waits", []), state.webhook_wait_seconds]
        return super()._step(task, state)


def test_a_turn_without_its_webhook_waits_twice_as_long_each_time_up_to_the_maximum() -> None:
    world = World(wait_mode="push", run_timeout_seconds=3600)
    world.backend.script.append(Reply.say("slow, and its webhook lost", polls=6))
    execution = WaitRecordingExecution(world)
    state = execution.run(world.request())

    assert state.status is RunStatus.COMPLETED
    assert execution.waits == [120, 240, 480, 900, 900, 900, 60], (
        "the last one ends at the deadline"
    )


def test_a_webhook_wait_never_sleeps_past_the_deadline() -> None:
    world = World(wait_mode="push", run_timeout_seconds=200)
    world.backend.script.append(Reply.forever())
    execution = WaitRecordingExecution(world)
    state = execution.run(world.request())

    assert state.status is RunStatus.TIMED_OUT
    assert execution.waits == [120, 80]
    assert world.clock() - world.record().created_at == timedelta(seconds=200)


def test_a_lost_webhook_lengthens_the_waits_for_the_rest_of_the_run() -> None:
    """Each turn starts with the wait the last one reached: a long run with many turns pays
    for a few checks, not a few per turn."""
    world = World(wait_mode="push", run_timeout_seconds=3600)
    world.backend.script.extend(
        [Reply.call(LOOKUP, polls=2), Reply.call(LOOKUP, polls=0), Reply.say("done", polls=1)]
    )
    execution = WaitRecordingExecution(world)
    state = execution.run(world.request())

    assert state.status is RunStatus.COMPLETED
    # Turn 1 grows 120 -> 240 -> 480; turns 2 and 3 start at 480, the last doubles to 900.
    assert execution.waits == [120, 240, 480, 480, 480, 900]


def test_a_hand_off_that_cannot_record_the_new_execution_still_hands_off() -> None:
    """The execution ARN on the run record is a pointer for operators: the Standard execution
    started, so the run goes on whatever that write does."""
    world = World(express_tier_seconds=1)
    world.backend.script.append(Reply.say("slow", polls=5))
    state = world.start(tier="express")
    world.clock.advance(2)
    state = world.steps.check_run(state)

    def refuse(*_: object, **__: object) -> None:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "Update")

    world.runs.set_execution = refuse  # type: ignore[method-assign]
    handed = world.hand_off.hand_off(state)

    assert handed.tier == "standard"
    assert len(world.stepfunctions.started) == 1
