"""Push mode's wait (WebhookWaits): the task token and the webhook meet in either order, and
the wait is finished exactly once. Over in-memory fakes: no moto, no Step Functions."""

from __future__ import annotations

import pytest

from tests.unit.fakes import FakeStepFunctions, Reply, World
from threadline.errors import TransientBackendError
from threadline.models import RunStatus
from threadline.runs.state import CaughtError, RunState
from threadline.runs.webhook_waits import WebhookWaits


class Push:
    def __init__(self) -> None:
        self.world = World(api="responses", wait_mode="push")
        self.store = self.world.waits
        self.sfn = FakeStepFunctions()
        self.waits = WebhookWaits(
            store=self.store,  # type: ignore[arg-type]
            steps=self.world.steps,
            stepfunctions=self.sfn,  # type: ignore[arg-type]
        )

    def waiting(self, reply: Reply) -> RunState:
        self.world.backend.script.append(reply)
        state = self.world.start()
        assert state.next == "wait_for_webhook"
        return state

    def sent_states(self) -> list[RunState]:
        return [RunState.model_validate_json(output) for _token, output in self.sfn.sent]


@pytest.fixture
def push() -> Push:
    return Push()


def response_id(state: RunState) -> str:
    assert state.handle is not None
    return state.handle.run_remote_id


def test_token_first_then_the_webhook_resumes_the_execution(push: Push) -> None:
    state = push.waiting(Reply.say("done"))
    assert push.waits.wait_for_webhook(state, "token-1") is False
    assert push.sfn.sent == []
    assert push.waits.on_event("response.completed", response_id(state)).outcome == "resumed"
    assert [token for token, _ in push.sfn.sent] == ["token-1"]
    (resumed,) = push.sent_states()
    assert (resumed.next, resumed.status) == ("finish", RunStatus.COMPLETED)
    assert push.world.record().answer == "done"  # kept on the record, not sent in the state


def test_webhook_first_then_the_token_resumes_at_once(push: Push) -> None:
    state = push.waiting(Reply.say("done"))
    assert push.waits.on_event("response.completed", response_id(state)).outcome == "recorded"
    assert push.sfn.sent == []
    assert push.waits.wait_for_webhook(state, "token-1") is True
    assert [token for token, _ in push.sfn.sent] == ["token-1"]
    assert push.sent_states()[0].next == "finish"


@pytest.mark.parametrize("token_first", [True, False])
def test_the_wait_is_finished_once_however_often_either_half_comes(
    push: Push, token_first: bool
) -> None:
    state = push.waiting(Reply.say("done"))
    rid = response_id(state)
    if token_first:
        push.waits.wait_for_webhook(state, "token-1")
    for _ in range(3):  # OpenAI delivers at least once
        push.waits.on_event("response.completed", rid)
    push.waits.wait_for_webhook(state, "token-1")  # a retried WaitForWebhook
    assert len(push.sfn.sent) == 1
    assert push.waits.on_event("response.completed", rid).outcome == "recorded"


def test_events_that_are_not_a_finished_response_are_ignored(push: Push) -> None:
    state = push.waiting(Reply.say("done"))
    push.waits.wait_for_webhook(state, "token-1")
    assert push.waits.on_event("response.created", response_id(state)).outcome == "ignored"
    assert push.sfn.sent == []
    assert push.store.items[response_id(state)].event_type is None


def test_an_event_for_an_unknown_response_is_only_remembered(push: Push) -> None:
    assert push.waits.on_event("response.completed", "resp_unknown").outcome == "recorded"
    assert push.sfn.sent == []


def test_the_webhook_resumes_with_the_tool_round_the_response_asks_for(push: Push) -> None:
    state = push.waiting(Reply.call(("lookup", '{"key": "a"}')))
    push.waits.wait_for_webhook(state, "token-1")
    push.waits.on_event("response.completed", response_id(state))
    (resumed,) = push.sent_states()
    assert resumed.next == "run_tools"
    pending = push.world.record().pending_tool_calls
    assert pending is not None
    assert [call.name for call in pending.calls] == ["lookup"]
    assert resumed.pending_call_ids == [call.id for call in pending.calls]


def test_a_resume_that_fails_gives_the_wait_back_for_a_retry(push: Push) -> None:
    state = push.waiting(Reply.say("done"))
    rid = response_id(state)
    push.waits.wait_for_webhook(state, "token-1")
    push.world.backend.fail_next("get_run", TransientBackendError("retrieve: 503"))
    with pytest.raises(TransientBackendError):
        push.waits.on_event("response.completed", rid)
    assert push.sfn.sent == []
    assert push.store.items[rid].claimed is False
    assert push.waits.on_event("response.completed", rid).outcome == "resumed"  # the retry
    assert len(push.sfn.sent) == 1


