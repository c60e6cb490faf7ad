"""Files, vector stores and containers, driven through the real SDK."""

from __future__ import annotations

import openai
import pytest
from openai.types import FileObject, VectorStore
from openai.types.containers import FileCreateResponse
from openai.types.vector_stores import VectorStoreFile

from local.openai_server import OpenAIServer, sdk_client
from local.openai_server.resources_api import UNINDEXABLE_MARKER
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
    assert (store.status, store.file_counts.in_progress) == ("in_progress", 1)

    attached = strict(
        VectorStoreFile, client.vector_stores.files.create(store.id, file_id=second.id)
    )
    assert (attached.status, attached.last_error) == ("in_progress", None)
    assert attached.usage_bytes == len(b"beta!!")
    listed = client.vector_stores.files.list(store.id, order="asc")
    assert [(f.id, f.status) for f in listed] == [
        (first.id, "completed"),  # latency 0: indexed by the time anyone looks
        (second.id, "completed"),
    ]
    counted = client.vector_stores.retrieve(store.id)
    assert (counted.status, counted.file_counts.completed, counted.file_counts.total) == (
        "completed",
        2,
        2,
    )

    client.vector_stores.files.delete(first.id, vector_store_id=store.id)
    assert client.vector_stores.retrieve(store.id).usage_bytes == len(b"beta!!")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.create(store.id, file_id="file-missing")
    assert client.vector_stores.delete(store.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)


def test_indexing_takes_the_latency_and_a_marked_file_fails(clock: FakeClock) -> None:
    server = OpenAIServer(latency_seconds=10, clock=clock)
    client = sdk_client(server)
    store = client.vector_stores.create(name="docs")
    readable = client.files.create(file=("a.txt", b"plain text"), purpose="assistants")
    marked = client.files.create(
        file=("b.txt", b"text with " + UNINDEXABLE_MARKER), purpose="assistants"
    )
    for file in (readable, marked):
        client.vector_stores.files.create(store.id, file_id=file.id)
    clock.advance(9)
    assert client.vector_stores.retrieve(store.id).file_counts.in_progress == 2

    clock.advance(1)

    done = client.vector_stores.files.retrieve(readable.id, vector_store_id=store.id)
    failed = client.vector_stores.files.retrieve(marked.id, vector_store_id=store.id)
    assert (done.status, done.last_error) == ("completed", None)
    assert failed.status == "failed"
    assert failed.last_error is not None
    assert failed.last_error.code == "invalid_file"
    counts = client.vector_stores.retrieve(store.id).file_counts
    assert (counts.completed, counts.failed, counts.in_progress) == (1, 1, 0)


def test_adding_a_file_again_answers_it_as_it_stands(clock: FakeClock) -> None:
    server = OpenAIServer(latency_seconds=10, clock=clock)
    client = sdk_client(server)
    store = client.vector_stores.create(name="docs")
    file = client.files.create(file=("a.txt", b"alpha"), purpose="assistants")
    client.vector_stores.files.create(store.id, file_id=file.id)
    clock.advance(10)

    again = client.vector_stores.files.create(store.id, file_id=file.id)

    assert again.status == "completed"  # not indexed anew
    assert client.vector_stores.retrieve(store.id).file_counts.total == 1


def test_a_deleted_file_leaves_every_vector_store(client: openai.OpenAI) -> None:
    file = client.files.create(file=("a.txt", b"alpha"), purpose="assistants")
    stores = [client.vector_stores.create(name=name, file_ids=[file.id]) for name in "xy"]

    client.files.delete(file.id)

    for store in stores:
        assert client.vector_stores.files.list(store.id).data == []
        assert client.vector_stores.retrieve(store.id).file_counts.total == 0


def test_the_model_finds_only_indexed_files(clock: FakeClock) -> None:
    server = OpenAIServer(latency_seconds=10, clock=clock)
    client = sdk_client(server)
    uploaded = client.files.create(file=("q3-report.pdf", b"%PDF"), purpose="assistants")
    store = client.vector_stores.create(name="docs", file_ids=[uploaded.id])
    search = [{"type": "file_search", "vector_store_ids": [store.id]}]
    server.latency_seconds = 0  # the model answers at once; indexing still takes 10 s

    before = client.responses.create(model="m", input="Which files do you have?", tools=search)
    clock.advance(10)
    after = client.responses.create(model="m", input="Which files do you have?", tools=search)

    assert "q3-report.pdf" not in before.output_text
    assert after.output_text == "The attached files are: q3-report.pdf."


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
