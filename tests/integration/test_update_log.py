"""A watched run's update log in the table (moto): numbers with no gaps however writers race,
a table change stored once however often it is retried, the text relay's lease, and a relay
that resumes where the last one stopped."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from threadline.api_models import RunResource
from threadline.models import RunStatus
from threadline.runs.records import RunRecord, RunStore
from threadline.streams.log import RELAY_LEASE, RelayLease, UpdateLog
from threadline.streams.messages import MESSAGE_BYTES, RunFinished, StatusChanged, TextDelta
from threadline.streams.relay import Relayed, TextRelay

RUN = "run_1"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def status(value: RunStatus) -> StatusChanged:
    return StatusChanged(run_id=RUN, at=NOW, status=value)


def piece(text: str, response: str = "resp_1") -> TextDelta:
    return TextDelta(run_id=RUN, at=NOW, response_id=response, delta=text)


class StaleOnce:
    """A writer whose first look at the last number is from before another writer's."""

    def __init__(self, log: UpdateLog, stale: int) -> None:
        self._log, self._stale, self._used = log, stale, False
        self._real = log.last_seq
        log.last_seq = self  # type: ignore[method-assign]

    def __call__(self, run_id: str) -> int:
        if not self._used:
            self._used = True
            return self._stale
        return self._real(run_id)


def test_racing_writers_take_each_number_once(table: Any) -> None:
    first, second = UpdateLog(table), UpdateLog(table)
    StaleOnce(second, stale=0)
    lease = RelayLease(table).claim(RUN, "resp_1") or ""

    going = [status(RunStatus.QUEUED), status(RunStatus.IN_PROGRESS)]
    stored_first = first.append(RUN, going, change="a")
    relayed = second.append_text(piece("Hello"), through=4, lease=lease)
    stored_last = first.append(RUN, [status(RunStatus.COMPLETED)], change="b")

    log = first.after(RUN, 0)
    assert [update.seq for update in log] == [1, 2, 3, 4]
    assert [u.seq for u in stored_first] == [1, 2]
    assert relayed is not None
    assert relayed.seq == 3
    assert [u.seq for u in stored_last] == [4]
    assert [type(update).__name__ for update in log] == [
        "StatusChanged",
        "StatusChanged",
        "TextDelta",
        "StatusChanged",
    ]


def test_a_change_stored_again_adds_nothing_and_gives_its_numbers(table: Any) -> None:
    log = UpdateLog(table)
    updates = [status(RunStatus.IN_PROGRESS), status(RunStatus.REQUIRES_APPROVAL)]

    stored = log.append(RUN, updates, change="shard-1:000042")
    log.append_text(piece("more"), through=7, lease=RelayLease(table).claim(RUN, "resp_1") or "")
    again = log.append(RUN, updates, change="shard-1:000042")

    assert again == stored
    assert [update.seq for update in log.after(RUN, 0)] == [1, 2, 3]
    assert log.after(RUN, 2) == log.after(RUN, 0)[2:]


def test_text_is_stored_only_by_the_lease_holder_and_never_after_the_final_view(
    table: Any,
) -> None:
    log, lease = UpdateLog(table), RelayLease(table)
    holder = lease.claim(RUN, "resp_1") or ""
    newer = lease.claim(RUN, "resp_2") or ""  # takes the lease over

    by_the_old_holder = log.append_text(piece("old"), through=3, lease=holder)
    by_the_holder = log.append_text(piece("new", "resp_2"), through=3, lease=newer)
    view = RunFinished.of(RUN, NOW, RunResource.of(going_run("resp_2")))
    log.append(RUN, [view], change="end")
    after_the_view = log.append_text(piece("late", "resp_2"), through=4, lease=newer)

    assert by_the_old_holder is None
    assert by_the_holder is not None
    assert after_the_view is None
    assert [type(update).__name__ for update in log.after(RUN, 0)] == ["TextDelta", "RunFinished"]


def test_a_view_too_large_for_a_message_is_abridged() -> None:
    run = going_run("resp_1").model_copy(update={"output_text": "é" * 60_000})

    whole = RunFinished.of(RUN, NOW, RunResource.of(going_run("resp_1")))
    abridged = RunFinished.of(RUN, NOW, RunResource.of(run))

    assert not whole.abridged
    assert abridged.abridged
    assert abridged.run.output_text is None
    assert len(abridged.model_dump_json().encode()) <= MESSAGE_BYTES