def test_a_failed_send_gives_the_wait_back_but_a_timed_out_task_is_done(push: Push) -> None:
    state = push.waiting(Reply.say("done"))
    rid = response_id(state)
    push.waits.wait_for_webhook(state, "token-1")
    push.sfn.fail_with = "ThrottlingException"
    with pytest.raises(Exception, match="ThrottlingException"):
        push.waits.on_event("response.completed", rid)
    assert push.store.items[rid].claimed is False
    # The wait's own timeout ended it meanwhile (it checked the run itself): nothing to do.
    push.sfn.fail_with = "TaskTimedOut"
    assert push.waits.on_event("response.completed", rid).outcome == "resumed"
    assert push.store.items[rid].claimed is True
    assert push.sfn.sent == []


def test_a_release_by_an_older_token_leaves_a_newer_claim_alone(push: Push) -> None:
    state = push.waiting(Reply.say("done"))
    rid = response_id(state)
    push.store.register_wait(rid, "token-old", state)
    push.store.record_event(rid, "response.completed")
    assert push.store.claim(rid) is not None
    push.store.register_wait(rid, "token-new", state)  # a later wait for the same response
    push.store.release(rid, "token-old")
    assert push.store.claim(rid) is None


def test_a_state_without_a_remote_response_cannot_wait(push: Push) -> None:
    state = RunState(run_id="run_1", thread_id="thr_1", user_id="user-1")
    with pytest.raises(ValueError, match="no remote response"):
        push.waits.wait_for_webhook(state, "token-1")


# -- who counts a response's tokens: its run, or its webhook ------------------------------------


def finish(push: Push, state: RunState) -> None:
    push.world.steps.finish_run(state)


def test_a_held_response_is_counted_by_its_run_and_its_webhook_reads_nothing(push: Push) -> None:
    state = push.waiting(Reply.call(("lookup", '{"key": "a"}'), tokens=5))
    first = response_id(state)
    push.waits.wait_for_webhook(state, "token-1")
    push.world.backend.script.append(Reply.say("done", tokens=7))
    handled = push.waits.on_event("response.completed", first)
    assert (handled.outcome, handled.counted) == ("resumed", False)
    state = push.world.steps.process_tool_calls(push.sent_states()[-1])
    push.waits.wait_for_webhook(state, "token-2")
    handled = push.waits.on_event("response.completed", response_id(state))
    assert (handled.outcome, handled.counted) == ("resumed", False)
    resumed = push.sent_states()[-1]
    for _ in range(2):  # redelivered: still nothing to read or count
        assert push.waits.on_event("response.completed", first).counted is False
    assert "settled_usage" not in push.world.backend.calls
    assert push.world.tokens_today() == 0, "left to the run"
    finish(push, resumed)
    assert push.world.tokens_today() == 12
    finish(push, resumed)  # a retried FinishRun
    assert push.world.tokens_today() == 12
    assert push.world.usage.today("user-1").runs == 1


def test_a_response_going_when_its_run_ends_is_counted_by_its_later_webhook(push: Push) -> None:
    state = push.waiting(Reply.forever(tokens=9))
    push.world.backend.fail_next("cancel_run", TransientBackendError("cancel: 503"))
    finish(push, state.model_copy(update={"error": CaughtError(Error="States.Timeout")}))
    assert push.world.tokens_today() == 0, "not settled when the run ended"
    push.world.backend.remotes[response_id(state)].status = "cancelled"
    assert push.waits.on_event("response.cancelled", response_id(state)).counted is True
    assert push.world.tokens_today() == 9


def test_a_webhook_that_came_before_its_run_let_go_leaves_the_count_to_the_run(
    push: Push,
) -> None:
    state = push.waiting(Reply.forever(tokens=9))
    push.world.backend.remotes[response_id(state)].status = "cancelled"
    # The webhook comes while the run still holds the response: it leaves it to the run ...
    assert push.waits.on_event("response.cancelled", response_id(state)).counted is False
    # ... which ends without having read it settled (its cancel and its look both failed).
    push.world.backend.fail_next("cancel_run", TransientBackendError("cancel: 503"))
    push.world.backend.fail_next("get_run", TransientBackendError("retrieve: 503"))
    finish(push, state.model_copy(update={"error": CaughtError(Error="States.Timeout")}))
    assert push.world.tokens_today() == 9


def test_a_response_of_a_retried_step_is_counted_once_by_the_run(push: Push) -> None:
    """A StartRun that recorded and held its response, then died before returning, is retried
    and makes another: the run's record lists both, and the run counts both."""
    push.world.backend.script.extend([Reply.say("lost", tokens=4), Reply.say("done", tokens=6)])
    stray = push.world.start()
    state = push.world.start()  # the retry
    assert response_id(stray) != response_id(state)
    assert push.world.record().remote_object_ids == [response_id(stray), response_id(state)]
    for rid in (response_id(stray), response_id(state)):
        assert push.waits.on_event("response.completed", rid).counted is False  # held
    finish(push, push.world.steps.check_run(state))
    assert push.world.tokens_today() == 10
