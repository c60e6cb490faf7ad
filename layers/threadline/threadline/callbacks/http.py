"""POSTing a callback to the address its destination was resolved to and checked at (not to
whatever the name resolves to a moment later), with the URL's host for TLS and `Host`."""

from __future__ import annotations

from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.exceptions import HTTPError, TimeoutError

from threadline.callbacks.delivery import CallbackUnanswered
from threadline.callbacks.targets import Destination

TIMEOUT_SECONDS = 10.0


class PinnedPoster:
    def __init__(self, timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self._timeout = Timeout(total=timeout_seconds)

    def post(self, destination: Destination, headers: dict[str, str], body: bytes) -> int:
        url = destination.url
        host = url.hostname or ""
        pool: HTTPConnectionPool
        if url.scheme == "https":
            pool = HTTPSConnectionPool(
                destination.address,
                destination.port,
                timeout=self._timeout,
                retries=False,
                server_hostname=host,
                assert_hostname=host,
            )
        else:
            pool = HTTPConnectionPool(
                destination.address, destination.port, timeout=self._timeout, retries=False
            )
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        try:
            with pool:
                # No redirects: one could lead anywhere, past the checks.
                response = pool.urlopen(
                    "POST",
                    target,
                    body=body,
                    headers={**headers, "host": url.netloc},
                    redirect=False,
                )
                return response.status
        except TimeoutError:
            raise CallbackUnanswered("timeout") from None
        except HTTPError:
            raise CallbackUnanswered("unreachable") from None
