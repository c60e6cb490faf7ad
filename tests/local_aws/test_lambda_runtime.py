from __future__ import annotations

import dataclasses
import inspect
import io
import json
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
from moto.awslambda.models import LambdaFunction

from local.aws import FunctionInvocationError, LocalStack, install
from local.aws.apigw import http_api_event


class Rendezvous:
    """Where a handler under test waits: it says it is inside, then waits to be released."""

    def __init__(self) -> None:
        self.key = uuid.uuid4().hex
        self.release = threading.Event()
        self._inside = threading.Semaphore(0)

    def arrive(self) -> None:
        self._inside.release()
        if not self.release.wait(timeout=10):
            raise TimeoutError("the test did not release the handler")

    def all_inside(self, count: int) -> bool:
        """Whether `count` handlers are inside at once (waiting at most 10 s for each)."""
        return all(self._inside.acquire(timeout=10) for _ in range(count))


RENDEZVOUS: dict[str, Rendezvous] = {}  # by key; the handlers find theirs from the event
LOG_LINES = io.StringIO()  # what the router handler's Powertools Logger writes

# Records which module instance (environment) ran it; waits at the rendezvous.
BLOCKING_HANDLER = f"""
import uuid

from {__name__} import RENDEZVOUS

MODULE_INSTANCE = uuid.uuid4().hex


def handler(event, context):
    RENDEZVOUS[event["rendezvous"]].arrive()
    return {{"module_instance": MODULE_INSTANCE}}
"""

# A Powertools resolver and logger, as the API function has: the caller is read from the
# event before and after waiting at the rendezvous.
ROUTER_HANDLER = f"""
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from {__name__} import LOG_LINES, RENDEZVOUS

app = APIGatewayHttpResolver()
logger = Logger(service="environment-test", stream=LOG_LINES)


@app.get("/whoami")
def whoami():
    logger.append_keys(caller=app.current_event.get_query_string_value("caller"))
    RENDEZVOUS[app.current_event.get_query_string_value("rendezvous")].arrive()
    caller = app.current_event.get_query_string_value("caller")
    logger.info("answered", extra={{"answered_caller": caller}})
    return {{"caller": caller}}


def handler(event, context):
    return app.resolve(event, context)
"""


PAST_ITS_TIMEOUT = """
import time


def handler(event, context):
    time.sleep(event["seconds"])
    return {"slept": event["seconds"]}
"""


@pytest.fixture
def rendezvous() -> Iterator[Rendezvous]:
    meeting = Rendezvous()
    RENDEZVOUS[meeting.key] = meeting
    yield meeting
    meeting.release.set()
    del RENDEZVOUS[meeting.key]


@contextmanager
def running(stack: LocalStack, source: str, directory: Path, timeout: int = 10) -> Iterator[str]:
    """PrepareFunction with `source` as its app.py (and this Timeout); its function name."""
    (directory / "app.py").write_text(source)
    spec = dataclasses.replace(
        stack.functions["PrepareFunction"], code_dir=directory, timeout=timeout
    )
    with install({spec.name: spec}):
        yield spec.name


def test_canary_moto_still_has_the_invoke_seam_we_patch() -> None:
    # If this fails after a moto upgrade, lambda_runtime's patch no longer reaches handlers.
    seam = LambdaFunction.__dict__["_invoke_lambda"]
    signature = inspect.signature(seam)
    assert list(signature.parameters) == ["self", "event"]
    assert signature.return_annotation == "tuple[str, bool, str]"  # (payload, errored, logs)
    assert "self._invoke_lambda(event=" in inspect.getsource(LambdaFunction.invoke)


def test_install_is_undone_on_exit(stack: LocalStack) -> None:
    original = LambdaFunction.__dict__["_invoke_lambda"]
    with install(stack.registry):
        assert LambdaFunction.__dict__["_invoke_lambda"] is not original
    assert LambdaFunction.__dict__["_invoke_lambda"] is original


def test_handler_gets_event_environment_and_a_lambda_context(stack: LocalStack) -> None:
    result = stack.invoke("PrepareFunction", {"run_id": "r1"})

    assert result["run_id"] == "r1"
    assert result["greeting"] == "hello"
    assert result["prepared_by"] == stack.functions["PrepareFunction"].name
    remaining_ms = stack.invoke("FinishFunction", {"run_id": "r1"})["remaining_ms"]
    assert 19_000 < remaining_ms <= 20_000  # counts down from the function's Timeout (20 s)


def test_functions_with_same_named_modules_do_not_collide(stack: LocalStack) -> None:
    prepared = stack.invoke("PrepareFunction", {"run_id": "r2"})
    finished = stack.invoke(stack.functions["FinishFunction"].name, {"run_id": "r2"})

    assert (prepared["role"], finished["role"]) == ("prepare", "finish")
    assert prepared["module_name"] != finished["module_name"]
    assert prepared["module_name"] in sys.modules
    assert "app" not in sys.modules


def test_exception_becomes_the_runtime_error_payload(stack: LocalStack) -> None:
    with pytest.raises(FunctionInvocationError) as error:
        stack.invoke("FinishFunction", {"run_id": "r3", "transient_failures": 1})

    payload = error.value.payload
    assert payload["errorType"] == "TransientBackendError"
    assert payload["errorMessage"] == "attempt 1 of run r3 failed"
    assert any("app.py" in frame and "in handler" in frame for frame in payload["stackTrace"])


