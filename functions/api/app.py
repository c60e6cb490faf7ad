"""The HTTP API: threads, runs and messages for the caller identified by the JWT's `sub`.

The resolver, its error mapping and the Lambda handler; the routes are in `routes`, one Router
per resource. Reads go to DynamoDB only; the OpenAI SDK is imported by the routes that talk to
OpenAI.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from routes import assistants, files, health, messages, runs, threads, usage
from routes.common import UnauthorizedError, error_response, has_non_json_body, not_json
from threadline.api_models import RunCallback
from threadline.errors import (
    BackendRequestError,
    BudgetExceededError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    QueueFullError,
    ServiceUnavailableError,
    ThreadBusyError,
    TransientBackendError,
    loggable,
)
from threadline.runs.service import RunStartingError
from threadline.store.idempotency import Idempotency

logger = Logger()
tracer = Tracer()


def read_json_body(text: str) -> Any:
    """Read a JSON body as Powertools does, but refuse one nested deeper than the parser can
    go instead of crashing on its RecursionError, and any but an object: every body this API
    takes is one (Powertools would validate an array's first item as the body)."""
    try:
        body = json.loads(text)
    except RecursionError:
        raise InvalidRequestError("body_too_deep", "the JSON body is nested too deeply") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("invalid_request", "the body must be a JSON object")
    return body


app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=read_json_body)
for resource in (health, assistants, threads, runs, files, messages, usage):
    app.include_router(resource.router)

# Asked of clients when the dependency did not say how long to wait.
DEFAULT_RETRY_AFTER_SECONDS = 5


@app.get("/openapi.json", summary="This API's OpenAPI 3.1 document", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=openapi_json())


def openapi_json() -> str:
    document = json.loads(
        app.get_openapi_json_schema(
            title="Threadline API",
            version="1.0.0",
            description="Threads, runs and messages of OpenAI assistants, run on AWS serverless.",
        )
    )
    schemas = document["components"]["schemas"]
    callback = RunCallback.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, schema in callback.pop("$defs", {}).items():
        schemas.setdefault(name, schema)
    schemas["RunCallback"] = callback
    document["webhooks"] = {"runEnded": RUN_ENDED_WEBHOOK}
    return json.dumps(document)


# The callback a run started with `callback_url` POSTs there when it ends.
RUN_ENDED_WEBHOOK = {
    "post": {
        "summary": "A run ended (sent to its callback_url)",
        "description": "Signed per Standard Webhooks: verify with the deployment's signing "
        "secret (e.g. the standardwebhooks package). Tried again until a 2xx answer, with "
        "doubling waits, for up to 24 hours; every try has the same webhook-id.",
        "parameters": [
            {"name": name, "in": "header", "required": True, "schema": {"type": "string"}, **doc}
            for name, doc in (
                ("webhook-id", {"description": "The same for every try: `{run_id}.{status}`."}),
                ("webhook-timestamp", {"description": "This try's time, in epoch seconds."}),
                ("webhook-signature", {"description": "`v1,` and the base64 HMAC-SHA256."}),
            )
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/RunCallback"}}
            },
        },
        "responses": {"2XX": {"description": "Delivered; any other answer is tried again."}},
    }
}


# -- errors: one mapping, one shape -------------------------------------------------------


def retry_after(seconds: float | None) -> dict[str, str]:
    wait = DEFAULT_RETRY_AFTER_SECONDS if seconds is None else max(math.ceil(seconds), 1)
    return {"Retry-After": str(wait)}


@app.exception_handler(RequestUnsupportedContentType)
def unsupported_media_type(error: RequestUnsupportedContentType) -> Response:
    return not_json()


@app.exception_handler(RequestValidationError)
def invalid_request(error: RequestValidationError) -> Response:
    if has_non_json_body(app.current_event):  # a form or multipart body that did not validate
        return not_json()
    problems = error.errors()
    if any(problem.get("type") == "json_invalid" for problem in problems):
        return error_response(400, "invalid_json", "the body is not valid JSON")
    details = [
        {"location": [str(part) for part in item.get("loc", ())], "problem": item.get("msg")}
        for item in problems
    ]
    return error_response(400, "invalid_request", "the request is not valid", details)


