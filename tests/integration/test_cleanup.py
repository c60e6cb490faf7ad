"""The cleanup job on moto and the local OpenAI server, for both backends: exactly the stale
threads go, with everything they own, whatever fails or runs out of time on the way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from local.openai_server import Fault
from tests.integration.file_world import BUCKET, FailingBackend, World, make_world, png_bytes
from threadline.errors import InvalidRequestError, NotFoundError, TransientBackendError
from threadline.ids import new_id
from threadline.runs.records import RunRecord
from threadline.store.cursors import encode_cursor
from threadline.store.table import thread_key, user_key
from threadline.threads.records import Thread

IDLE = timedelta(days=8)  # longer than the seven-day retention


def plenty_of_time() -> int:
    return 600_000  # milliseconds left


@pytest.fixture(params=["responses", "assistants"])
def world(request: pytest.FixtureRequest, table: Any) -> World:
    return make_world(request.param, table)


@dataclass
class Holdings:
    """Everything a thread owns, to check it is all gone or all still there."""

    thread: Thread
    remote_run_id: str
    openai_file_ids: list[str]
    s3_versions: int
    s3_bytes: int


def furnish(world: World, user_id: str) -> Holdings:
    """A thread with uploads, a generated file rewritten once, a deleted upload and a run."""
    world.clock.advance(timedelta(seconds=1))  # threads go oldest first: make that this order
    thread = world.new_thread(user_id)
    ingested = [
        world.ingest_new(thread, "notes.md", b"# Notes\n", "text/markdown"),
        world.ingest_new(thread, "sales.csv", b"a,b\n1,2\n", "text/csv"),
    ]
    output = f"outputs/{user_id}/{thread.thread_id}/run_1/chart.png"
    world.s3.put_object(Bucket=BUCKET, Key=output, Body=png_bytes())
    world.s3.put_object(Bucket=BUCKET, Key=output, Body=png_bytes(3, 3))
    dropped = f"uploads/{user_id}/{thread.thread_id}/upl_old/old.txt"
    world.s3.put_object(Bucket=BUCKET, Key=dropped, Body=b"old")
    world.s3.delete_object(Bucket=BUCKET, Key=dropped)  # leaves a version and a delete marker
    handle, _view = world.finished_remote_run(thread, "Hi")
    run_id = new_id("run")
    world.runs.put_new(
        RunRecord(
            run_id=run_id,
            thread_id=thread.thread_id,
            user_id=user_id,
            assistant="data_analyst",
            created_at=world.clock(),
        )
    )
    world.runs.mark_started(thread.thread_id, run_id, remote_run_id=handle.run_remote_id)
    versions = [
        version
        for prefix in ("uploads", "outputs")
        for version in world.s3.list_object_versions(
            Bucket=BUCKET, Prefix=f"{prefix}/{user_id}/{thread.thread_id}/"
        ).get("Versions", [])
    ]
    return Holdings(
        thread=world.threads.get(user_id, thread.thread_id),
        remote_run_id=handle.run_remote_id,
        openai_file_ids=[result.openai_file_id or "" for result in ingested],
        s3_versions=len(versions),
        s3_bytes=sum(version["Size"] for version in versions),
    )


def remote_exists(world: World, held: Holdings) -> bool:
    """The thread's history at OpenAI: its responses, or its Assistants thread."""
    state = world.server.state
    if held.thread.backend == "responses":
        return held.remote_run_id in state.responses
    return held.thread.remote_id in state.threads


def table_items(world: World, thread: Thread) -> list[dict[str, Any]]:
    """Every item the thread owns or is: its own, its pointer, its runs and files."""
    return [
        item
        for item in world.table.scan()["Items"]
        if item["PK"] == thread_key(thread.thread_id)
        or (item["PK"] == user_key(thread.user_id) and not item["SK"].startswith("USAGE#"))
    ]


def assert_all_gone(world: World, held: Holdings) -> None:
    thread = held.thread
    assert not remote_exists(world, held)
    assert not set(held.openai_file_ids) & set(world.openai_files())
    if thread.vector_store_id:
        assert thread.vector_store_id not in world.server.state.vector_stores
    for prefix in ("uploads", "outputs"):
        assert world.versions(f"{prefix}/{thread.user_id}/{thread.thread_id}/") == []
    assert table_items(world, thread) == []


def assert_all_there(world: World, held: Holdings) -> None:
    thread = held.thread
    assert world.threads.get(thread.user_id, thread.thread_id) == thread
    assert remote_exists(world, held)
    assert set(held.openai_file_ids) <= set(world.openai_files())
    if thread.vector_store_id:
        assert thread.vector_store_id in world.server.state.vector_stores
    assert len(world.files.list(thread.thread_id)) == 2
    objects = world.versions(f"outputs/{thread.user_id}/{thread.thread_id}/")
    assert len(objects) == 2


