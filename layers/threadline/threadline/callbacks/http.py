"""POSTing a callback to the addresses its destination was resolved to and checked at (not
to whatever the name resolves to a moment later), with the URL's host for TLS and `Host`.

A try has a deadline: 3 s to connect to an address (the next one is tried if it refuses),
then 10 s for the request to go and the status line and headers to come back, however
slowly the receiver dribbles them - a watchdog shuts the socket down at the deadline. The body
of the answer is never read.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from threadline.callbacks.delivery import CallbackUnanswered
from threadline.callbacks.targets import Destination

CONNECT_SECONDS = 3.0
ANSWER_SECONDS = 10.0


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to a given address, verified for (and naming, by SNI) the URL's host."""

    def __init__(
        self, address: str, port: int, *, hostname: str, timeout: float, tls: ssl.SSLContext
    ) -> None:
        super().__init__(address, port, timeout=timeout, context=tls)
        self._hostname = hostname
        self._tls = tls

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self._hostname)


class PinnedPoster:
    def __init__(
        self, connect_seconds: float = CONNECT_SECONDS, answer_seconds: float = ANSWER_SECONDS
    ) -> None:
        self._connect_seconds = connect_seconds
        self._answer_seconds = answer_seconds
        self._tls = ssl.create_default_context()

    def post(self, destination: Destination, headers: dict[str, str], body: bytes) -> int:
        """The receiver's status from the first address that takes the connection."""
        for address in destination.addresses:
            connection = self._connection(address, destination)
            try:
                try:
                    connection.connect()
                except OSError:
                    continue  # refused, unreachable or too slow there: the next address
                return self._answer(connection, destination, headers, body)
            finally:
                connection.close()
        raise CallbackUnanswered("unreachable")

    def _connection(self, address: str, destination: Destination) -> http.client.HTTPConnection:
        if destination.url.scheme == "https":
            return _PinnedHTTPSConnection(
                address,
                destination.port,
                hostname=destination.url.hostname or "",
                timeout=self._connect_seconds,
                tls=self._tls,
            )
        return http.client.HTTPConnection(address, destination.port, timeout=self._connect_seconds)

    def _answer(
        self,
        connection: http.client.HTTPConnection,
        destination: Destination,
        headers: dict[str, str],
        body: bytes,
    ) -> int:
        url = destination.url
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        with _deadline(connection, self._answer_seconds) as expired:
            try:
                # Never followed: a redirect is an answer like any other (and not a 2xx).
                headers = {**headers, "host": url.netloc}
                connection.request("POST", target, body=body, headers=headers)
                status = connection.getresponse().status
            except (OSError, http.client.HTTPException):
                raise CallbackUnanswered("timeout" if expired.is_set() else "unreachable") from None
        if expired.is_set():  # cut off mid-answer: what was read may look complete
            raise CallbackUnanswered("timeout")
        return status


@contextmanager
def _deadline(connection: http.client.HTTPConnection, seconds: float) -> Iterator[threading.Event]:
    """Shut the connection's socket down after `seconds` unless the block ended first."""
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        if connection.sock is not None:
            with contextlib.suppress(OSError):  # closed meanwhile
                connection.sock.shutdown(socket.SHUT_RDWR)

    if connection.sock is not None:
        connection.sock.settimeout(seconds)
    watchdog = threading.Timer(seconds, expire)
    watchdog.start()
    try:
        yield expired
    finally:
        watchdog.cancel()
