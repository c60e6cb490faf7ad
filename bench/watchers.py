"""A client per run subscribed to its updates over the WebSocket API, as a chat window would be
(subscribing as soon as the run exists, reading until the run's final view), for the cost of
a streamed run: the messages API Gateway would bill and the connection time."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

from websockets.sync.client import connect

from bench.stack_runs import StackRun
from local.stack_session import LocalThreadline
from local.tokens import issue_token

NOT_YET_SECONDS = 0.05  # a run not recorded yet is subscribed to again after this


@dataclass
class Watch:
    run: StackRun
    messages: int = 0  # sent and received: API Gateway bills both
    text_pieces: int = 0
    text_before_end: bool = False
    connected_s: float = 0.0
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


class Watchers:
    def __init__(self, product: LocalThreadline, runs: list[StackRun]) -> None:
        assert product.websocket is not None
        self._url = product.websocket.url
        self.watches = [Watch(run) for run in runs]
        self._threads = [
            threading.Thread(target=self._watch, args=(watch,), daemon=True)
            for watch in self.watches
        ]
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _watch(self, watch: Watch) -> None:
        subscribe = json.dumps(
            {"action": "subscribe", "thread_id": watch.run.thread.thread_id,
             "run_id": watch.run.run_id}
        )  # fmt: skip
        opened = time.monotonic()
        try:
            with connect(f"{self._url}?token={issue_token(watch.run.user_id)}") as socket:
                ended = False
                socket.send(subscribe)
                watch.messages += 1
                while True:
                    message = json.loads(socket.recv(timeout=600))
                    watch.messages += 1
                    if message["type"] == "error":
                        if message["code"] != "not_found":  # else: not recorded yet
                            raise RuntimeError(message)
                        time.sleep(NOT_YET_SECONDS)
                        socket.send(subscribe)
                        watch.messages += 1
                    elif message["type"] == "text.delta":
                        watch.text_pieces += 1
                        watch.text_before_end = watch.text_before_end or not ended
                    elif message["type"] == "run.status":
                        ended = message["status"] in ("completed", "failed", "cancelled")
                    elif message["type"] == "run.view":
                        break
        except Exception as error:  # reported with the figures, not raised from a thread
            watch.error = repr(error)
        watch.connected_s = time.monotonic() - opened
        watch.done.set()
