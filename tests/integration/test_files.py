"""Uploads from the presigned POST to a run that sees them, and generated files to S3, on
moto and the local OpenAI server, for both backends."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from local.openai_server import Fault, Step, sdk_client
from local.openai_server.resources_api import UNINDEXABLE_MARKER
from tests.integration.file_world import BUCKET, FailingBackend, World, make_world, png_bytes
from threadline.backends.base import FileIndex
from threadline.backends.openai_files import remote_filename, supports_file_search
from threadline.errors import (
    BackendRequestError,
    InvalidRequestError,
    NotFoundError,
    TransientBackendError,
)
from threadline.files.generated import download_urls, store_generated_files
from threadline.files.policy import UploadPolicy
from threadline.files.records import FileStatus, FileStore, run_context
from threadline.files.settling import UploadedObject
from threadline.files.sweep import PENDING_FOR
from threadline.ids import new_id
from threadline.threads.records import Thread

CSV = b"region,revenue\nnorth,10\nsouth,20\n"
CLIENT_TIMEOUT = 0.2  # seconds
# Where each backend attaches a file: a vector store of ours, or a message's attachments.
ATTACH_PATH = {"responses": "/v1/vector_stores/*/files", "assistants": "/v1/threads/*/messages"}


@pytest.fixture(params=["responses", "assistants"])
def world(request: pytest.FixtureRequest, table: Any) -> World:
    return make_world(request.param, table)


@pytest.fixture(params=["responses", "assistants"])
def world_over_http(request: pytest.FixtureRequest, table: Any) -> Iterator[World]:
    """As `world`, but over HTTP with a short client timeout: a slow reply times out."""
    world = make_world(request.param, table, client_timeout=CLIENT_TIMEOUT)
    yield world
    world.server.faults.clear()  # sends the replies still held
    world.server.stop()


def attachments(world: World, remote_id: str) -> list[dict[str, Any]]:
    """The Assistants thread's message attachments."""
    return [a for m in world.server.state.threads[remote_id].messages for a in m["attachments"]]


def attached_as(world: World, filename: str) -> FileStatus:
    """What ingesting a file settles it as: on Responses a file for file search is indexing
    (in the thread's vector store) until the next look; Assistants keeps no store of ours."""
    searchable = world.backend.name == "responses" and supports_file_search(filename)
    return FileStatus.INDEXING if searchable else FileStatus.INGESTED


def remote_name(world: World, thread: Thread, upload_id: str | None) -> str:
    record = world.files.get(thread.thread_id, upload_id or "")
    return remote_filename(record.filename, record.upload_id)


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

    assert result.status is attached_as(world, "notes.md")
    assert not result.duplicate
    record = world.files.get(thread.thread_id, result.upload_id or "")
    assert record.status is result.status
    assert record.sha256 == hashlib.sha256(notes).hexdigest()
    assert record.openai_file_id == result.openai_file_id
    stored = world.server.state.files[record.openai_file_id or ""]
    assert (stored.body["filename"], stored.body["purpose"], stored.data) == (
        f"{record.upload_id}-notes.md",  # found again by it; the user's name still ends it
        "assistants",
        notes,
    )
    thread = world.threads.get("alice", thread.thread_id)
    if world.backend.name == "responses":
        assert thread.vector_store_id is not None
        assert record.vector_store_id == thread.vector_store_id
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
    (listed,) = world.uploads.list_files("alice", thread.thread_id)  # indexed by now
    assert listed.status is FileStatus.INGESTED
    assert listed.ingested_at == world.clock()


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
    sales_csv = world.ingest_new(thread, "sales.csv", CSV, "text/csv")
    notes_md = world.ingest_new(thread, "notes.md", b"# Notes\n", "text/markdown")
    world.uploads.create_upload("alice", thread.thread_id, "later.txt", "text/plain", 5)

    sales, notes = (remote_name(world, thread, r.upload_id) for r in (sales_csv, notes_md))

    view = world.finished_run(thread, "Which files did I give you?")

    assert view.output_text == f"The attached files are: {sales}, {notes}."  # not later.txt
    if world.backend.name == "responses":
        # Code interpreter gets the files only through RunContext.file_ids; file search the
        # searchable ones through the vector store.
        without = world.finished_run(thread, "Which files now?", with_files=False)
        assert without.output_text == f"The attached files are: {notes}."


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
    assert (again.status, again.openai_file_id) == (first.status, first.openai_file_id)
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


