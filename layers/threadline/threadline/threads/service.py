"""The API's thread operations, each one call from a route: get or create a user's thread for
a purpose (with its remote thread), read, list a page at a time, delete, read the history.

The stores and the backend are passed in; the thread creator, the backend and the cleaner as
providers, built on first use, so reading a thread never builds an OpenAI client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from threadline.errors import ThreadBusyError
from threadline.store.cursors import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from threadline.backends.base import AssistantBackend
    from threadline.cleanup import Cleaner
    from threadline.runs.records import Message, RunStore
    from threadline.threads.creation import ThreadCreator
    from threadline.threads.records import Thread, ThreadCursorPage, ThreadStore


@dataclass(frozen=True)
class MessagesPage:
    messages: list[Message]
    next_cursor: str | None  # opaque; None on the last page


class ThreadService:
    def __init__(
        self,
        *,
        threads: ThreadStore,
        creator: Callable[[], ThreadCreator],
        runs: RunStore,
        backend: Callable[[], AssistantBackend],
        cleaner: Callable[[], Cleaner],
        backend_name: str,
        reuse_for: timedelta,
    ) -> None:
        self._threads = threads
        self._creator = creator
        self._runs = runs
        self._backend = backend
        self._cleaner = cleaner
        self._backend_name = backend_name
        self._reuse_for = reuse_for

    def open(self, user_id: str, purpose: str) -> tuple[Thread, bool]:
        """The user's fresh thread for `purpose`, or a new one with its remote thread (made
        before the record; deleted again if a concurrent call won); True if created."""
        remote = self._backend()
        return self._creator().get_or_create(
            user_id,
            purpose,
            reuse_for=self._reuse_for,
            backend=self._backend_name,
            create_remote=remote.create_thread,
            delete_remote=remote.delete_thread,
        )

    def get(self, user_id: str, thread_id: str) -> Thread:
        """The user's thread; NotFoundError if absent, someone else's, or being deleted."""
        return self._threads.get(user_id, thread_id)

    def page(self, user_id: str, *, limit: int, cursor: str | None) -> ThreadCursorPage:
        """The user's threads, newest first, `limit` at a time from an opaque cursor
        (InvalidRequestError if it is not one of ours)."""
        return self._threads.list_from_cursor(user_id, limit=limit, cursor=cursor)

    def delete(self, user_id: str, thread_id: str) -> None:
        """Delete the user's thread here and remotely; ThreadBusyError while a run holds it.

        Claiming it first stops a run or an upload from starting while it is being deleted.
        """
        thread = self._threads.get(user_id, thread_id)
        if not self._threads.claim_for_purge(thread, idle_for=timedelta(0)):
            raise ThreadBusyError(thread_id, self._threads.get(user_id, thread_id).active_run_id)
        self._cleaner().purge(thread)

    def messages(
        self, user_id: str, thread_id: str, *, runs: int, cursor: str | None, newest_first: bool
    ) -> MessagesPage:
        """The history of the user's thread, `runs` runs at a time from an opaque cursor."""
        self._threads.get(user_id, thread_id)  # ownership
        page = self._runs.messages(
            thread_id,
            runs=runs,
            after_run_id=decode_cursor(cursor) if cursor else None,
            newest_first=newest_first,
        )
        return MessagesPage(
            messages=page.messages,
            next_cursor=encode_cursor(page.next_run_id) if page.next_run_id else None,
        )
