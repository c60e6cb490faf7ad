"""The answer's text, relayed while someone listens: a relay reads OpenAI's stream of the run's
current response from where the last relay stopped, and stores and posts its text in pieces
(one every `window_seconds` at most, or on reaching PIECE_BYTES, so a fast model costs a write
and a post per piece, not per token). It stops when the response ends, when no one is
subscribed any more, when another relay took the lease over, or once the run's final view is
stored (which carries the whole answer).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Protocol

from threadline import clock
from threadline.runs.records import RunStore
from threadline.streams.broadcast import Broadcast
from threadline.streams.log import RELAY_LEASE, RelayLease, UpdateLog
from threadline.streams.messages import TextDelta

WINDOW_SECONDS = 0.2
PIECE_BYTES = 8 * 1024  # a replay arrives at once: it is cut into pieces of at most this


class TextSource(Protocol):
    """Where the model's text comes from (the Responses backend's `text_deltas`)."""

    def text_deltas(self, remote_id: str, *, after: int) -> Iterator[tuple[int, str]]: ...


class Relayed(StrEnum):
    ENDED = "ended"  # the response's stream ended
    NOBODY_LISTENS = "nobody_listens"
    STOPPED = "stopped"  # another relay holds the lease, or the run's final view is stored
    NOT_NEEDED = "not_needed"  # the run ended, has no response, or is not watched
    HELD = "held"  # another relay is at it


class TextRelay:
    def __init__(
        self,
        runs: RunStore,
        log: UpdateLog,
        lease: RelayLease,
        broadcast: Broadcast,
        backend: TextSource,
        *,
        window_seconds: float = WINDOW_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._runs = runs
        self._log = log
        self._lease = lease
        self._broadcast = broadcast
        self._backend = backend
        self._window = window_seconds
        self._monotonic = monotonic

    def relay(self, thread_id: str, run_id: str) -> Relayed:
        outcome = self._relay_once(thread_id, run_id)
        # A subscription that came while this relay was giving up found the lease held (its
        # relay stopped at once): once the lease is released, it is relayed here after all.
        if outcome is Relayed.NOBODY_LISTENS and self._broadcast.listening(run_id):
            outcome = self._relay_once(thread_id, run_id)
        return outcome

    def _relay_once(self, thread_id: str, run_id: str) -> Relayed:
        run = self._runs.get(thread_id, run_id)
        response_id = run.remote_run_id
        if not run.watched or run.status.is_terminal or response_id is None:
            return Relayed.NOT_NEEDED
        token = self._lease.claim(run_id, response_id)
        if token is None:
            return Relayed.HELD
        try:
            # The run may have started its next response since it was read: relay that one.
            current = self._runs.get(thread_id, run_id).remote_run_id or response_id
            if current != response_id and not self._lease.renew(run_id, current, token):
                return Relayed.STOPPED
            return self._relay(run_id, current, token)
        finally:
            self._lease.release(run_id, token)

    def _relay(self, run_id: str, response_id: str, token: str) -> Relayed:
        through = self._log.text_through(run_id, response_id)
        pending: list[str] = []
        flushed_at = renewed_at = self._monotonic()

        def flush() -> Relayed | None:
            """Store and post what is pending; why to stop, if the relay must."""
            piece = TextDelta(
                run_id=run_id, at=clock.utc_now(), response_id=response_id, delta="".join(pending)
            )
            pending.clear()
            stored = self._log.append_text(piece, through=through or 0, lease=token)
            if stored is None:
                return Relayed.STOPPED
            return None if self._broadcast.to_run(run_id, [stored]) else Relayed.NOBODY_LISTENS

        after = -1 if through is None else through
        for sequence_number, delta in self._backend.text_deltas(response_id, after=after):
            pending.append(delta)
            through = sequence_number
            now = self._monotonic()
            if now - renewed_at >= RELAY_LEASE.total_seconds() / 3:
                renewed_at = now
                if not self._lease.renew(run_id, response_id, token):
                    return Relayed.STOPPED
            full = sum(len(text.encode()) for text in pending) >= PIECE_BYTES
            if full or now - flushed_at >= self._window:
                flushed_at = now
                if stop := flush():
                    return stop
        return (flush() if pending else None) or Relayed.ENDED