def test_a_transient_failure_keeps_the_file_for_the_retry_to_adopt(world: World) -> None:
    thread = world.new_thread("alice")
    ticket, uploaded = world.upload(thread, "notes.txt", b"hello\n")
    failing = FailingBackend(world.backend, "attach_file", TransientBackendError("attach: 503"))

    with pytest.raises(TransientBackendError):
        world.ingestor(failing).ingest(uploaded)

    (kept,) = world.openai_files()
    assert world.files.get(thread.thread_id, ticket.upload_id).status is FileStatus.PENDING
    assert len(world.versions(ticket.key)) == 1
    retried = world.ingestor().ingest(uploaded)
    assert retried.status is attached_as(world, "notes.txt")
    assert list(world.openai_files()) == [kept] == [retried.openai_file_id]


def test_a_failing_upload_to_openai_records_failed(world: World) -> None:
    thread = world.new_thread("alice")
    ticket, uploaded = world.upload(thread, "notes.txt", b"hello\n")
    failing = FailingBackend(world.backend, "upload_file", BackendRequestError("upload: 400"))

    result = world.ingestor(failing).ingest(uploaded)

    assert result.status is FileStatus.FAILED
    assert world.openai_files() == {}
    assert world.versions(ticket.key) == []


def test_giving_up_a_pending_upload_fails_it_and_deletes_its_object(world: World) -> None:
    thread = world.new_thread("alice")
    ticket, uploaded = world.upload(thread, "notes.txt", b"hello\n")

    result = world.ingestor().give_up(uploaded, "ingest_failed: test")

    assert (result.status, result.duplicate) == (FileStatus.FAILED, False)
    record = world.files.get(thread.thread_id, ticket.upload_id)
    assert (record.status, record.reason) == (FileStatus.FAILED, "ingest_failed: test")
    assert world.versions(ticket.key) == []


def test_giving_up_an_upload_that_settled_meanwhile_changes_nothing(world: World) -> None:
    thread = world.new_thread("alice")
    ticket, uploaded = world.upload(thread, "notes.txt", b"hello\n")
    ingested = world.ingestor().ingest(uploaded)

    late = world.ingestor().give_up(uploaded, "ingest_failed: test")

    assert late.duplicate
    assert late.status is ingested.status
    assert world.files.get(thread.thread_id, ticket.upload_id).reason is None
    assert len(world.versions(ticket.key)) == 1
    assert list(world.openai_files()) == [ingested.openai_file_id]


def test_the_sweep_waits_for_s3s_event_then_ingests_what_it_did_not_bring(world: World) -> None:
    thread = world.new_thread("alice")
    ticket, _uploaded = world.upload(thread, "notes.txt", b"hello\n")  # no event: not ingested
    world.clock.advance(PENDING_FOR - timedelta(seconds=1))

    assert world.sweep() == {}
    world.clock.advance(timedelta(seconds=2))
    assert world.sweep() == {"ingested": 1}

    record = world.files.get(thread.thread_id, ticket.upload_id)
    assert record.status is attached_as(world, "notes.txt")
    assert record.sweep_attempts == 1
    assert world.sweep() == {}


def test_the_pending_index_holds_the_pending_uploads(world: World) -> None:
    thread = world.new_thread("alice")
    first, first_object = world.upload(thread, "first.txt", b"first\n")
    world.clock.advance(timedelta(minutes=1))
    _settled, settled_object = world.upload(thread, "settled.txt", b"settled\n")
    world.ingestor().ingest(settled_object)
    world.clock.advance(timedelta(minutes=1))
    last, _last_object = world.upload(thread, "last.txt", b"last\n")

    def pending_before(cutoff: datetime) -> set[str]:
        found = [record.upload_id for record in world.files.pending_before(cutoff)]
        assert len(found) == len(set(found))
        return set(found)

    assert pending_before(world.clock() + timedelta(seconds=1)) == {
        first.upload_id,
        last.upload_id,
    }
    assert pending_before(world.clock() - timedelta(seconds=30)) == {first.upload_id}
    world.ingestor().ingest(first_object)
    assert pending_before(world.clock() + timedelta(seconds=1)) == {last.upload_id}


