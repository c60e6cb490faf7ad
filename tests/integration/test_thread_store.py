"""The thread store against moto's DynamoDB, with the table as template.yaml declares it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from threadline.errors import NotFoundError, ThreadBusyError
from threadline.store.table import SHARDS
from threadline.threads.creation import ThreadCreator
from threadline.threads.records import ThreadStore
from threadline.threads.run_lock import RunLock

DAY = timedelta(days=1)


class Clock:
    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment += delta


class RemoteThreads:
    """Stands in for OpenAI's thread/conversation endpoints: counts what exists remotely."""

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        self.alive: set[str] = set()
        self.deleted: list[str] = []
        self._barrier = barrier
        self._lock = threading.Lock()

    def create(self, thread_id: str) -> str:
        if self._barrier:
            self._barrier.wait(timeout=10)  # every racer has read "no thread" by now
        with self._lock:
            remote_id = f"conv_{thread_id}"
            self.alive.add(remote_id)
        return remote_id

    def delete(self, remote_id: str) -> None:
        with self._lock:
            self.alive.discard(remote_id)
            self.deleted.append(remote_id)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(table: Any, clock: Clock) -> ThreadStore:
    return ThreadStore(table, now=clock)


@pytest.fixture
def creator(table: Any, store: ThreadStore, clock: Clock) -> ThreadCreator:
    return ThreadCreator(table, threads=store, retention=7 * DAY, now=clock)


@pytest.fixture
def lock(table: Any, store: ThreadStore, clock: Clock) -> RunLock:
    return RunLock(table, threads=store, retention=7 * DAY, now=clock)


def get_or_create(creator: ThreadCreator, remote: RemoteThreads, user: str = "alice", **kw: Any):
    return creator.get_or_create(
        user,
        kw.get("purpose", "analysis"),
        reuse_for=timedelta(hours=24),
        backend="responses",
        create_remote=remote.create,
        delete_remote=remote.delete,
    )


def test_creates_then_reuses_and_touches(creator: ThreadCreator, clock: Clock) -> None:
    remote = RemoteThreads()
    first, created = get_or_create(creator, remote)
    assert created
    clock.advance(timedelta(hours=3))
    again, created_again = get_or_create(creator, remote)
    assert not created_again
    assert again.thread_id == first.thread_id
    assert again.last_activity == clock.moment
    assert remote.alive == {first.remote_id}


def test_stale_thread_is_replaced_but_kept_for_cleanup(
    store: ThreadStore, creator: ThreadCreator, clock: Clock
) -> None:
    remote = RemoteThreads()
    old, _ = get_or_create(creator, remote)
    clock.advance(timedelta(hours=25))
    new, created = get_or_create(creator, remote)
    assert created
    assert new.thread_id != old.thread_id
    assert store.get("alice", old.thread_id).thread_id == old.thread_id


def test_purposes_and_users_are_separate(creator: ThreadCreator) -> None:
    remote = RemoteThreads()
    a, _ = get_or_create(creator, remote, "alice", purpose="analysis")
    b, _ = get_or_create(creator, remote, "alice", purpose="support")
    c, _ = get_or_create(creator, remote, "bob", purpose="analysis")
    assert len({a.thread_id, b.thread_id, c.thread_id}) == 3


