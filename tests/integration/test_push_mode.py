"""Push mode on the real ASL: runs sleep on a task token until OpenAI's signed webhook (from
the local OpenAI server, through the local API Gateway and the webhook function) wakes them."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from local.aws.apigw import http_api_event
from local.openai_server import Step
from local.stack_session import LocalThreadline, local_threadline
from tests.integration.conftest import RunDriver
from threadline import runtime
from threadline.errors import NotFoundError
from threadline.ids import new_id
from threadline.models import RunStatus
from threadline.runs.state import RunState
from threadline.runs.webhook_waits import WebhookWaits, WebhookWaitStore


@pytest.fixture(scope="module")
def product() -> Iterator[LocalThreadline]:
    with local_threadline(parameters={"RunWaitMode": "push", "WebhookWaitSeconds": "30"}) as s:
        yield s


def retrieves(driver: RunDriver, response_ids: set[str]) -> int:
    objects = driver.product.openai.stats.snapshot()["objects"]
    return sum(objects[response_id]["retrieves"] for response_id in response_ids)


def parked_response(driver: RunDriver, thread_id: str, execution_arn: str) -> str:
    """The response the execution waits for, once its task token is stored (bounded)."""
    run_id = execution_arn.rsplit(":", 1)[-1]
    for _ in range(6000):  # a bound for failing, not a wait: it returns once parked
        with contextlib.suppress(NotFoundError):
            record = runtime.current().run_store().get(thread_id, run_id)
            key = {"PK": f"RESPONSE#{record.remote_run_id}", "SK": "WAIT"}
            if "task_token" in driver.product.table.get_item(Key=key).get("Item", {}):
                return str(record.remote_run_id)
        time.sleep(0.01)
    raise TimeoutError(f"{execution_arn} never parked its token")


def test_completed_run_is_woken_by_the_webhook(driver: RunDriver) -> None:
    thread = driver.new_thread()
    server = driver.product.openai
    server.script.push(Step.say("pushed"), key=thread.remote_id)
    # The webhook is held until the token is parked: this is the path where it wakes the run.
    with server.webhooks_held() as held:
        execution_arn = driver.start(thread, "Hi")
        parked_response(driver, thread.thread_id, execution_arn)
        for _ in range(6000):
            if held:
                break
            time.sleep(0.01)
    server.webhook_sender(*held[0])
    description = driver.product.wait_for_execution(execution_arn)
    run = runtime.current().run_store().get(thread.thread_id, description["name"])
    assert description["status"] == "SUCCEEDED"
    assert run.output_text == "pushed"
    states = driver.product.entered_states(description["executionArn"])
    assert "WaitForWebhook" in states
    assert "WaitForModel" not in states
    assert "CheckRun" not in states, "no status polling: the webhook resumed the run"
    assert retrieves(driver, {run.remote_run_id}) == 1, "one read of the finished response"


def test_tool_rounds_in_push_mode(driver: RunDriver) -> None:
    thread = driver.new_thread()
    driver.product.openai.script.extend(
        [
            Step.calls(
                [
                    ("get_table_schema", {"table_name": "sales"}),
                    ("get_table_schema", {"table_name": "customers"}),
                ]
            ),
            Step.call("query_database", {"query": "SELECT COUNT(*) AS n FROM customers"}),
        ],
        key=thread.remote_id,
    )
    description, run = driver.run(thread, "How many customers?")
    assert description["status"] == "SUCCEEDED", description
    assert run.tool_rounds == 2
    states = driver.product.entered_states(description["executionArn"])
    assert states.count("WaitForWebhook") == 3
    assert "CheckRun" not in states


@pytest.mark.parametrize(
    ("step", "status"),
    [
        (Step.fail(code="server_error", message="boom"), RunStatus.FAILED),
        (Step.incomplete(reason="max_output_tokens"), RunStatus.INCOMPLETE),
    ],
    ids=["failed", "incomplete"],
)
def test_unsuccessful_runs_in_push_mode(driver: RunDriver, step: Step, status: RunStatus) -> None:
    thread = driver.new_thread()
    driver.product.openai.script.push(step, key=thread.remote_id)
    description, run = driver.run(thread, "Try")
    assert description["status"] == "FAILED"
    assert run.status is status
    assert (
        runtime.current().thread_store().get(driver.user_id, thread.thread_id).active_run_id is None
    )


def test_cancelled_run_in_push_mode(driver: RunDriver) -> None:
    thread = driver.new_thread()
    driver.product.openai.script.push(Step.hang(), key=thread.remote_id)
    execution_arn = driver.start(thread, "Think")
    run_id = execution_arn.rsplit(":", 1)[-1]
    for _ in range(6000):  # bounded: it returns once the condition holds
        with contextlib.suppress(NotFoundError):
            record = runtime.current().run_store().get(thread.thread_id, run_id)
            if record.remote_run_id:
                break
        time.sleep(0.01)
    runtime.current().backend_client().responses.cancel(record.remote_run_id)
    description = driver.product.wait_for_execution(execution_arn)
    assert description["status"] == "FAILED"
    assert runtime.current().run_store().get(thread.thread_id, run_id).status is RunStatus.CANCELLED


class RecordingStepFunctions:
    """Stands in for the Step Functions client: records the task tokens it is handed."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, RunState]] = []

    def send_task_success(self, *, taskToken: str, output: str) -> None:
        self.sent.append((taskToken, RunState.model_validate_json(output)))