def test_a_relay_takes_over_only_a_lapsed_lease_or_a_newer_response(table: Any) -> None:
    clock = [NOW]
    lease = RelayLease(table, now=lambda: clock[0])

    holder = lease.claim(RUN, "resp_1")
    while_held = lease.claim(RUN, "resp_1")
    newer = lease.claim(RUN, "resp_2")
    holder_renews = lease.renew(RUN, "resp_1", holder or "")
    clock[0] += RELAY_LEASE + timedelta(seconds=1)
    after_lapse = lease.claim(RUN, "resp_2")

    assert holder
    assert newer
    assert after_lapse
    assert while_held is None
    assert holder_renews is False  # it stops: a newer response's relay has the lease


class Listeners:
    """Stands in for the posts: how many connections still listen after each."""

    def __init__(self, listening: Sequence[int], *, comes_back: bool = False) -> None:
        self.posted: list[BaseModel] = []
        self._listening = list(listening)
        self._comes_back = comes_back  # someone subscribes again as the last one leaves

    def to_run(self, run_id: str, messages: Sequence[BaseModel]) -> int:
        self.posted.extend(messages)
        return self._listening.pop(0) if self._listening else 1

    def listening(self, run_id: str) -> bool:
        return self._comes_back


class Backend:
    """The response's text as numbered events, the same ones on every read."""

    def __init__(self, pieces: list[str]) -> None:
        self.events = list(enumerate(pieces, start=3))
        self.reads: list[int] = []

    def text_deltas(self, remote_id: str, *, after: int) -> Iterator[tuple[int, str]]:
        self.reads.append(after)
        return iter([(number, text) for number, text in self.events if number > after])


def going_run(response_id: str) -> RunRecord:
    return RunRecord(
        run_id=RUN,
        thread_id="thr_1",
        user_id="alice",
        assistant="data_analyst",
        created_at=NOW,
        status=RunStatus.IN_PROGRESS,
        remote_run_id=response_id,
    )


@pytest.fixture
def watched_run(table: Any) -> RunRecord:
    runs = RunStore(table)
    runs.put_new(going_run("resp_1"))
    watched = runs.watch("thr_1", RUN)
    assert watched is not None
    assert runs.watch("thr_1", RUN) is None  # watched once
    return watched


def test_a_relay_nobody_listens_to_stops_and_the_next_resumes_after_it(
    table: Any, watched_run: RunRecord
) -> None:
    backend = Backend(["Revenue ", "grew ", "in ", "every ", "region."])
    log = UpdateLog(table)

    def relay(listeners: Listeners) -> Relayed:
        parts: Any = (RunStore(table), log, RelayLease(table), listeners, backend)
        return TextRelay(*parts, window_seconds=0).relay("thr_1", RUN)

    first = relay(Listeners([1, 0]))
    second = relay(Listeners([]))

    text = [update for update in log.after(RUN, 0) if isinstance(update, TextDelta)]
    assert (first, second) == (Relayed.NOBODY_LISTENS, Relayed.ENDED)
    assert "".join(update.delta for update in text) == "Revenue grew in every region."
    assert [update.seq for update in text] == list(range(1, len(text) + 1))
    assert backend.reads == [-1, 4]  # the second read starts after the last stored piece


def test_a_relay_for_an_ended_or_unwatched_run_is_not_needed(table: Any) -> None:
    runs = RunStore(table)
    runs.put_new(going_run("resp_1"))  # not watched
    parts: Any = (runs, UpdateLog(table), RelayLease(table), Listeners([]), Backend(["x"]))
    relay = TextRelay(*parts)

    assert relay.relay("thr_1", RUN) is Relayed.NOT_NEEDED


def test_a_subscriber_who_came_as_the_relay_gave_up_is_relayed_to(
    table: Any, watched_run: RunRecord
) -> None:
    backend = Backend(["Revenue ", "grew."])
    listeners = Listeners([0], comes_back=True)
    parts: Any = (RunStore(table), UpdateLog(table), RelayLease(table), listeners, backend)

    outcome = TextRelay(*parts, window_seconds=0).relay("thr_1", RUN)

    text = [u for u in UpdateLog(table).after(RUN, 0) if isinstance(u, TextDelta)]
    assert outcome is Relayed.ENDED
    assert "".join(update.delta for update in text) == "Revenue grew."
    assert backend.reads == [-1, 3]
