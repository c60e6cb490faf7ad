"""An ASGI app served by uvicorn on 127.0.0.1 in a thread of this process: its port is bound
when made (so its URL is known before it starts), it serves between enter and exit. The local
servers (MCP, WebSocket API, console) are ServedApps."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn


class ServedApp:
    """`websocket_protocol` and `websocket_message_bytes`: how uvicorn serves WebSockets (its
    protocol class, and the largest message it takes: 16 MiB unless told)."""

    def __init__(
        self,
        app: Any,
        *,
        port: int = 0,
        name: str = "app",
        websocket_protocol: type[asyncio.Protocol] | None = None,
        websocket_message_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._name = name
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="on",
            ws=websocket_protocol or "auto",
            ws_max_size=websocket_message_bytes,
            ws_ping_interval=None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:  # bounded: uvicorn starts in milliseconds
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the local {self._name} did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