def started_run(driver: RunDriver) -> RunState:
    """A run whose response is already finished at the local OpenAI server."""
    thread = driver.new_thread()
    driver.product.openai.script.push(Step.say("done"), key=thread.remote_id)
    request = {
        "run_id": new_id("run"),
        "thread_id": thread.thread_id,
        "user_id": driver.user_id,
        "message": "Hi",
    }
    return RunState.model_validate(driver.product.stack.invoke("StartRunFunction", request))


@pytest.mark.parametrize("webhook_first", [True, False], ids=["webhook-first", "token-first"])
def test_the_wait_is_finished_once_whichever_half_comes_first(
    driver: RunDriver, webhook_first: bool
) -> None:
    sfn = RecordingStepFunctions()
    waits = WebhookWaits(
        store=WebhookWaitStore(driver.product.table),
        steps=runtime.current().run_steps(),
        stepfunctions=sfn,
    )
    assert driver.product.openai is not None
    # The server would announce the response itself; the test plays that part, in its order.
    with driver.product.openai.webhooks_held() as held:
        state = started_run(driver)
        response_id = state.handle.run_remote_id
        if webhook_first:
            assert waits.on_event("response.completed", response_id).outcome == "recorded"
            assert waits.wait_for_webhook(state, "token-1") is True
        else:
            assert waits.wait_for_webhook(state, "token-1") is False
            assert waits.on_event("response.completed", response_id).outcome == "resumed"
        assert waits.on_event("response.completed", response_id).outcome == "recorded"  # redelivery
    assert len(held) == 1, "the server announced the response once, and only to the test"
    ((token, resumed),) = sfn.sent
    assert token == "token-1"
    assert resumed.status is RunStatus.COMPLETED
    assert resumed.next == "finish"
    assert runtime.current().run_store().get(state.thread_id, state.run_id).answer == "done"


class FailingOnceStepFunctions(RecordingStepFunctions):
    """Step Functions that fails the first hand-over, as a throttled or broken call would."""

    def send_task_success(self, *, taskToken: str, output: str) -> None:
        if not self.failed_once:
            self.failed_once = True
            raise ConnectionError("send_task_success: connection reset")
        super().send_task_success(taskToken=taskToken, output=output)

    failed_once = False


def test_a_resume_that_fails_gives_the_wait_back_for_the_retry(driver: RunDriver) -> None:
    sfn = FailingOnceStepFunctions()
    waits = WebhookWaits(
        store=WebhookWaitStore(driver.product.table),
        steps=runtime.current().run_steps(),
        stepfunctions=sfn,
    )
    assert driver.product.openai is not None
    with driver.product.openai.webhooks_held():
        state = started_run(driver)
        response_id = state.handle.run_remote_id
        assert waits.wait_for_webhook(state, "token-1") is False
        with pytest.raises(ConnectionError):
            waits.on_event("response.completed", response_id)
        outcome = waits.on_event("response.completed", response_id).outcome  # the retry
    assert outcome == "resumed"
    ((token, _resumed),) = sfn.sent
    assert token == "token-1"
    assert runtime.current().run_store().get(state.thread_id, state.run_id).answer == "done"


def webhook_answer(product: LocalThreadline, body: bytes, headers: dict[str, str]) -> int:
    event = http_api_event("POST", "/webhooks/openai", body=body, headers=headers)
    return product.stack.invoke("OpenAIWebhookFunction", event)["statusCode"]


def test_forged_stale_and_replayed_webhooks_touch_nothing(driver: RunDriver) -> None:
    openai = driver.product.openai
    payload = {
        "id": "evt_1",
        "object": "event",
        "created_at": int(time.time()),
        "type": "response.completed",
        "data": {"id": "resp_unknown"},
    }
    body, headers = openai.sign_webhook(payload)
    wait_key = {"PK": "RESPONSE#resp_unknown", "SK": "WAIT"}
    assert webhook_answer(driver.product, body, headers) == 200, "unknown ids are acknowledged"
    recorded = driver.product.table.get_item(Key=wait_key)["Item"]
    assert recorded["event_type"] == "response.completed", "the event was recorded"
    assert webhook_answer(driver.product, body, headers) == 200, "a replay is answered"
    replayed = driver.product.table.get_item(Key=wait_key)["Item"]
    assert replayed == recorded | {"expires_at": replayed["expires_at"]}, "and changes nothing"
    tampered = body.replace(b"resp_unknown", b"resp_other")
    assert webhook_answer(driver.product, tampered, headers) == 400
    stale_body, stale_headers = openai.sign_webhook(payload, timestamp=int(time.time()) - 3600)
    assert webhook_answer(driver.product, stale_body, stale_headers) == 400
    wrong_secret = dict(
        headers, **{"webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
    )
    assert webhook_answer(driver.product, body, wrong_secret) == 400
    item = driver.product.table.get_item(Key={"PK": "RESPONSE#resp_other", "SK": "WAIT"})
    assert "Item" not in item, "a rejected webhook must not be recorded"
