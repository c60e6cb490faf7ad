"""Sending a run's callback when it ends: its view POSTed to the URL its request named, signed
per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`), retried with
exponential backoff for up to a day, its delivery state kept on the run's record.

At least once: a receiver may see a callback again (a lost answer, a retried message); the
`webhook-id` is the same for every attempt, so it can drop repeats.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from standardwebhooks import Webhook

from threadline import clock
from threadline.callbacks.state import CallbackState
from threadline.callbacks.targets import CallbackAddressRefused, CallbackTargets, Destination
from threadline.errors import InvalidRequestError, NotFoundError
from threadline.events.changes import RunEventDetail
from threadline.models import RunStatus
from threadline.runs.records import RunRecord, RunStore

GIVE_UP_AFTER = timedelta(hours=24)
LONGEST_RETRY_DELAY = timedelta(hours=2)
USER_AGENT = "Threadline-Callbacks/1"


class CallbackUnanswered(Exception):
    """No HTTP answer: a timeout, or no connection."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Poster(Protocol):
    def post(self, destination: Destination, headers: dict[str, str], body: bytes) -> int:
        """POST to the destination's address; its HTTP status, or CallbackUnanswered."""
        ...


def retry_delay(attempt: int, first: int) -> int:
    """Seconds before attempt `attempt + 1`: `first`, doubling with each attempt, at most
    LONGEST_RETRY_DELAY."""
    longest = int(LONGEST_RETRY_DELAY.total_seconds())
    return min(first * 2 ** min(attempt - 1, 20), longest)


class CallbackDeliveries:
    def __init__(
        self,
        *,
        runs: RunStore,
        targets: CallbackTargets,
        poster: Poster,
        secret: Callable[[], str],
        view: Callable[[RunRecord], object],
        first_retry_seconds: int,
        now: Callable[[], datetime] = clock.utc_now,
    ) -> None:
        self._runs = runs
        self._targets = targets
        self._poster = poster
        self._secret = secret
        self._view = view
        self._first_retry_seconds = first_retry_seconds
        self._now = now

    def deliver(
        self, event: RunEventDetail, *, queued_at: datetime, attempt: int = 1
    ) -> int | None:
        """Send the callback of the run `event` reports (queued at `queued_at`, received for
        the `attempt`th time). None once there is nothing more to do (delivered, given up,
        no callback); otherwise the seconds to wait before trying again."""
        run = self._awaiting_callback(event)
        if run is None or run.callback is None:
            return None
        if event.status is RunStatus.REQUIRES_APPROVAL:
            return self._tell_waiting(run, event, queued_at, attempt)
        return self._tell_ended(run, run.callback, event, queued_at)

    def _tell_ended(
        self, run: RunRecord, state: CallbackState, ended: RunEventDetail, queued_at: datetime
    ) -> int | None:
        """The run ended: the tries are counted on its record, not by the queue's receives."""
        now = self._now()
        state = state.model_copy(update={"attempts": state.attempts + 1, "last_attempt_at": now})
        try:
            status = self._send(run, state, ended, now)
        except CallbackAddressRefused:
            return self._record(run, state, error="address_not_allowed", give_up=True)
        except InvalidRequestError:  # the deployment no longer allows its host
            return self._record(run, state, error="url_not_allowed", give_up=True)
        except CallbackUnanswered as unanswered:
            return self._retry_or_give_up(run, state, queued_at, error=unanswered.reason)
        state = state.model_copy(update={"last_status_code": status, "last_error": None})
        if 200 <= status < 300:
            self._runs.record_callback(
                ended.thread_id, ended.run_id, state.model_copy(update={"delivered_at": now})
            )
            return None
        return self._retry_or_give_up(run, state, queued_at)

    def _tell_waiting(
        self, run: RunRecord, waiting: RunEventDetail, queued_at: datetime, attempt: int
    ) -> int | None:
        """A run waits for its owner's approval: say so while it still waits (at least once,
        as the end's callback; the tries are the queue's receives, and the run's record
        keeps the state of the end's callback only)."""
        if run.status is not RunStatus.REQUIRES_APPROVAL or run.callback is None:
            return None
        try:
            status = self._send(run, run.callback, waiting, self._now())
        except (CallbackAddressRefused, InvalidRequestError):
            return None
        except CallbackUnanswered:
            status = 0
        if 200 <= status < 300:
            return None
        delay = retry_delay(attempt, self._first_retry_seconds)
        return None if self._too_late(delay, queued_at) else delay

    def _too_late(self, delay: int, queued_at: datetime) -> bool:
        """Whether a try `delay` seconds from now would come after a day of trying."""
        return self._now() + timedelta(seconds=delay) - queued_at > GIVE_UP_AFTER

    def _awaiting_callback(self, ended: RunEventDetail) -> RunRecord | None:
        """The run, if its callback is still to be delivered."""
        try:
            run = self._runs.get(ended.thread_id, ended.run_id)
        except NotFoundError:
            return None  # its thread was deleted meanwhile: nobody to tell about what
        state = run.callback
        if state is None or state.delivered_at or state.gave_up_at:
            return None
        return run

    def _send(
        self, run: RunRecord, state: CallbackState, ended: RunEventDetail, now: datetime
    ) -> int:
        """POST the run's view; the receiver's status."""
        try:
            destination = self._targets.destination(state.url)
        except OSError:  # the name did not resolve (for now)
            raise CallbackUnanswered("unresolved") from None
        body = json.dumps(
            {
                "type": f"run.{ended.status.value}",
                "timestamp": clock.iso(now),
                "data": self._view(run),
            },
            default=str,
        )
        headers = self._headers(ended.event_id, now, body)
        return self._poster.post(destination, headers, body.encode())

    def _headers(self, webhook_id: str, now: datetime, body: str) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(self._secret()).sign(webhook_id, now, body),
        }

    def _retry_or_give_up(
        self,
        run: RunRecord,
        state: CallbackState,
        queued_at: datetime,
        *,
        error: str | None = None,
    ) -> int | None:
        delay = retry_delay(state.attempts, self._first_retry_seconds)
        give_up = self._too_late(delay, queued_at)
        return self._record(run, state, error=error, give_up=give_up, delay=delay)

    def _record(
        self,
        run: RunRecord,
        state: CallbackState,
        *,
        error: str | None,
        give_up: bool,
        delay: int | None = None,
    ) -> int | None:
        update: dict[str, object] = {"last_error": error}
        if error is not None:
            update["last_status_code"] = None
        if give_up:
            update["gave_up_at"] = self._now()
        self._runs.record_callback(run.thread_id, run.run_id, state.model_copy(update=update))
        return None if give_up else delay
