"""API Gateway HTTP API (payload format 2.0) events, as the service builds them.

Used by the local HTTP server and by tests that call the api handler directly.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl


def http_api_event(
    method: str,
    path: str,
    *,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    query: str = "",
    claims: dict[str, Any] | None = None,
    route_key: str | None = None,
    path_parameters: dict[str, str] | None = None,
    stage: str = "$default",
) -> dict[str, Any]:
    headers = {name.lower(): value for name, value in (headers or {}).items()}
    raw = body.encode() if isinstance(body, str) else body
    is_text = raw is None or headers.get("content-type", "application/json").startswith(
        ("application/json", "text/")
    )
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key or f"{method.upper()} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key or f"{method.upper()} {path}",
            "stage": stage,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        event["queryStringParameters"] = dict(pairs)
    if path_parameters:
        event["pathParameters"] = path_parameters
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    if raw is not None:
        text = _utf8(raw) if is_text else None
        if text is not None:
            event["body"] = text
        else:  # binary, or labelled text but not UTF-8: API Gateway passes it base64-encoded
            event["body"] = base64.b64encode(raw).decode()
            event["isBase64Encoded"] = True
    return event


def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None
