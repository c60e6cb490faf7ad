from __future__ import annotations

import inspect
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from moto.awslambda.models import LambdaFunction

from local.aws import FunctionInvocationError, LocalStack, install


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


def test_unserialisable_result_is_a_marshal_error(stack: LocalStack) -> None:
    with pytest.raises(FunctionInvocationError) as error:
        stack.invoke("FinishFunction", {"run_id": "r4", "return_decimal": True})

    assert error.value.payload["errorType"] == "Runtime.MarshalError"
    assert "Decimal is not JSON serializable" in error.value.payload["errorMessage"]


def test_a_module_is_loaded_once_under_concurrent_first_invocations(stack: LocalStack) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: stack.invoke("PrepareFunction", {"n": n}), range(16)))

    assert {result["n"] for result in results} == set(range(16))
    assert len({result["module_instance"] for result in results}) == 1


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
