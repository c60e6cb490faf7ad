"""Both adapters implement the whole port: every call traced, deletes idempotent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from openai import OpenAI

from threadline.backends import GeneratedFile, _port_methods, make_backend


@pytest.mark.parametrize("name", ["responses", "assistants"])
def test_every_port_method_is_implemented_and_traced(name: str) -> None:
    backend = make_backend(name, OpenAI(api_key="unused", base_url="http://127.0.0.1:9"), "m")
    assert backend.name == name
    methods = _port_methods()
    assert {"start_run", "get_run", "submit_tool_outputs", "cancel_run"} <= set(methods)
    for method in methods:
        bound = getattr(backend, method)
        assert hasattr(bound, "__wrapped__"), f"{name}.{method} is not traced"


@pytest.mark.parametrize("name", ["responses", "assistants"])
def test_deleting_what_is_already_gone_is_done(name: str) -> None:
    """Cleanup retries deletes: a remote object that is already gone counts as deleted."""
    from local.openai_server import OpenAIServer, sdk_client
    from threadline.errors import NotFoundError

    backend = make_backend(name, sdk_client(OpenAIServer()), "m")
    thread_id = backend.create_thread("thr_1")
    file_id = backend.upload_file(
        "notes.txt", b"hello", upload_id="upl_1", not_before=datetime.now(UTC)
    )
    for _ in range(2):
        backend.delete_thread(thread_id)
        backend.delete_file(file_id)
        backend.delete_vector_store("vs_never_made")
        backend.delete_run_object("resp_never_made")
    with pytest.raises(NotFoundError):  # outside deletes, a missing object is still an error
        backend.download_generated_file(GeneratedFile(file_id=file_id))
