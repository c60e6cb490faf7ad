"""Uploads from the presigned POST to a run that sees them, and generated files to S3, on
moto and the local OpenAI server, for both backends."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from local.openai_server import Step
from tests.integration.file_world import BUCKET, FailingBackend, World, make_world, png_bytes
from threadline.errors import (
    BackendRequestError,
    InvalidRequestError,
    NotFoundError,
    TransientBackendError,
)
from threadline.files import FileStatus, run_context
from threadline.generated_files import download_urls, store_generated_files
from threadline.ids import new_id
from threadline.threads import Thread
from threadline.uploads import UploadPolicy

CSV = b"region,revenue\nnorth,10\nsouth,20\n"


@pytest.fixture(params=["responses", "assistants"])
def world(request: pytest.FixtureRequest, table: Any) -> World:
    return make_world(request.param, table)


def attachments(world: World, remote_id: str) -> list[dict[str, Any]]:
    """The Assistants thread's message attachments."""
    return [a for m in world.server.state.threads[remote_id].messages for a in m["attachments"]]


# -- presigned uploads ---------------------------------------------------------------------


def test_presigned_post_pins_the_key_the_type_and_the_size(world: World) -> None:
    thread = world.new_thread("alice")
    ticket = world.uploads.create_upload("alice", thread.thread_id, "q3 sales.csv", "text/csv", 120)

    assert ticket.key == f"uploads/alice/{thread.thread_id}/{ticket.upload_id}/q3 sales.csv"
    assert ticket.expires_in == 300
    assert ticket.fields["key"] == ticket.key
    assert ticket.fields["Content-Type"] == "text/csv"
    assert ticket.fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    policy = json.loads(base64.b64decode(ticket.fields["policy"]))
    conditions = policy["conditions"]
    assert {"Content-Type": "text/csv"} in conditions
    assert ["content-length-range", 120, 120] in conditions
    assert {"key": ticket.key} in conditions
    assert {"bucket": BUCKET} in conditions
    expires = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(minutes=4) < expires - datetime.now(UTC) <= timedelta(minutes=5)
    (record,) = world.uploads.list_files("alice", thread.thread_id)
    assert (record.upload_id, record.status, record.bytes) == (
        ticket.upload_id,
        FileStatus.PENDING,
        120,
    )


def test_an_unacceptable_upload_request_gets_no_url_and_no_record(world: World) -> None:
    thread = world.new_thread("alice")
    with pytest.raises(InvalidRequestError) as refused:
        world.uploads.create_upload("alice", thread.thread_id, "data.csv", "image/png", 10)
    assert refused.value.code == "content_type_mismatch"
    with pytest.raises(InvalidRequestError) as refused:
        world.uploads.create_upload("alice", thread.thread_id, "big.pdf", "application/pdf", 10**9)
    assert refused.value.code == "file_too_large"
    assert world.uploads.list_files("alice", thread.thread_id) == []


def test_another_users_thread_is_not_found(world: World) -> None:
    thread = world.new_thread("alice")
    with pytest.raises(NotFoundError):
        world.uploads.create_upload("mallory", thread.thread_id, "a.csv", "text/csv", 10)
    with pytest.raises(NotFoundError):
        world.uploads.list_files("mallory", thread.thread_id)


# -- ingestion -----------------------------------------------------------------------------


def test_an_ingested_file_is_at_openai_and_attached_to_the_thread(world: World) -> None:
    thread = world.new_thread("alice")
    notes = b"# Notes\nRevenue grew in the north.\n"

    result = world.ingest_new(thread, "notes.md", notes, "text/markdown")

    assert result.status is FileStatus.INGESTED
    assert not result.duplicate
    record = world.files.get(thread.thread_id, result.upload_id or "")
    assert record.status is FileStatus.INGESTED
    assert record.sha256 == hashlib.sha256(notes).hexdigest()
    assert record.ingested_at is not None
    assert record.openai_file_id == result.openai_file_id
    stored = world.server.state.files[record.openai_file_id or ""]
    assert (stored.body["filename"], stored.body["purpose"], stored.data) == (
        "notes.md",
        "assistants",
        notes,
    )
    thread = world.threads.get("alice", thread.thread_id)
    if world.backend.name == "responses":
        assert thread.vector_store_id is not None
        assert list(world.server.state.vector_stores[thread.vector_store_id].files) == [
            record.openai_file_id
        ]
    else:
        assert thread.vector_store_id is None
        assert attachments(world, thread.remote_id) == [
            {
                "file_id": record.openai_file_id,
                "tools": [{"type": "code_interpreter"}, {"type": "file_search"}],
            }
        ]