def test_a_sweep_attempt_is_claimed_once(world: World) -> None:
    thread = world.new_thread("alice")
    ticket, _uploaded = world.upload(thread, "notes.txt", b"hello\n")
    (seen,) = world.files.pending_before(world.clock() + timedelta(seconds=1))

    assert world.files.claim_sweep_attempt(seen)
    assert not world.files.claim_sweep_attempt(seen), "another sweep took that attempt"
    claimed = world.files.get(thread.thread_id, ticket.upload_id)
    assert claimed.sweep_attempts == 1
    assert world.files.claim_sweep_attempt(claimed)
    assert world.files.get(thread.thread_id, ticket.upload_id).sweep_attempts == 2


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


class RivalStoreFirst:
    """The real backend, but a rival ingest records its own vector store on the thread (and
    puts its file there) just after ours made one: both looked before either had made it."""

    def __init__(self, world: World, rival_file: str) -> None:
        self._world = world
        self._rival_file = rival_file

    def __getattr__(self, name: str) -> Any:
        return getattr(self._world.backend, name)

    def thread_vector_store(self, thread: Thread, filename: str) -> str | None:
        ours = self._world.backend.thread_vector_store(thread, filename)
        rival_store = (
            sdk_client(self._world.server)
            .vector_stores.create(metadata={"threadline_thread_id": thread.thread_id})
            .id
        )
        self._world.threads.set_vector_store(thread.user_id, thread.thread_id, rival_store)
        rival = thread.model_copy(update={"vector_store_id": rival_store})
        self._world.backend.attach_file(rival, self._rival_file, "rival.txt")
        return ours


def test_concurrent_first_uploads_share_one_vector_store(table: Any) -> None:
    world = make_world("responses", table)
    thread = world.new_thread("alice")
    rival_file = world.backend.upload_file(
        "rival.txt", b"rival", upload_id="upl_rival", not_before=world.clock()
    )

    ingestor = world.ingestor(RivalStoreFirst(world, rival_file))  # type: ignore[arg-type]
    result = ingestor.ingest(world.upload(thread, "mine.txt", b"mine")[1])

    assert result.status is FileStatus.INDEXING
    winner = world.threads.get("alice", thread.thread_id).vector_store_id
    assert list(world.server.state.vector_stores) == [winner]  # ours was deleted
    assert set(world.server.state.vector_stores[winner or ""].files) == {
        rival_file,
        result.openai_file_id,
    }
    record = world.files.get(thread.thread_id, result.upload_id or "")
    assert record.vector_store_id == winner


def test_a_new_vector_store_is_recorded_before_anything_goes_into_it(table: Any) -> None:
    """Whatever fails after the store is made, the thread knows it, and cleanup deletes it."""
    world = make_world("responses", table)
    thread = world.new_thread("alice")
    _ticket, uploaded = world.upload(thread, "notes.txt", b"hello\n")
    failing = FailingBackend(world.backend, "attach_file", BackendRequestError("add: 400"))

    result = world.ingestor(failing).ingest(uploaded)

    assert result.status is FileStatus.FAILED
    thread = world.threads.get("alice", thread.thread_id)
    assert list(world.server.state.vector_stores) == [thread.vector_store_id]
    world.cleaner().purge(thread)
    assert world.server.state.vector_stores == {}
    assert world.openai_files() == {}


# -- creates whose reply never came --------------------------------------------------------


def assert_upload_found_again(world: World, fault: Fault) -> None:
    """files.create happens but its reply never reaches Threadline: the ingest fails, and S3's
    retry adopts that file rather than upload a second."""
    thread = world.new_thread("alice")
    ticket, uploaded = world.upload(thread, "notes.txt", b"hello\n")
    world.server.faults.add(fault, method="POST", path="/v1/files")

    with pytest.raises(TransientBackendError):
        world.ingestor().ingest(uploaded)

    assert world.files.get(thread.thread_id, ticket.upload_id).status is FileStatus.PENDING
    ((made, name),) = world.openai_files().items()
    assert name == f"{ticket.upload_id}-notes.txt"
    retried = world.ingestor().ingest(uploaded)
    assert retried.status is attached_as(world, "notes.txt")
    assert retried.openai_file_id == made
    assert list(world.openai_files()) == [made]
    assert world.server.stats.endpoints["POST /v1/files"] == 1


def test_an_upload_whose_reply_was_lost_is_found_again_not_made_twice(world: World) -> None:
    assert_upload_found_again(world, Fault.lost_reply())


def test_an_upload_whose_reply_came_too_late_is_found_again_not_made_twice(
    world_over_http: World,
) -> None:
    assert_upload_found_again(world_over_http, Fault.slow_reply(60))  # held until teardown


