"""Runs whose execution was lost (it died, was stopped, or ran out of Express time between any
two steps) are finished once their thread's lock lease ends: failed with a reason, the remote
run stopped, every token counted once, the thread free for the next run."""

from __future__ import annotations

import pytest

from tests.unit.fakes import USER, Reply, World
from threadline.models import RunStatus
from threadline.runs.state import RunState
from threadline.threads.run_lock import run_lock_lease

LEASE = run_lock_lease(300).total_seconds()
LOOKUP = ("lookup", '{"key": "north"}')


def lost_after(world: World, steps: int, *replies: Reply) -> RunState:
    """A run in the Express tier whose execution dies after `steps` checks or tool rounds."""
    world.backend.script.extend(replies)
    state = world.start(tier="express")
    for _ in range(steps):
        world.clock.advance(1)
        state = (
            world.steps.process_tool_calls(state)
            if state.next == "run_tools"
            else world.steps.check_run(state)
        )
    return state


@pytest.mark.parametrize("api", ["responses", "assistants"])
@pytest.mark.parametrize("steps", [0, 1, 2, 3])
def test_a_run_lost_at_any_step_is_finished_failed_and_its_thread_freed(
    api: str, steps: int
) -> None:
    world = World(api=api)  # type: ignore[arg-type]
    lost_after(world, steps, Reply.call(LOOKUP, polls=1), Reply.forever(tokens=7))

    world.clock.advance(LEASE - steps)
    assert world.lost_runs.finish().finished == 0, "its lease has not ended yet"
    world.clock.advance(steps + 1)
    report = world.lost_runs.finish()

    assert report.finished == 1
    record = world.record()
    assert record.status is RunStatus.FAILED
    assert record.reason is not None
    assert "ExecutionLost" in record.reason
    assert world.current_thread().active_run_id is None
    assert "cancel_run" in world.backend.calls, "the remote run is stopped"
    assert world.lost_runs.finish().finished == 0, "finished once"


def test_every_response_of_a_lost_run_is_counted_once() -> None:
    world = World()
    state = lost_after(world, 3, Reply.call(LOOKUP, tokens=11), Reply.forever(tokens=7))
    assert state.tool_rounds == 1
    world.clock.advance(LEASE + 1)

    world.lost_runs.finish()
    world.lost_runs.finish()

    assert world.tokens_today() == 11 + 7


def test_a_finished_run_whose_lock_was_not_released_only_frees_the_thread() -> None:
    world = World()
    world.backend.script.append(Reply.say("done"))
    state = world.start()
    world.clock.advance(1)
    state = world.steps.check_run(state)
    world.steps.finish_run(state)
    # FinishRun recorded the outcome but died before releasing the lock.
    world.lock.acquire(USER, world.thread.thread_id, "run_1", lease=run_lock_lease(300))
    world.clock.advance(LEASE + 1)

    report = world.lost_runs.finish()

    assert (report.finished, report.released) == (0, 1)
    assert world.record().status is RunStatus.COMPLETED
    assert world.current_thread().active_run_id is None


def test_the_next_run_of_a_freed_thread_completes() -> None:
    world = World()
    lost_after(world, 1, Reply.forever())
    world.clock.advance(LEASE + 1)
    world.lost_runs.finish()

    world.backend.script.append(Reply.say("back to work"))
    state = world.start("run_2")
    world.clock.advance(1)
    assert world.steps.check_run(state).status is RunStatus.COMPLETED


def test_a_run_that_cannot_be_finished_now_does_not_hold_up_the_others() -> None:
    world = World()
    world.backend.script.extend([Reply.forever(), Reply.forever()])
    world.start(tier="express")
    other = world.new_thread("thr_2")
    world.steps.start_run(world.request("run_2", thread_id=other.thread_id))
    world.clock.advance(LEASE + 1)
    world.backend.fail_next("cancel_run", RuntimeError("a bug, not an OpenAI error"))

    first = world.lost_runs.finish()
    second = world.lost_runs.finish()

    assert (first.finished, first.failed) == (1, 1)
    assert (second.finished, second.failed) == (1, 0), "the next sweep finishes it"
    assert world.current_thread().active_run_id is None
    assert world.threads.get(USER, other.thread_id).active_run_id is None