def test_a_spreadsheet_goes_to_code_interpreter_only(world: World) -> None:
    """File search cannot index CSV: offering it would make OpenAI refuse the file."""
    thread = world.new_thread("alice")
    result = world.ingest_new(thread, "sales.csv", CSV, "text/csv")
    assert result.status is FileStatus.INGESTED
    assert world.server.state.vector_stores == {}
    if world.backend.name == "assistants":
        assert attachments(world, thread.remote_id)[0]["tools"] == [{"type": "code_interpreter"}]
    context = run_context(world.threads.get("alice", thread.thread_id), world.files)
    assert context.file_ids == [result.openai_file_id]


def test_a_run_sees_the_uploaded_files(world: World) -> None:
    thread = world.new_thread("alice")
    world.ingest_new(thread, "sales.csv", CSV, "text/csv")
    world.ingest_new(thread, "notes.md", b"# Notes\n", "text/markdown")
    world.uploads.create_upload("alice", thread.thread_id, "later.txt", "text/plain", 5)

    view = world.finished_run(thread, "Which files did I give you?")

    assert view.output_text == "The attached files are: sales.csv, notes.md."  # not later.txt
    if world.backend.name == "responses":
        # Code interpreter gets the files only through RunContext.file_ids; file search the
        # searchable ones through the vector store.
        without = world.finished_run(thread, "Which files now?", with_files=False)
        assert without.output_text == "The attached files are: notes.md."


def test_forged_keys_are_deleted_and_leave_no_record(world: World) -> None:
    thread = world.new_thread("alice")
    ticket = world.uploads.create_upload("alice", thread.thread_id, "sales.csv", "text/csv", 9)
    forged_keys = [
        # mallory writes into alice's thread under a made-up upload id
        f"uploads/mallory/{thread.thread_id}/upl_forged/evil.csv",
        # ... or reuses alice's real upload id under her own user
        ticket.key.replace("uploads/alice/", "uploads/mallory/"),
        "uploads/readme.csv",
    ]
    for key in forged_keys:
        result = world.ingestor().ingest(world.put(key, b"a,b\n1,2\n", "text/csv"))

        assert result.status is FileStatus.REJECTED
        assert result.upload_id is None
        assert (result.reason or "").split(":")[0] in ("unknown_upload", "unexpected_key")
        assert world.versions(key) == []
    (record,) = world.files.list(thread.thread_id)
    assert record.status is FileStatus.PENDING  # alice's own upload is untouched
    assert world.openai_files() == {}


@pytest.mark.parametrize(
    ("filename", "content_type", "content", "found"),
    [
        ("sales.csv", "text/csv", png_bytes(), "image/png"),
        ("chart.png", "image/png", b"not a picture at all", "unrecognised content"),
        ("report.pdf", "application/pdf", CSV, "unrecognised content"),
        ("data.json", "application/json", b'{"unterminated": ', "not valid json"),
        ("notes.txt", "text/plain", "café".encode("latin-1"), "not UTF-8"),
        ("rows.csv", "text/csv", b"a,b\n1,\x002\n", "NUL"),
        ("quoted.csv", "text/csv", b'a,"b\n1,2\n', "not valid csv"),
    ],
    ids=["png-as-csv", "text-as-png", "csv-as-pdf", "bad-json", "latin-1", "nul", "bad-csv"],
)
def test_content_that_is_not_what_its_name_says_is_rejected(
    world: World, filename: str, content_type: str, content: bytes, found: str
) -> None:
    thread = world.new_thread("alice")
    ticket, uploaded = world.upload(thread, filename, content, content_type)

    result = world.ingestor().ingest(uploaded)

    assert result.status is FileStatus.REJECTED
    assert found in (result.reason or "")
    record = world.files.get(thread.thread_id, ticket.upload_id)
    assert record.status is FileStatus.REJECTED
    assert (record.reason or "").startswith("content_mismatch:")
    assert world.versions(ticket.key) == []
    assert world.openai_files() == {}


def test_sizes_beyond_the_declared_one_or_the_limit_are_rejected(world: World) -> None:
    thread = world.new_thread("alice")
    ticket, uploaded = world.upload(thread, "small.csv", CSV, "text/csv", declared_size=10)
    result = world.ingestor().ingest(uploaded)
    assert (result.reason or "").startswith("size_mismatch:")
    assert world.versions(ticket.key) == []

    ticket, uploaded = world.upload(thread, "large.csv", CSV, "text/csv")
    world.policy = UploadPolicy(max_bytes=16)
    result = world.ingestor().ingest(uploaded)
    assert (result.reason or "").startswith("file_too_large:")
    assert world.files.get(thread.thread_id, ticket.upload_id).status is FileStatus.REJECTED
    assert world.versions(ticket.key) == []
    assert world.openai_files() == {}