def test_a_handler_past_its_timeout_is_reported_timed_out(
    stack: LocalStack, tmp_path: Path
) -> None:
    """Lambda stops a function at its Timeout; an in-process handler runs on, and its answer
    is dropped for python3.13's Sandbox.Timedout."""
    with running(stack, PAST_ITS_TIMEOUT, tmp_path, timeout=1) as function:
        with pytest.raises(FunctionInvocationError) as error:
            stack.invoke(function, {"seconds": 1.1})
        assert stack.invoke(function, {"seconds": 0})["slept"] == 0

    payload = error.value.payload
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")


def test_a_result_keeps_its_characters_as_python3_13_marshals_it(stack: LocalStack) -> None:
    """Escaped, a character outside ASCII would take up to twelve bytes of the 6 MB a
    response may have, where python3.13 sends it as its UTF-8 bytes."""
    client = boto3.client("lambda", region_name=stack.region)
    name = stack.functions["PrepareFunction"].name  # answers with its event
    answer = client.invoke(FunctionName=name, Payload=json.dumps({"run_id": "é😀"}))
    assert '"run_id": "é😀"'.encode() in answer["Payload"].read()


def test_unserialisable_result_is_a_marshal_error(stack: LocalStack) -> None:
    with pytest.raises(FunctionInvocationError) as error:
        stack.invoke("FinishFunction", {"run_id": "r4", "return_decimal": True})

    assert error.value.payload["errorType"] == "Runtime.MarshalError"
    assert "Decimal is not JSON serializable" in error.value.payload["errorMessage"]


def test_concurrent_invocations_run_in_separate_environments(
    stack: LocalStack, rendezvous: Rendezvous, tmp_path: Path
) -> None:
    with running(stack, BLOCKING_HANDLER, tmp_path) as function:
        with ThreadPoolExecutor(max_workers=2) as pool:
            invocations = [
                pool.submit(stack.invoke, function, {"rendezvous": rendezvous.key})
                for _ in range(2)
            ]
            assert rendezvous.all_inside(2), "one invocation waited for the other to end"
            rendezvous.release.set()
            environments = {invocation.result()["module_instance"] for invocation in invocations}
        assert len(environments) == 2  # two cold starts, each with its own module instance

        again = stack.invoke(function, {"rendezvous": rendezvous.key})
    assert again["module_instance"] in environments  # a warm start in an idle environment


def test_one_invocation_at_a_time_reuses_one_environment(stack: LocalStack) -> None:
    results = [stack.invoke("PrepareFunction", {"n": n}) for n in range(3)]

    assert len({result["module_instance"] for result in results}) == 1


def test_concurrent_environments_keep_their_own_router_event_and_log_keys(
    stack: LocalStack, rendezvous: Rendezvous, tmp_path: Path
) -> None:
    # Powertools keeps the resolver's current event on a class and a service's log keys on
    # one formatter: process-wide state that Lambda's environments never share.
    callers = [f"caller-{uuid.uuid4().hex}" for _ in range(2)]
    with (
        running(stack, ROUTER_HANDLER, tmp_path) as function,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        answers = [
            pool.submit(
                stack.invoke,
                function,
                http_api_event(
                    "GET", "/whoami", query=f"caller={caller}&rendezvous={rendezvous.key}"
                ),
            )
            for caller in callers
        ]
        assert rendezvous.all_inside(2)
        rendezvous.release.set()
        bodies = [json.loads(answer.result()["body"]) for answer in answers]

    assert [body["caller"] for body in bodies] == callers
    lines = [json.loads(line) for line in LOG_LINES.getvalue().splitlines()]
    ours = [line for line in lines if line.get("answered_caller") in callers]
    assert sorted(line["answered_caller"] for line in ours) == sorted(callers)
    assert all(line["caller"] == line["answered_caller"] for line in ours)


def test_handler_modules_are_unloaded_on_exit(stack: LocalStack) -> None:
    with install(stack.registry):
        first = stack.invoke("PrepareFunction", {})
    assert first["module_name"] not in sys.modules

    with install(stack.registry):
        second = stack.invoke("PrepareFunction", {})
    assert second["module_instance"] != first["module_instance"]  # a fresh cold start


def test_unregistered_function_fails_with_a_clear_error(stack: LocalStack) -> None:
    with install({}), pytest.raises(FunctionInvocationError, match="no in-process handler"):
        stack.invoke("PrepareFunction", {})


WORK_DONE: list[int] = []  # what the counting handler did, whichever environment did it
# Records its work where the test sees it, and which module instance (environment) did it.
COUNTING_HANDLER = f"""
import uuid
from {__name__} import WORK_DONE
MODULE_INSTANCE = uuid.uuid4().hex
def handler(event, context):
    WORK_DONE.append(event["n"])
    return {{"module_instance": MODULE_INSTANCE}}
"""


@pytest.mark.parametrize(
    ("when", "work_done"), [("before_work", [1, 3]), ("after_work", [1, 2, 3])]
)
def test_a_dying_environment_fails_the_invocation_and_the_next_starts_cold(
    stack: LocalStack, tmp_path: Path, when: str, work_done: list[int]
) -> None:
    WORK_DONE.clear()
    (tmp_path / "app.py").write_text(COUNTING_HANDLER)
    spec = dataclasses.replace(stack.functions["PrepareFunction"], code_dir=tmp_path)
    with install({spec.name: spec}) as deaths:
        first = stack.invoke(spec.name, {"n": 1})
        deaths.plan(spec.name, when)  # type: ignore[arg-type]
        with pytest.raises(FunctionInvocationError) as error:
            stack.invoke(spec.name, {"n": 2})
        after = stack.invoke(spec.name, {"n": 3})
    assert error.value.payload["errorType"] == "Lambda.Unknown"
    assert deaths.died == [(spec.name, when)]
    assert work_done == WORK_DONE
    assert after["module_instance"] != first["module_instance"], "a cold start"
