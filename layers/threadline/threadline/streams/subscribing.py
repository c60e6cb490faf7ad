"""A subscription: a connection's owner may watch a run of their own, from where they left."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from threadline.errors import NotFoundError, validation_problems
from threadline.runs.records import RunStore
from threadline.streams.broadcast import Broadcast
from threadline.streams.log import Subscriptions, UpdateLog
from threadline.streams.messages import StreamError, Subscribe, Subscribed

# Starts a relay of the run's text (an asynchronous invocation of RelayText).
StartRelay = Callable[[str, str], None]


class Subscriber:
    def __init__(
        self,
        runs: RunStore,
        log: UpdateLog,
        subscriptions: Subscriptions,
        broadcast: Broadcast,
        *,
        start_relay: StartRelay | None,  # None: the backend's text cannot be streamed
    ) -> None:
        self._runs = runs
        self._log = log
        self._subscriptions = subscriptions
        self._broadcast = broadcast
        self._start_relay = start_relay

    def subscribe(self, user_id: str, connection_id: str, body: str | None) -> None:
        """Subscribe the connection and send it `subscribed` and the updates it missed, or
        an `error` that says why not (a run of another user's is not found, as one that does
        not exist)."""
        try:
            request = Subscribe.model_validate_json(body or "")
        except ValidationError as error:
            problems = validation_problems(error, what="the message")
            self._refuse(connection_id, "bad_request", problems, None)
            return
        try:
            run = self._runs.get(request.thread_id, request.run_id)
        except NotFoundError:
            run = None
        if run is None or run.user_id != user_id:
            self._refuse(connection_id, "not_found", "no such run", request.run_id)
            return
        # Subscribed before the run is marked watched: the change that marks it makes the
        # updates so far, and they are posted to the subscriptions it finds.
        self._subscriptions.add(run.run_id, connection_id)
        run = self._runs.watch(run.thread_id, run.run_id) or run
        missed = self._log.after(run.run_id, request.after)
        acknowledged = Subscribed(run_id=run.run_id, after=request.after, status=run.status)
        if not self._broadcast.to_connection(connection_id, [acknowledged, *missed]):
            self._subscriptions.remove(run.run_id, connection_id)
            return
        if self._start_relay and not run.status.is_terminal and run.remote_run_id:
            self._start_relay(run.thread_id, run.run_id)

    def _refuse(self, connection_id: str, code: str, message: str, run_id: str | None) -> None:
        self._broadcast.to_connection(
            connection_id, [StreamError(code=code, message=message, run_id=run_id)]
        )