def test_a_duplicate_event_ingests_once(world: World) -> None:
    thread = world.new_thread("alice")
    _ticket, uploaded = world.upload(thread, "notes.txt", b"hello\n")
    first = world.ingestor().ingest(uploaded)

    again = world.ingestor().ingest(uploaded)

    assert again.duplicate
    assert (again.status, again.openai_file_id) == (FileStatus.INGESTED, first.openai_file_id)
    assert list(world.openai_files()) == [first.openai_file_id]
    if world.backend.name == "assistants":
        assert len(attachments(world, thread.remote_id)) == 1
    else:
        (store,) = world.server.state.vector_stores.values()
        assert list(store.files) == [first.openai_file_id]


def test_a_second_upload_to_a_used_url_is_discarded(world: World) -> None:
    thread = world.new_thread("alice")
    ticket, uploaded = world.upload(thread, "notes.txt", b"hello\n")
    first = world.ingestor().ingest(uploaded)

    replaced = world.put(ticket.key, b"swapped", "text/plain")
    again = world.ingestor().ingest(replaced)

    assert again.duplicate
    assert [v["VersionId"] for v in world.versions(ticket.key)] == [uploaded.version_id]
    record = world.files.get(thread.thread_id, ticket.upload_id)
    assert record.sha256 == hashlib.sha256(b"hello\n").hexdigest()
    assert list(world.openai_files()) == [first.openai_file_id]


def test_a_refused_attach_deletes_the_uploaded_file(world: World) -> None:
    thread = world.new_thread("alice")
    ticket, uploaded = world.upload(thread, "notes.txt", b"hello\n")
    failing = FailingBackend(world.backend, "attach_file", BackendRequestError("attach: 400"))

    result = world.ingestor(failing).ingest(uploaded)

    assert failing.calls == 1
    assert result.status is FileStatus.FAILED
    assert "BackendRequestError" in (result.reason or "")
    assert world.files.get(thread.thread_id, ticket.upload_id).status is FileStatus.FAILED
    assert world.openai_files() == {}
    assert world.versions(ticket.key) == []


def test_a_transient_failure_leaves_nothing_and_the_retry_ingests(world: World) -> None:
    thread = world.new_thread("alice")
    ticket, uploaded = world.upload(thread, "notes.txt", b"hello\n")
    failing = FailingBackend(world.backend, "attach_file", TransientBackendError("attach: 503"))

    with pytest.raises(TransientBackendError):
        world.ingestor(failing).ingest(uploaded)

    assert world.openai_files() == {}
    assert world.files.get(thread.thread_id, ticket.upload_id).status is FileStatus.PENDING
    assert len(world.versions(ticket.key)) == 1
    retried = world.ingestor().ingest(uploaded)
    assert retried.status is FileStatus.INGESTED
    assert list(world.openai_files()) == [retried.openai_file_id]


def test_a_failing_upload_to_openai_records_failed(world: World) -> None:
    thread = world.new_thread("alice")
    ticket, uploaded = world.upload(thread, "notes.txt", b"hello\n")
    failing = FailingBackend(world.backend, "upload_file", BackendRequestError("upload: 400"))

    result = world.ingestor(failing).ingest(uploaded)

    assert result.status is FileStatus.FAILED
    assert world.openai_files() == {}
    assert world.versions(ticket.key) == []


def test_uploads_to_a_thread_being_deleted_are_rejected(world: World) -> None:
    thread = world.new_thread("alice")
    _ticket, uploaded = world.upload(thread, "notes.txt", b"hello\n")
    world.clock.advance(timedelta(days=8))
    assert world.threads.claim_for_purge(thread, idle_for=timedelta(days=7))

    result = world.ingestor().ingest(uploaded)

    assert (result.reason or "").startswith("thread_not_found:")
    assert world.openai_files() == {}
    with pytest.raises(NotFoundError):
        world.uploads.create_upload("alice", thread.thread_id, "more.txt", "text/plain", 5)


