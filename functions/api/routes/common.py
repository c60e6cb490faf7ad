"""What every route shares: the caller, the documented answers, parameter types, the JSON-only
body rule and the error shape."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from pydantic import BaseModel

from threadline.api_models import ErrorBody

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

ERRORS: dict[int, OpenAPIResponse] = {
    status: {"description": meaning, "content": {"application/json": {"model": ErrorBody}}}
    for status, meaning in {
        400: "Invalid request",
        401: "Missing or invalid token",
        404: "Not found (or not yours)",
        409: "Conflicts with an active run",
        415: "The body is not application/json",
        422: "Idempotency-Key reused with a different body",
        429: "Daily token budget spent, or OpenAI's rate limit reached (see Retry-After)",
        500: "Unexpected error; details.request_id identifies it in the logs",
        503: "A dependency is unavailable; retry after Retry-After",
    }.items()
}


def answers(**by_status: type[BaseModel] | None) -> dict[int, OpenAPIResponse]:
    """The route's success answers (e.g. `answers(_201=ThreadView)`) plus the error ones."""
    documented = dict(ERRORS)
    for key, model in by_status.items():
        answer: OpenAPIResponse = {"description": "Success"}
        if model:
            answer["content"] = {"application/json": {"model": model}}
        documented[int(key.lstrip("_"))] = answer
    return documented


Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=512)]
# Ids are ours (threadline.ids: a prefix and hex digits); a longer or odder one is refused
# before it reaches DynamoDB, which fails on sort keys over 1 KB.
Id = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class UnauthorizedError(Exception):
    pass


def caller(router: BaseRouter) -> str:
    """The user is the token's subject; API Gateway's JWT authorizer has verified it."""
    event = router.current_event
    if not isinstance(event, APIGatewayProxyEventV2):
        raise UnauthorizedError
    claims = event.request_context.authorizer.jwt_claim or {}
    subject = claims.get("sub")
    if not subject:
        raise UnauthorizedError
    return str(subject)


def json_response(status: int, body: BaseModel, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=body,
        headers=headers,
    )


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"code": code, "message": message, "details": details}}
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


# -- bodies: JSON only ----------------------------------------------------------------------


def has_non_json_body(event: BaseProxyEvent) -> bool:
    """Whether the request carries a body that is not JSON. Powertools reads form and
    multipart bodies too; this API documents JSON only (a body without a content type is
    read as JSON, as Powertools does)."""
    media_type = event.headers.get("content-type", "").partition(";")[0].strip().lower()
    return bool(event.body) and media_type not in ("", "application/json")


def not_json() -> Response:
    return error_response(415, "unsupported_media_type", "the body must be application/json")


def json_bodies_only(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """For the routes that read a body: refuse a form or multipart one that Powertools read
    and validated as if it were JSON."""
    if has_non_json_body(app.current_event):
        return not_json()
    return next_middleware(app)
