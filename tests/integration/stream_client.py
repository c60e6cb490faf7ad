"""A client of the WebSocket protocol, as docs/streaming.md tells one to be: it applies the
updates in `seq` order, each once (a repeat is dropped), and resumes after a reconnect from
the last one it applied."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.sync.client import ClientConnection, connect

from local.tokens import issue_token


@dataclass
class RunWatcher:
    url: str
    user: str
    applied: list[dict[str, Any]] = field(default_factory=list)
    repeats: int = 0  # updates received again and dropped
    _waiting: dict[int, dict[str, Any]] = field(default_factory=dict)
    _socket: ClientConnection | None = None

    @property
    def last_seq(self) -> int:
        return self.applied[-1]["seq"] if self.applied else 0

    def subscribe(self, thread_id: str, run_id: str) -> dict[str, Any]:
        """Connect and subscribe from after the last update applied; the server's answer
        (`subscribed` or `error`)."""
        self._socket = connect(f"{self.url}?token={issue_token(self.user)}").__enter__()
        request = {"action": "subscribe", "thread_id": thread_id, "run_id": run_id}
        self._socket.send(json.dumps({**request, "after": self.last_seq}))
        while True:
            message = self.receive(timeout=10)
            if message["type"] in ("subscribed", "error"):
                return message
            self._take(message)

    def drop(self) -> None:
        """Lose the connection (a client going offline)."""
        assert self._socket is not None
        self._socket.close()
        self._socket = None

    def receive(self, timeout: float) -> dict[str, Any]:
        assert self._socket is not None
        return dict(json.loads(self._socket.recv(timeout=timeout)))

    def until(self, done: Any, timeout: float = 30) -> list[dict[str, Any]]:
        """Apply updates until `done(update)` holds for one applied; all applied so far."""
        deadline = time.monotonic() + timeout
        while not any(done(update) for update in self.applied):
            self._take(self.receive(timeout=max(0.01, deadline - time.monotonic())))
        return self.applied

    def _take(self, message: dict[str, Any]) -> None:
        assert "seq" in message, message
        if message["seq"] <= self.last_seq or message["seq"] in self._waiting:
            self.repeats += 1
            return
        self._waiting[message["seq"]] = message
        while self.last_seq + 1 in self._waiting:
            self.applied.append(self._waiting.pop(self.last_seq + 1))

    def close(self) -> None:
        if self._socket is not None:
            self.drop()


def text_of(updates: list[dict[str, Any]]) -> str:
    return "".join(update["delta"] for update in updates if update["type"] == "text.delta")


def finished(update: dict[str, Any]) -> bool:
    return bool(update["type"] == "run.view")