def test_stale_threads_go_with_everything_they_own_and_fresh_ones_stay(world: World) -> None:
    stale = furnish(world, "alice")
    if world.backend.name == "responses":
        assert stale.thread.vector_store_id is not None
    world.clock.advance(IDLE)
    fresh = furnish(world, "bob")

    report = world.cleaner().run(deadline_ms=plenty_of_time)

    assert report.failures == []
    assert (report.threads_deleted, report.skipped_active, report.next_cursor) == (1, 0, None)
    assert (report.files_deleted, report.bytes_deleted) == (stale.s3_versions, stale.s3_bytes)
    assert stale.s3_versions == 5  # two uploads, two chart versions, one deleted upload
    assert_all_gone(world, stale)
    assert_all_there(world, fresh)


def test_running_it_again_finds_nothing(world: World) -> None:
    furnish(world, "alice")
    world.clock.advance(IDLE)
    world.cleaner().run(deadline_ms=plenty_of_time)

    again = world.cleaner().run(deadline_ms=plenty_of_time)

    assert (again.threads_deleted, again.files_deleted, again.failures) == (0, 0, [])


def test_a_thread_with_a_live_run_is_skipped_but_a_crashed_runs_lock_is_not(
    world: World,
) -> None:
    live = furnish(world, "alice")
    crashed = furnish(world, "bob")
    world.lock.acquire("alice", live.thread.thread_id, "run_live", lease=2 * IDLE)
    world.lock.acquire("bob", crashed.thread.thread_id, "run_gone", lease=IDLE / 8)
    world.clock.advance(IDLE)

    report = world.cleaner().run(deadline_ms=plenty_of_time)

    assert (report.threads_deleted, report.skipped_active) == (1, 1)
    assert remote_exists(world, live)
    assert world.threads.get("alice", live.thread.thread_id).active_run_id == "run_live"
    assert_all_gone(world, crashed)


def test_a_thread_active_again_since_the_index_was_read_is_not_claimed(world: World) -> None:
    thread = world.new_thread("alice")
    world.clock.advance(IDLE)
    (seen_stale,) = world.threads.stale(idle_for=timedelta(days=7), limit=10).threads
    world.lock.acquire("alice", thread.thread_id, "run_new", lease=IDLE)
    world.lock.release("alice", thread.thread_id, "run_new")

    assert not world.threads.claim_for_purge(seen_stale, idle_for=timedelta(days=7))
    assert world.threads.get("alice", thread.thread_id).purging_since is None


def test_a_claimed_thread_is_gone_for_runs_and_uploads(world: World) -> None:
    thread = world.new_thread("alice")
    world.clock.advance(IDLE)

    assert world.threads.claim_for_purge(thread, idle_for=timedelta(days=7))

    with pytest.raises(NotFoundError):
        world.threads.get("alice", thread.thread_id)
    with pytest.raises(NotFoundError):
        world.lock.acquire("alice", thread.thread_id, "run_late", lease=IDLE)
    with pytest.raises(NotFoundError):
        world.threads.set_vector_store("alice", thread.thread_id, "vs_late")


def test_dry_run_counts_and_deletes_nothing(world: World) -> None:
    held = furnish(world, "alice")
    world.clock.advance(IDLE)
    items_before = world.table.scan()["Items"]
    objects_before = world.versions("")
    files_before = world.openai_files()

    report = world.cleaner().run(deadline_ms=plenty_of_time, dry_run=True)

    assert report.dry_run
    assert (report.threads_deleted, report.files_deleted, report.bytes_deleted) == (
        1,
        held.s3_versions,
        held.s3_bytes,
    )
    assert world.table.scan()["Items"] == items_before
    assert world.versions("") == objects_before
    assert world.openai_files() == files_before
    assert remote_exists(world, held)


def test_it_resumes_where_it_ran_out_of_time(world: World) -> None:
    threads = [furnish(world, f"user{n}") for n in range(3)]
    world.clock.advance(IDLE)
    time_left = iter([60_000, 60_000, 0])  # enough for two threads, then below the margin

    first = world.cleaner().run(deadline_ms=lambda: next(time_left), page_size=2)

    assert first.threads_deleted == 2
    assert first.next_cursor is not None
    # Shard by shard (the activity index is spread over shards): which two is the index's.
    (left,) = [held for held in threads if table_items(world, held.thread)]
    for held in threads:
        if held is not left:
            assert_all_gone(world, held)
    assert_all_there(world, left)

    resumed = world.cleaner().run(
        deadline_ms=plenty_of_time, page_size=2, resume_from=first.next_cursor
    )

    assert (resumed.threads_deleted, resumed.next_cursor) == (1, None)
    assert_all_gone(world, left)