class RivalFirst:
    """The real backend, but a rival ingest attaches its file (and records the new store on
    the thread) just before ours: both saw a thread without a vector store."""

    def __init__(self, world: World, rival_file: str) -> None:
        self._world = world
        self._rival_file = rival_file
        self._rival_done = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._world.backend, name)

    def attach_file(self, thread: Thread, file_id: str, filename: str) -> str | None:
        if not self._rival_done:
            self._rival_done = True
            store = self._world.backend.attach_file(thread, self._rival_file, "rival.txt")
            self._world.threads.set_vector_store(thread.user_id, thread.thread_id, store or "")
        return self._world.backend.attach_file(thread, file_id, filename)


def test_concurrent_first_uploads_share_one_vector_store(table: Any) -> None:
    world = make_world("responses", table)
    thread = world.new_thread("alice")
    rival_file = world.backend.upload_file("rival.txt", b"rival")

    ingestor = world.ingestor(RivalFirst(world, rival_file))  # type: ignore[arg-type]
    result = ingestor.ingest(world.upload(thread, "mine.txt", b"mine")[1])

    assert result.status is FileStatus.INGESTED
    winner = world.threads.get("alice", thread.thread_id).vector_store_id
    assert list(world.server.state.vector_stores) == [winner]  # ours was deleted
    assert set(world.server.state.vector_stores[winner or ""].files) == {
        rival_file,
        result.openai_file_id,
    }


def test_a_vector_store_made_for_a_failed_attach_is_deleted(table: Any) -> None:
    world = make_world("responses", table)
    thread = world.new_thread("alice")

    with pytest.raises(NotFoundError):
        world.backend.attach_file(thread, "file-that-is-not-there", "notes.txt")

    assert world.server.state.vector_stores == {}


# -- generated files -----------------------------------------------------------------------


def test_generated_files_are_copied_to_s3_and_downloadable(world: World) -> None:
    thread = world.new_thread("alice")
    chart = png_bytes(4, 3)
    world.server.script.push(Step.image("Here is the chart.", chart), key=thread.remote_id)
    view = world.finished_run(thread, "Plot revenue")
    run_id = new_id("run")

    def store() -> list[Any]:
        return store_generated_files(
            user_id="alice",
            thread_id=thread.thread_id,
            run_id=run_id,
            files=view.generated_files,
            backend=world.backend,
            s3_client=world.s3,
            bucket=BUCKET,
        )

    (stored,) = store()

    (generated,) = view.generated_files
    expected_name = "chart.png" if world.backend.name == "responses" else f"{generated.file_id}.png"
    assert stored.filename == expected_name
    assert stored.s3_key == f"outputs/alice/{thread.thread_id}/{run_id}/{expected_name}"
    assert stored.bytes == len(chart)
    copied = world.s3.get_object(Bucket=BUCKET, Key=stored.s3_key)
    assert copied["Body"].read() == chart
    assert copied["ContentType"] == "image/png"
    if world.backend.name == "assistants":  # S3 holds it now; OpenAI would keep it forever
        assert generated.file_id not in world.openai_files()

    downloads_before = sum(n for e, n in world.server.stats.endpoints.items() if "content" in e)
    assert store() == [stored]  # a retried FinishRun copies nothing again
    downloads_after = sum(n for e, n in world.server.stats.endpoints.items() if "content" in e)
    assert downloads_after == downloads_before

    (link,) = download_urls(world.s3, BUCKET, [stored])
    url = urlparse(link.url)
    query = parse_qs(url.query)
    assert unquote(url.path).endswith(stored.s3_key)
    assert query["X-Amz-Expires"] == ["300"]
    assert query["response-content-disposition"] == [f'attachment; filename="{expected_name}"']
    assert (link.filename, link.bytes, link.expires_in) == (expected_name, len(chart), 300)


def test_generated_files_with_the_same_name_do_not_overwrite_each_other(world: World) -> None:
    from threadline.backends.base import GeneratedFile

    class Contents:
        def download_generated_file(self, file: GeneratedFile) -> bytes:
            return file.file_id.encode()

        def delete_file(self, file_id: str) -> None:
            pass

    files = [
        GeneratedFile(file_id="cfile_a", filename="../../out.csv", container_id="cntr_1"),
        GeneratedFile(file_id="cfile_b", filename="out.csv", container_id="cntr_1"),
    ]
    stored = store_generated_files(
        user_id="alice",
        thread_id="thr_1",
        run_id="run_1",
        files=files,
        backend=Contents(),  # type: ignore[arg-type]
        s3_client=world.s3,
        bucket=BUCKET,
    )
    assert [s.filename for s in stored] == ["out.csv", "cfile_b-out.csv"]
    assert [world.s3.get_object(Bucket=BUCKET, Key=s.s3_key)["Body"].read() for s in stored] == [
        b"cfile_a",
        b"cfile_b",
    ]
