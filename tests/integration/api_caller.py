"""A user calling the local HTTP API over real HTTP, with a token of its own."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from local.tokens import issue_token


@dataclass(frozen=True)
class ApiCaller:
    base_url: str
    user: str
    token: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", issue_token(self.user))

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, JSON answer); a 4xx or 5xx is an answer too, not an exception."""
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"content-type": "application/json", "authorization": f"Bearer {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # nosec B310: local URL
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")