class RivalIngestsFirst:
    """The real backend, but another version of the same upload (a second POST to its URL)
    is ingested in full just before ours uploads: ours then finds the rival's file."""

    def __init__(self, world: World, rival: UploadedObject) -> None:
        self._world = world
        self._rival = rival

    def __getattr__(self, name: str) -> Any:
        return getattr(self._world.backend, name)

    def upload_file(self, filename: str, content: bytes, **upload: Any) -> str:
        self._world.ingestor().ingest(self._rival)
        return self._world.backend.upload_file(filename, content, **upload)


def test_a_delivery_that_lost_the_race_keeps_the_file_it_found_again(world: World) -> None:
    thread = world.new_thread("alice")
    ticket, ours = world.upload(thread, "notes.txt", b"hello\n")
    rival = world.put(ticket.key, b"howdy\n")  # the same size: the POST policy pins it

    result = world.ingestor(RivalIngestsFirst(world, rival)).ingest(ours)  # type: ignore[arg-type]

    assert result.duplicate
    record = world.files.get(thread.thread_id, ticket.upload_id)
    assert record.sha256 == hashlib.sha256(b"howdy\n").hexdigest()
    assert list(world.openai_files()) == [record.openai_file_id]  # not deleted as ours
    if world.backend.name == "assistants":
        assert len(attachments(world, thread.remote_id)) == 1
    else:
        (store,) = world.server.state.vector_stores.values()
        assert list(store.files) == [record.openai_file_id]


def test_a_vector_store_whose_create_reply_was_lost_is_found_again(table: Any) -> None:
    world = make_world("responses", table)
    thread = world.new_thread("alice")
    _ticket, uploaded = world.upload(thread, "notes.txt", b"hello\n")
    world.server.faults.add(Fault.lost_reply(), method="POST", path="/v1/vector_stores")

    with pytest.raises(TransientBackendError):
        world.ingestor().ingest(uploaded)

    (lost,) = world.server.state.vector_stores
    assert world.threads.get("alice", thread.thread_id).vector_store_id is None
    (kept,) = world.openai_files()  # the file it was for waits for the retry
    retried = world.ingestor().ingest(uploaded)
    assert retried.openai_file_id == kept
    assert retried.status is FileStatus.INDEXING
    assert world.threads.get("alice", thread.thread_id).vector_store_id == lost
    assert list(world.server.state.vector_stores) == [lost]
    assert list(world.server.state.vector_stores[lost].files) == [retried.openai_file_id]
    assert world.server.stats.endpoints["POST /v1/vector_stores"] == 1


def test_an_attach_whose_reply_was_lost_is_not_made_twice(world: World) -> None:
    """The attach happens but its reply is lost, and deleting the file fails too: S3's retry
    adopts the file, finds it attached already, and attaches nothing twice."""
    thread = world.new_thread("alice")
    _ticket, uploaded = world.upload(thread, "notes.txt", b"hello\n")
    world.server.faults.add(Fault.lost_reply(), method="POST", path=ATTACH_PATH[world.backend.name])
    world.server.faults.add(Fault.http_error(500), method="DELETE", path="/v1/files/*")

    with pytest.raises(TransientBackendError):
        world.ingestor().ingest(uploaded)

    retried = world.ingestor().ingest(uploaded)
    assert retried.status is FileStatus.INGESTED  # indexed by the time the retry looked
    assert list(world.openai_files()) == [retried.openai_file_id]
    if world.backend.name == "assistants":
        assert len(attachments(world, thread.remote_id)) == 1
    else:
        (store,) = world.server.state.vector_stores.values()
        assert list(store.files) == [retried.openai_file_id]
        assert world.server.stats.endpoints["POST /v1/vector_stores/<vector_store_id>/files"] == 1


# -- indexing ------------------------------------------------------------------------------


def test_a_searchable_file_is_indexing_until_openai_has_indexed_it(table: Any) -> None:
    world = make_world("responses", table)
    thread = world.new_thread("alice")
    world.server.latency_seconds = 30  # how long indexing takes
    result = world.ingest_new(thread, "notes.md", b"# Notes\n", "text/markdown")
    world.server.latency_seconds = 0  # the model answers at once
    question = "Which files can you search?"

    assert result.status is FileStatus.INDEXING
    (listed,) = world.uploads.list_files("alice", thread.thread_id)
    assert (listed.status, listed.ingested_at) == (FileStatus.INDEXING, None)
    thread = world.threads.get("alice", thread.thread_id)
    assert run_context(thread, world.files).file_ids == [result.openai_file_id]  # no index needed
    searched = world.finished_run(thread, question, with_files=False)
    assert searched.output_text == f"You said: {question}"  # file search finds nothing yet

    world.clock.advance(timedelta(seconds=30))

    (listed,) = world.uploads.list_files("alice", thread.thread_id)
    assert (listed.status, listed.ingested_at) == (FileStatus.INGESTED, world.clock())
    searched = world.finished_run(thread, question, with_files=False)
    name = remote_name(world, thread, result.upload_id)
    assert searched.output_text == f"The attached files are: {name}."


