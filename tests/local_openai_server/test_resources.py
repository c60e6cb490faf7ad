"""Files, vector stores and containers, driven through the real SDK."""

from __future__ import annotations

import openai
import pytest
from openai.types import FileObject, VectorStore
from openai.types.containers import FileCreateResponse
from openai.types.vector_stores import VectorStoreFile

from local.openai_server import OpenAIServer, sdk_client
from tests.local_openai_server.conftest import FakeClock, function_tool, strict

CSV = b"region,revenue\nNorth,10\n"


def test_file_round_trip() -> None:
    clock = FakeClock()
    client = sdk_client(OpenAIServer(clock=clock))
    created = strict(FileObject, client.files.create(file=("sales.csv", CSV), purpose="user_data"))
    assert (created.filename, created.bytes, created.purpose) == (
        "sales.csv",
        len(CSV),
        "user_data",
    )
    assert created.created_at == int(clock.now)

    assert client.files.retrieve(created.id).bytes == len(CSV)
    assert client.files.content(created.id).read() == CSV
    assert [f.id for f in client.files.list()] == [created.id]
    assert client.files.list(purpose="assistants").data == []

    assert client.files.delete(created.id).deleted is True
    for gone in (client.files.retrieve, client.files.content):
        with pytest.raises(openai.NotFoundError):
            gone(created.id)


def test_upload_needs_a_known_purpose(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("a.txt", b"x"), purpose="nonsense")  # type: ignore[arg-type]
    assert caught.value.param == "purpose"


def test_vector_store_attach_list_detach(client: openai.OpenAI) -> None:
    first = client.files.create(file=("a.txt", b"alpha"), purpose="assistants")
    second = client.files.create(file=("b.txt", b"beta!!"), purpose="assistants")
    store = strict(VectorStore, client.vector_stores.create(name="docs", file_ids=[first.id]))
    assert store.status == "completed"
    assert store.file_counts.completed == 1

    attached = strict(
        VectorStoreFile, client.vector_stores.files.create(store.id, file_id=second.id)
    )
    assert attached.status == "completed"
    assert attached.usage_bytes == len(b"beta!!")
    listed = client.vector_stores.files.list(store.id, order="asc")
    assert [f.id for f in listed] == [first.id, second.id]
    assert client.vector_stores.retrieve(store.id).file_counts.total == 2

    client.vector_stores.files.delete(first.id, vector_store_id=store.id)
    assert client.vector_stores.retrieve(store.id).usage_bytes == len(b"beta!!")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.create(store.id, file_id="file-missing")
    assert client.vector_stores.delete(store.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)


def test_vector_store_files_reach_the_model(client: openai.OpenAI) -> None:
    uploaded = client.files.create(file=("q3-report.pdf", b"%PDF"), purpose="assistants")
    store = client.vector_stores.create(name="docs", file_ids=[uploaded.id])
    response = client.responses.create(
        model="m",
        input="Which file did I give you?",
        tools=[{"type": "file_search", "vector_store_ids": [store.id]}, function_tool("f")],
    )
    assert "q3-report.pdf" in response.output_text


def test_container_files_upload_copy_and_content(client: openai.OpenAI) -> None:
    container = client.containers.create(name="analysis")
    uploaded = strict(
        FileCreateResponse, client.containers.files.create(container.id, file=("x.csv", CSV))
    )
    assert (uploaded.bytes, uploaded.path) == (len(CSV), "/mnt/data/x.csv")

    source = client.files.create(file=("y.txt", b"copied"), purpose="user_data")
    copied = client.containers.files.create(container.id, file_id=source.id)
    assert copied.bytes == len(b"copied")
    assert [f.id for f in client.containers.files.list(container.id, order="asc")] == [
        uploaded.id,
        copied.id,
    ]
    content = client.containers.files.content.retrieve(copied.id, container_id=container.id)
    assert content.read() == b"copied"

    client.containers.files.delete(uploaded.id, container_id=container.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.files.retrieve(uploaded.id, container_id=container.id)
    client.containers.delete(container.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.retrieve(container.id)
