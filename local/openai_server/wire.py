"""HTTP plumbing shared by the route modules: OpenAI-style errors, JSON bodies, list pages."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

T = TypeVar("T")

# The error `type` OpenAI puts in the body for each status it answers with.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    429: "requests",
}
# What a scripted error (`Step.http_error`, `Fault.http_error`) says unless told otherwise.
SCRIPTED_HTTP_ERRORS = {
    429: ("Rate limit reached for requests (scripted).", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request (scripted).", None),
}


class ApiError(Exception):
    """Raised by handlers; rendered as `{"error": {message, type, param, code}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def to_response(self) -> Response:
        fallback = "server_error" if self.status >= 500 else "api_error"
        error = {
            "message": self.message,
            "type": ERROR_TYPES.get(self.status, fallback),
            "param": self.param,
            "code": self.code,
        }
        return json_response({"error": error}, status=self.status, headers=self.headers)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def scripted_http_error(
    status: int, retry_after: float | None = None, message: str = ""
) -> ApiError:
    default, code = SCRIPTED_HTTP_ERRORS.get(status, ("Scripted HTTP error.", None))
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    return ApiError(status, message or default, code=code, headers=headers)


def not_found(what: str, object_id: str) -> ApiError:
    return ApiError(404, f"No {what} found with id '{object_id}'.")


def find(store: Mapping[str, T], object_id: str, what: str) -> T:
    if object_id not in store:
        raise not_found(what, object_id)
    return store[object_id]


def json_response(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body), status=status, headers=dict(headers or {}), mimetype="application/json"
    )


def json_body(request: Request) -> dict[str, Any]:
    if not request.get_data():
        return {}
    try:
        body = json.loads(request.get_data())
    except ValueError:
        raise bad_request("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def field(
    body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any = None
) -> Any:
    """`body[name]` checked against `kind`; `default` when absent or null."""
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise bad_request(f"Invalid type for '{name}'.", param=name, code="invalid_type")
    return value


def required(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = field(body, name, kind)
    if value is None or value == "":
        raise bad_request(f"Missing required parameter: '{name}'.", param=name)
    return value


def metadata(body: Mapping[str, Any]) -> dict[str, str]:
    meta = field(body, "metadata", dict, {})
    if len(meta) > 16 or not all(isinstance(v, str) for v in meta.values()):
        raise bad_request("Invalid 'metadata': up to 16 string values.", param="metadata")
    return meta


def page(items: Sequence[dict[str, Any]], args: MultiDict[str, str]) -> dict[str, Any]:
    """A cursor page over `items` (kept oldest first), honouring order/after/before/limit."""
    order = args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request("Invalid 'order': expected 'asc' or 'desc'.", param="order")
    try:
        limit = int(args.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise bad_request("Invalid 'limit': expected an integer from 1 to 100.", param="limit")
    seq = list(items) if order == "asc" else list(reversed(items))
    ids = [item["id"] for item in seq]
    for cursor, keep_after in ((args.get("after"), True), (args.get("before"), False)):
        if cursor is None:
            continue
        if cursor not in ids:
            name = "after" if keep_after else "before"
            raise bad_request(f"Invalid '{name}': no object with id '{cursor}'.", name)
        at = ids.index(cursor)
        seq, ids = (seq[at + 1 :], ids[at + 1 :]) if keep_after else (seq[:at], ids[:at])
    data = seq[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(seq) > limit,
    }


def deleted(object_id: str, object_name: str) -> dict[str, Any]:
    return {"id": object_id, "object": object_name, "deleted": True}