@pytest.mark.parametrize("cause", ["unparseable", "removed_from_the_store"])
def test_a_file_search_cannot_index_fails_with_the_reason_and_leaves_nothing(
    table: Any, cause: str
) -> None:
    world = make_world("responses", table)
    thread = world.new_thread("alice")
    content = b"scanned pages " + (UNINDEXABLE_MARKER if cause == "unparseable" else b"")
    result = world.ingest_new(thread, "notes.txt", content)
    store = world.threads.get("alice", thread.thread_id).vector_store_id or ""
    if cause == "removed_from_the_store":
        sdk_client(world.server).vector_stores.files.delete(
            result.openai_file_id or "", vector_store_id=store
        )

    (listed,) = world.uploads.list_files("alice", thread.thread_id)

    assert result.status is FileStatus.INDEXING
    assert listed.status is FileStatus.FAILED
    reason = {
        "unparseable": "invalid_file: The file could not be parsed for file search (scripted).",
        "removed_from_the_store": "not_found: the vector store no longer holds the file",
    }[cause]
    assert listed.reason == f"file search could not index it: {reason}"
    assert world.openai_files() == {}
    assert world.server.state.vector_stores[store].files == {}
    assert run_context(world.threads.get("alice", thread.thread_id), world.files).file_ids == []


def test_a_look_that_cannot_reach_openai_leaves_the_file_indexing(table: Any) -> None:
    world = make_world("responses", table)
    thread = world.new_thread("alice")
    world.ingest_new(thread, "notes.txt", b"hello\n")
    world.server.faults.add(Fault.http_error(500), method="GET", path="/v1/vector_stores/*")

    (unsettled,) = world.uploads.list_files("alice", thread.thread_id)
    (settled,) = world.uploads.list_files("alice", thread.thread_id)

    assert (unsettled.status, settled.status) == (FileStatus.INDEXING, FileStatus.INGESTED)


class LookedAtMeanwhile:
    """The real backend, but while a look asks how indexing stands, another look settles the
    thread's files."""

    def __init__(self, world: World, other_look: FileStore, thread_id: str) -> None:
        self._world = world
        self._other_look = other_look
        self._thread_id = thread_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._world.backend, name)

    def file_index(self, vector_store_id: str, file_id: str) -> FileIndex:
        self._other_look.current(self._thread_id)
        return self._world.backend.file_index(vector_store_id, file_id)


def test_two_looks_settle_an_indexed_file_once(table: Any) -> None:
    world = make_world("responses", table)
    thread = world.new_thread("alice")
    world.ingest_new(thread, "notes.txt", b"hello\n")
    first_look_at = world.clock()
    other_look = FileStore(world.table, backend=lambda: world.backend, now=lambda: first_look_at)
    world.clock.advance(timedelta(seconds=5))
    racing: Any = LookedAtMeanwhile(world, other_look, thread.thread_id)
    our_look = FileStore(world.table, backend=lambda: racing, now=world.clock)

    (listed,) = our_look.current(thread.thread_id)

    assert listed.status is FileStatus.INGESTED
    assert listed.ingested_at == first_look_at  # the other look settled it; ours changed nothing


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


def test_a_file_the_model_wrote_but_did_not_cite_is_found_in_its_container(table: Any) -> None:
    world = make_world("responses", table)
    thread = world.new_thread("alice")
    world.ingest_new(thread, "sales.csv", CSV, "text/csv")  # in the container too: the user's
    summary = png_bytes(3, 2)
    uncited = Step.image("Saved a summary.", summary, "summary.png", cited=False)
    world.server.script.push(uncited, key=thread.remote_id)

    view = world.finished_run(thread, "Summarise my sales")

    assert view.output_text == "Saved a summary."
    (generated,) = view.generated_files
    assert (generated.filename, generated.container_id is not None) == ("summary.png", True)
    assert world.backend.download_generated_file(generated) == summary
