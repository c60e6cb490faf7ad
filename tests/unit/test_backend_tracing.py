"""Both adapters implement the whole port, and every port call is traced."""

from __future__ import annotations

import pytest
from openai import OpenAI

from threadline.backends import _port_methods, make_backend


@pytest.mark.parametrize("name", ["responses", "assistants"])
def test_every_port_method_is_implemented_and_traced(name: str) -> None:
    backend = make_backend(name, OpenAI(api_key="unused", base_url="http://127.0.0.1:9"), "m")
    assert backend.name == name
    methods = _port_methods()
    assert {"start_run", "get_run", "submit_tool_outputs", "cancel_run"} <= set(methods)
    for method in methods:
        bound = getattr(backend, method)
        assert hasattr(bound, "__wrapped__"), f"{name}.{method} is not traced"