@app.exception_handler(UnicodeDecodeError)
def undecodable_body(error: UnicodeDecodeError) -> Response:
    # API Gateway passes a body that is not UTF-8 base64-encoded; Powertools decodes it as
    # UTF-8 to read it as JSON, and JSON is UTF-8.
    return error_response(400, "invalid_json", "the body is not UTF-8 text")


@app.exception_handler(InvalidRequestError)
def rejected_request(error: InvalidRequestError) -> Response:
    return error_response(400, error.code, str(error))


@app.exception_handler(NotFoundError)
def not_found(error: NotFoundError) -> Response:
    return error_response(404, "not_found", str(error))


@app.exception_handler(ThreadBusyError)
def thread_busy(error: ThreadBusyError) -> Response:
    return error_response(409, "run_active", str(error), {"active_run_id": error.active_run_id})


@app.exception_handler(ConflictError)
def conflict(error: ConflictError) -> Response:
    return error_response(409, error.code, str(error))


@app.exception_handler(QueueFullError)
def queue_full(error: QueueFullError) -> Response:
    return error_response(409, "queue_full", str(error), {"limit": error.limit})


@app.exception_handler(IdempotencyValidationError)
def idempotency_key_reused(error: IdempotencyValidationError) -> Response:
    return error_response(
        422, "idempotency_key_reused", "this Idempotency-Key was used with a different body"
    )


@app.exception_handler(IdempotencyAlreadyInProgressError)
def idempotent_request_in_progress(error: IdempotencyAlreadyInProgressError) -> Response:
    return error_response(409, "request_in_progress", "the same request is still being handled")


@app.exception_handler(RunStartingError)
def run_starting(error: RunStartingError) -> Response:
    return error_response(409, "run_starting", "the run is still starting; try again shortly")


@app.exception_handler(BudgetExceededError)
def over_budget(error: BudgetExceededError) -> Response:
    return error_response(
        429,
        "daily_budget_exceeded",
        str(error),
        {"used": error.used, "budget": error.budget, "resets_at": error.reset_at.isoformat()},
        headers=retry_after((error.reset_at - datetime.now(UTC)).total_seconds()),
    )


@app.exception_handler(UnauthorizedError)
def unauthorized(error: UnauthorizedError) -> Response:
    return error_response(401, "unauthorized", "a valid bearer token is required")


@app.exception_handler(BackendRequestError)
def backend_refused(error: BackendRequestError) -> Response:
    logger.warning("OpenAI refused a request", extra=loggable(error))
    return error_response(400, "upstream_rejected", "the assistant service refused the request")


@app.exception_handler(TransientBackendError)
def backend_unavailable(error: TransientBackendError) -> Response:
    wait = retry_after(error.retry_after_seconds)
    if error.rate_limited:
        logger.warning("OpenAI rate limit reached", extra=loggable(error))
        message = "the assistant service is rate-limited; try again later"
        return error_response(429, "rate_limited", message, headers=wait)
    logger.warning("OpenAI unavailable", extra=loggable(error))
    message = "the assistant service is unavailable; try again"
    return error_response(503, "unavailable", message, headers=wait)


@app.exception_handler(ServiceUnavailableError)
def unavailable(error: ServiceUnavailableError) -> Response:
    logger.warning("dependency unavailable", extra=loggable(error))
    message = "a dependency is unavailable; try again"
    return error_response(503, "unavailable", message, headers=retry_after(None))


@app.not_found
def unknown_route(error: Exception) -> Response:
    return error_response(404, "not_found", "no such route")


@app.exception_handler(Exception)
def unexpected_error(error: Exception) -> Response:
    if isinstance(error, ValueError) and has_non_json_body(app.current_event):
        return not_json()  # Powertools' multipart reader fails so on a missing boundary
    # API Gateway's request id: the log line's correlation_id, next to Lambda's own id.
    request_id = app.current_event.request_context.request_id
    logger.error("unexpected error", extra={"request_id": request_id, **loggable(error)})
    return error_response(
        500,
        "internal_error",
        f"an unexpected error occurred; quote request id {request_id}",
        {"request_id": request_id},
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    Idempotency.register_lambda_context(context)
    return app.resolve(event, context)
