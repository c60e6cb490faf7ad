"""POSTing a callback to the addresses its destination was resolved to and checked at (not
to whatever the name resolves to a moment later), with the URL's host for TLS and `Host`.
Only the status is read: a receiver cannot hold the sender with a slow or endless body."""

from __future__ import annotations

from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError

from threadline.callbacks.delivery import CallbackUnanswered
from threadline.callbacks.targets import Destination

CONNECT_SECONDS = 3.0
ANSWER_SECONDS = 10.0  # from sending the request to the status line


class PinnedPoster:
    def __init__(
        self, connect_seconds: float = CONNECT_SECONDS, answer_seconds: float = ANSWER_SECONDS
    ) -> None:
        self._timeout = Timeout(connect=connect_seconds, read=answer_seconds)

    def post(self, destination: Destination, headers: dict[str, str], body: bytes) -> int:
        """The receiver's status from the first address that takes the connection."""
        unanswered = CallbackUnanswered("unreachable")
        for address in destination.addresses:
            try:
                return self._post_to(address, destination, headers, body)
            except NewConnectionError:
                continue  # not reachable there (e.g. no IPv6 route): the next address
            except TimeoutError:
                unanswered = CallbackUnanswered("timeout")
            except HTTPError:
                unanswered = CallbackUnanswered("unreachable")
            break
        raise unanswered

    def _post_to(
        self, address: str, destination: Destination, headers: dict[str, str], body: bytes
    ) -> int:
        url = destination.url
        host = url.hostname or ""
        pool: HTTPConnectionPool
        if url.scheme == "https":
            pool = HTTPSConnectionPool(
                address,
                destination.port,
                timeout=self._timeout,
                retries=False,
                server_hostname=host,
                assert_hostname=host,
            )
        else:
            pool = HTTPConnectionPool(
                address, destination.port, timeout=self._timeout, retries=False
            )
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        with pool:
            # No redirects: one could lead anywhere, past the checks.
            response = pool.urlopen(
                "POST",
                target,
                body=body,
                headers={**headers, "host": url.netloc},
                redirect=False,
                preload_content=False,
            )
            return response.status
