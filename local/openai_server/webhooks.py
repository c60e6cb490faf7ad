"""Standard Webhooks signing (as `client.webhooks.unwrap` verifies it) and background delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from local.openai_server.engine import new_id

WebhookSender = Callable[[str, bytes, dict[str, str]], None]

DELIVERY_TIMEOUT_SECONDS = 2.0
RETRY_DELAYS_SECONDS = (0.05, 0.2, 0.5)  # so at most four attempts
DELIVERY_WORKERS = 4


def signing_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign_webhook(
    payload: dict[str, Any],
    secret: str,
    *,
    timestamp: int | None = None,
    webhook_id: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery. The timestamp is real wall time (not the server's
    clock), because receivers check it against their own time."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    webhook_id = webhook_id or new_id("wh_")
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
    return body, headers


def post_webhook(url: str, body: bytes, headers: dict[str, str]) -> None:
    """Default sender: an HTTP POST; non-2xx answers raise, so the delivery is retried."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT_SECONDS) as answer:  # nosec B310: the configured http(s) URL
        if not 200 <= answer.status < 300:
            raise OSError(f"webhook answered {answer.status}")


class WebhookDispatcher:
    """Delivers queued events from a few threads at once, as OpenAI does (in no guaranteed
    order), retrying each a few times on failure."""

    def __init__(self, sender: Callable[[], WebhookSender]) -> None:
        self._sender = sender  # looked up per delivery, so tests can swap it at any time
        self._idle = threading.Condition()
        self._pending = 0
        self._executor: ThreadPoolExecutor | None = None
        self.retry_delays: tuple[float, ...] = RETRY_DELAYS_SECONDS
        self.delivered = 0
        self.failed = 0

    def enqueue(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        with self._idle:
            self._pending += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(DELIVERY_WORKERS, thread_name_prefix="webhooks")
            self._executor.submit(self._work, url, body, headers)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self) -> None:
        """Drop what is still queued; a delivery under way ends on its own."""
        with self._idle:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def _work(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        ok = self._deliver(url, body, headers)
        with self._idle:
            self._pending -= 1
            self.delivered += ok
            self.failed += not ok
            self._idle.notify_all()

    def _deliver(self, url: str, body: bytes, headers: dict[str, str]) -> bool:
        for delay in (0.0, *self.retry_delays):
            time.sleep(delay)
            try:
                self._sender()(url, body, headers)
            except Exception:  # nosec B112: any failure of the receiver means "retry"
                continue
            return True
        return False