def test_concurrent_calls_yield_one_thread_and_no_orphan(creator: ThreadCreator) -> None:
    racers = 4
    remote = RemoteThreads(barrier=threading.Barrier(racers))
    results: list[Any] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            results.append(get_or_create(creator, remote))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    workers = [threading.Thread(target=call) for _ in range(racers)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)

    assert not errors
    assert len({thread.thread_id for thread, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert len(remote.alive) == 1, "losers must delete the remote threads they made"
    assert len(remote.deleted) == racers - 1
    (winner,) = {thread.remote_id for thread, _ in results}
    assert remote.alive == {winner}


def test_other_users_thread_is_not_found(store: ThreadStore, creator: ThreadCreator) -> None:
    thread, _ = get_or_create(creator, RemoteThreads(), "alice")
    with pytest.raises(NotFoundError):
        store.get("mallory", thread.thread_id)


def test_list_is_paginated_newest_first(store: ThreadStore, creator: ThreadCreator) -> None:
    remote = RemoteThreads()
    made = [get_or_create(creator, remote, purpose=f"p{i}")[0].thread_id for i in range(5)]
    first = store.list("alice", limit=3)
    second = store.list("alice", limit=3, start_key=first.next_key)
    listed = [t.thread_id for t in first.threads + second.threads]
    assert listed == list(reversed(made))
    assert second.next_key is None


def test_stale_threads_come_from_the_activity_index(
    store: ThreadStore, creator: ThreadCreator, clock: Clock
) -> None:
    remote = RemoteThreads()
    old, _ = get_or_create(creator, remote, purpose="old")
    clock.advance(8 * DAY)
    fresh, _ = get_or_create(creator, remote, purpose="fresh")
    page = store.stale(idle_for=7 * DAY, limit=10)
    assert [t.thread_id for t in page.threads] == [old.thread_id]
    assert fresh.thread_id not in {t.thread_id for t in page.threads}


def test_threads_spread_over_the_index_shards_and_every_one_is_found_page_by_page(
    table: Any, store: ThreadStore, creator: ThreadCreator, lock: RunLock, clock: Clock
) -> None:
    """One constant partition key takes about 1,000 writes a second (each run writes two);
    the activity and lock keys are spread over shards, and the sweeps read each shard."""
    remote = RemoteThreads()
    made = [get_or_create(creator, remote, purpose=f"p{n}")[0] for n in range(40)]
    for thread in made:
        lock.acquire("alice", thread.thread_id, f"run_{thread.thread_id}", lease=timedelta(0))
    partitions = {item["GSI1PK"] for item in table.scan()["Items"] if "GSI1PK" in item}
    assert len(partitions) > SHARDS // 2
    clock.advance(8 * DAY)
    found: list[str] = []
    page = store.stale(idle_for=7 * DAY, limit=3)
    while True:
        found += [thread.thread_id for thread in page.threads]
        if page.next_key is None:
            break
        page = store.stale(idle_for=7 * DAY, limit=3, start_key=page.next_key)
    assert sorted(found) == sorted(thread.thread_id for thread in made)
    expired = store.expired_locks(clock(), limit=100)
    assert sorted(thread_id for _user, thread_id in expired) == sorted(found)
    assert len(store.expired_locks(clock(), limit=5)) == 5


def test_run_lock_is_exclusive_and_released_once(creator: ThreadCreator, lock: RunLock) -> None:
    thread, _ = get_or_create(creator, RemoteThreads())
    lease = timedelta(minutes=10)
    lock.acquire("alice", thread.thread_id, "run_1", lease=lease)
    lock.acquire("alice", thread.thread_id, "run_1", lease=lease)  # a retry is fine
    with pytest.raises(ThreadBusyError) as busy:
        lock.acquire("alice", thread.thread_id, "run_2", lease=lease)
    assert busy.value.active_run_id == "run_1"
    assert not lock.release("alice", thread.thread_id, "run_2")
    assert lock.release("alice", thread.thread_id, "run_1")
    assert not lock.release("alice", thread.thread_id, "run_1")
    lock.acquire("alice", thread.thread_id, "run_2", lease=lease)


def test_an_expired_lease_is_not_taken_over_but_found_for_finishing(
    store: ThreadStore, creator: ThreadCreator, lock: RunLock, clock: Clock
) -> None:
    """Taking it over would leave the lost run unfinished: FinishLostRuns finds it instead."""
    thread, _ = get_or_create(creator, RemoteThreads())
    lock.acquire("alice", thread.thread_id, "crashed", lease=timedelta(minutes=5))
    assert store.expired_locks(clock(), limit=10) == []
    clock.advance(timedelta(minutes=6))
    with pytest.raises(ThreadBusyError):
        lock.acquire("alice", thread.thread_id, "next", lease=timedelta(minutes=5))
    assert store.expired_locks(clock(), limit=10) == [("alice", thread.thread_id)]
    assert lock.release("alice", thread.thread_id, "crashed")
    assert store.expired_locks(clock(), limit=10) == [], "the index entry goes with the lock"
    lock.acquire("alice", thread.thread_id, "next", lease=timedelta(minutes=5))


def test_delete_removes_record_and_pointer(store: ThreadStore, creator: ThreadCreator) -> None:
    remote = RemoteThreads()
    thread, _ = get_or_create(creator, remote)
    store.delete(thread)
    with pytest.raises(NotFoundError):
        store.get("alice", thread.thread_id)
    replacement, created = get_or_create(creator, remote)
    assert created
    assert replacement.thread_id != thread.thread_id