def test_no_time_at_all_resumes_from_the_start(world: World) -> None:
    held = furnish(world, "alice")
    world.clock.advance(IDLE)

    starved = world.cleaner().run(deadline_ms=lambda: 0)

    assert starved.threads_deleted == 0
    assert starved.next_cursor is not None
    resumed = world.cleaner().run(deadline_ms=plenty_of_time, resume_from=starved.next_cursor)
    assert resumed.threads_deleted == 1
    assert_all_gone(world, held)


def test_one_failing_thread_does_not_stop_the_others(world: World) -> None:
    threads = [furnish(world, f"user{n}") for n in range(3)]
    world.clock.advance(IDLE)
    broken = threads[1].thread
    failing = FailingBackend(
        world.backend,
        "delete_thread",
        TransientBackendError("delete conversation: 503"),
        when=lambda remote_id: remote_id == broken.remote_id,
    )

    report = world.cleaner(failing).run(deadline_ms=plenty_of_time)  # type: ignore[arg-type]

    assert report.threads_deleted == 2
    assert [(f.thread_id, f.reason) for f in report.failures] == [
        (broken.thread_id, "TransientBackendError: delete conversation: 503")
    ]
    assert_all_gone(world, threads[0])
    assert_all_gone(world, threads[2])
    assert remote_exists(world, threads[1])
    assert table_items(world, broken) != []  # kept, to be found and retried

    retried = world.cleaner().run(deadline_ms=plenty_of_time)

    assert (retried.threads_deleted, retried.failures) == (1, [])
    assert_all_gone(world, threads[1])


def test_files_and_stores_found_again_go_with_their_thread(world: World) -> None:
    """Creates whose replies were lost leave nothing behind: what the retries found again was
    recorded like the rest."""
    thread = world.new_thread("alice")
    lost = (
        ["/v1/files", "/v1/vector_stores"] if world.backend.name == "responses" else ["/v1/files"]
    )
    for path in lost:
        world.server.faults.add(Fault.lost_reply(), method="POST", path=path)
    _ticket, uploaded = world.upload(thread, "notes.md", b"# Notes\n", "text/markdown")
    for _path in lost:  # S3 retries each failed delivery
        with pytest.raises(TransientBackendError):
            world.ingestor().ingest(uploaded)
    world.ingestor().ingest(uploaded)
    assert world.openai_files() != {}
    world.clock.advance(IDLE)

    report = world.cleaner().run(deadline_ms=plenty_of_time)

    assert (report.threads_deleted, report.failures) == (1, [])
    assert world.openai_files() == {}
    assert world.server.state.vector_stores == {}


def test_what_an_ingest_that_gave_up_made_goes_with_the_thread(world: World) -> None:
    """Every delivery of the upload lost its create reply: the record never learnt of the
    file (or the store), yet cleanup finds both by the names they were made with."""
    thread = world.new_thread("alice")
    world.server.faults.add(Fault.lost_reply(), method="POST", path="/v1/files")
    _ticket, uploaded = world.upload(thread, "notes.md", b"# Notes\n", "text/markdown")
    with pytest.raises(TransientBackendError):
        world.ingestor().ingest(uploaded)  # the last retry S3 makes
    if world.backend.name == "responses":
        store = world.backend.thread_vector_store(thread, "notes.md")  # a lost reply's store
        assert store is not None
    assert world.openai_files() != {}
    assert world.files.list(thread.thread_id)[0].openai_file_id is None
    world.clock.advance(IDLE)

    report = world.cleaner().run(deadline_ms=plenty_of_time)

    assert (report.threads_deleted, report.failures) == (1, [])
    assert world.openai_files() == {}
    assert world.server.state.vector_stores == {}


@pytest.mark.parametrize(
    "cursor",
    ["not-a-cursor", encode_cursor("[1, 2]"), encode_cursor('{"PK": "USER#x"}')],
    ids=["garbage", "not-an-object", "not-a-position"],
)
def test_a_cursor_that_is_not_ours_is_refused(world: World, cursor: str) -> None:
    with pytest.raises(InvalidRequestError):
        world.cleaner().run(deadline_ms=plenty_of_time, resume_from=cursor)


def test_more_versions_than_one_delete_batch(table: Any) -> None:
    """DeleteObjects takes 1000 keys at most: the versions go in batches (of 4 here, so that
    the test need not write a thousand)."""
    world = make_world("responses", table)
    held = furnish(world, "alice")
    key = f"uploads/alice/{held.thread.thread_id}/upl_many/log.txt"
    for n in range(11):
        world.s3.put_object(Bucket=BUCKET, Key=key, Body=str(n).encode())
    world.clock.advance(IDLE)

    report = world.cleaner(delete_batch=4).run(deadline_ms=plenty_of_time)

    assert report.files_deleted == held.s3_versions + 11
    assert_all_gone(world, held)
