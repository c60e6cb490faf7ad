"""Network faults the server injects per request, scripted or seeded-random, so a client's
handling of errors, resets, lost replies and timeouts can be tested against the real SDK.

    server.faults.add(Fault.lost_reply(), method="POST", path="/v1/responses")
    server.faults.randomly(rate=0.2, seed=1234)

`reset` and `lost_reply` close the socket under the werkzeug HTTP server. Through
`sdk_client` (in-process, no socket) they reach the SDK as a transport error, which it raises
as `openai.APIConnectionError`; `slow_reply` there only delays the answer, since no socket
timeout applies, so test client timeouts over HTTP (`start_background`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NoReturn

from werkzeug.wrappers import Request, Response

from local.openai_server.wire import scripted_http_error

FaultKind = Literal["http_error", "reset", "lost_reply", "slow_reply"]

LOCAL_PREFIX = "/_local/"  # the server's own routes: never faulted


class ConnectionDropped(ConnectionError):
    """Raised by the app once it has closed the client's socket. Werkzeug's server treats a
    `ConnectionError` from the app as a dropped connection: it writes no 500 page and logs
    nothing."""


def drop_connection(request: Request) -> NoReturn:
    """Close the client's connection without a reply (in-process there is no socket, and the
    exception is what the caller sees)."""
    # Left unread, the body would be taken for the connection's next request (werkzeug keeps
    # reading a keep-alive connection) and logged as a bad one.
    request.get_data()
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # the client may already have gone
            sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionDropped("connection dropped by an injected fault")


@dataclass(frozen=True)
class Fault:
    """One injected network fault. Build with the classmethods."""

    kind: FaultKind
    status: int = 0
    retry_after: float | None = None
    seconds: float = 0.0

    @classmethod
    def http_error(cls, status: int, retry_after: float | None = None) -> Fault:
        """Answered with this OpenAI-style error before any work is done."""
        if status < 400:
            raise ValueError(f"an HTTP error needs a 4xx/5xx status, not {status}")
        return cls("http_error", status=status, retry_after=retry_after)

    @classmethod
    def reset(cls) -> Fault:
        """The connection is closed before any work is done, with no HTTP response."""
        return cls("reset")

    @classmethod
    def lost_reply(cls) -> Fault:
        """The request is carried out in full, then the connection closes without the reply."""
        return cls("lost_reply")

    @classmethod
    def slow_reply(cls, seconds: float) -> Fault:
        """The request is carried out, then the reply is held `seconds` (without the server
        lock), so a client with a shorter timeout gives up although the work happened."""
        if seconds < 0:
            raise ValueError("a reply cannot be held for negative seconds")
        return cls("slow_reply", seconds=seconds)

    def apply(
        self,
        request: Request,
        respond: Callable[[Request], Response],
        hold: Callable[[float], object] = time.sleep,
    ) -> Response:
        """Answer `request` as this fault says; `respond` does the request's work, `hold`
        keeps a slow reply back (for at most the given seconds)."""
        if self.kind == "http_error":
            return scripted_http_error(self.status, self.retry_after).to_response()
        if self.kind == "reset":
            drop_connection(request)
        response = respond(request)
        if self.kind == "lost_reply":
            drop_connection(request)
        if self.kind == "slow_reply":
            hold(self.seconds)
        return response


# What `Faults.randomly` picks from unless told otherwise.
RANDOM_FAULTS = (Fault.http_error(429), Fault.http_error(500), Fault.reset(), Fault.lost_reply())


@dataclass(frozen=True)
class _Match:
    methods: tuple[str, ...]  # upper case; empty: any method
    paths: tuple[str, ...]

    def __call__(self, method: str, path: str) -> bool:
        method_ok = not self.methods or method.upper() in self.methods
        return method_ok and any(fnmatch.fnmatchcase(path, pattern) for pattern in self.paths)


@dataclass
class _Planned:
    match: _Match
    fault: Fault
    passes_left: int  # matching requests still to let through before this one is injected


@dataclass(frozen=True)
class _Chaos:
    rate: float
    rng: random.Random
    kinds: tuple[Fault, ...]
    match: _Match


class Faults:
    """The faults the server injects. A request takes the first scripted fault (FIFO) whose
    method and path match it, consuming it; if none matches and random mode is on, it gets a
    fault with probability `rate`. Paths are fnmatch globs over the URL path without the query
    string, case-sensitive, where `*` also crosses "/": "/v1/responses" matches only that path,
    "/v1/responses*" its sub-paths too. The server's own `/_local/` routes are never faulted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._planned: list[_Planned] = []
        self._chaos: _Chaos | None = None
        self._release = threading.Event()

    def add(
        self, fault: Fault, method: str | None = None, path: str = "/v1/*", *, after: int = 0
    ) -> None:
        """Inject `fault` once, into the next request matching `method` (None: any method) and
        the `path` glob (by default every API path), once `after` matching requests have
        passed untouched."""
        match = _Match((method.upper(),) if method else (), (path,))
        with self._lock:
            self._planned.append(_Planned(match, fault, after))

    def randomly(
        self,
        rate: float,
        seed: int,
        kinds: Sequence[Fault] = RANDOM_FAULTS,
        methods: Sequence[str] = ("POST", "GET", "DELETE"),
        paths: Sequence[str] = ("/v1/*",),
    ) -> None:
        """From now on, fault each matching request with probability `rate`, the fault chosen
        uniformly from `kinds`; every draw comes from one `random.Random(seed)`, so the same
        sequence of requests gets the same faults."""
        if not 0 <= rate <= 1:
            raise ValueError(f"rate must be from 0 to 1, not {rate}")
        if not kinds:
            raise ValueError("random faults need at least one kind")
        match = _Match(tuple(m.upper() for m in methods), tuple(paths))
        with self._lock:
            draws = random.Random(seed)  # nosec B311: reproducible faults, not a secret
            self._chaos = _Chaos(rate, draws, tuple(kinds), match)

    def take(self, method: str, path: str) -> Fault | None:
        """The fault for this request, if any (a scripted one is consumed)."""
        if path.startswith(LOCAL_PREFIX):
            return None
        with self._lock:
            for index, planned in enumerate(self._planned):
                if planned.match(method, path):
                    if planned.passes_left:
                        planned.passes_left -= 1
                        return None
                    del self._planned[index]
                    return planned.fault
            chaos = self._chaos
            if chaos is None or not chaos.match(method, path):
                return None
            if chaos.rng.random() >= chaos.rate:
                return None
            return chaos.rng.choice(chaos.kinds)

    def hold(self, seconds: float) -> None:
        """Hold a slow reply back for `seconds`, or until `clear` lets every held reply go."""
        with self._lock:
            release = self._release
        release.wait(seconds)

    def clear(self) -> None:
        """Forget the scripted faults, turn random mode off and send the replies held."""
        with self._lock:
            self._planned.clear()
            self._chaos = None
            self._release.set()
            self._release = threading.Event()

    def __len__(self) -> int:
        """How many scripted faults are still waiting for their request."""
        with self._lock:
            return len(self._planned)
