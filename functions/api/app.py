"""The HTTP API: threads, runs and messages for the caller identified by the JWT's `sub`.

Reads go to DynamoDB only; the OpenAI SDK is imported by the routes that talk to OpenAI.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from threadline import runtime
from threadline import table as keys
from threadline.api_models import (
    CreateThreadBody,
    CreateUploadBody,
    ErrorBody,
    FileList,
    FileView,
    Health,
    MessageList,
    MessageView,
    RunAccepted,
    RunView,
    StartRunBody,
    ThreadList,
    ThreadView,
    UsageView,
)
from threadline.cursors import decode_cursor, encode_cursor
from threadline.errors import (
    BackendRequestError,
    BudgetExceededError,
    InvalidRequestError,
    NotFoundError,
    ServiceUnavailableError,
    ThreadBusyError,
    TransientBackendError,
    loggable,
)
from threadline.generated_files import download_urls
from threadline.run_requests import RunStarter
from threadline.runs import RunRecord
from threadline.settings import load_api_settings
from threadline.uploads import PresignedUpload

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

logger = Logger()
tracer = Tracer()


def read_json_body(text: str) -> Any:
    """Read a JSON body as Powertools does, but refuse one nested deeper than the parser can
    go instead of crashing on its RecursionError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidRequestError("body_too_deep", "the JSON body is nested too deeply") from None


app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=read_json_body)

# Asked of clients when the dependency did not say how long to wait.
DEFAULT_RETRY_AFTER_SECONDS = 5

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


class RunRequest(BaseModel):
    """What makes two run requests the same, for the Idempotency-Key header."""

    user_id: str
    thread_id: str
    idempotency_key: str | None
    message: str
    assistant: str


# -- bodies: JSON only ----------------------------------------------------------------------


def has_non_json_body() -> bool:
    """Whether the request carries a body that is not JSON. Powertools reads form and
    multipart bodies too; this API documents JSON only (a body without a content type is
    read as JSON, as Powertools does)."""
    event = app.current_event
    media_type = event.headers.get("content-type", "").partition(";")[0].strip().lower()
    return bool(event.body) and media_type not in ("", "application/json")


def not_json() -> Response:
    return error_response(415, "unsupported_media_type", "the body must be application/json")


def json_bodies_only(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """For the routes that read a body: refuse a form or multipart one that Powertools read
    and validated as if it were JSON."""
    if has_non_json_body():
        return not_json()
    return next_middleware(app)


# -- wiring (built once per cold start, on first use) -------------------------------------


@cache
def run_starter() -> RunStarter:
    import boto3

    settings = load_api_settings()
    return RunStarter(
        threads=runtime.thread_store(),
        runs=runtime.run_store(),
        stepfunctions=boto3.client("stepfunctions"),
        state_machine_arn=settings.state_machine_arn,
        run_timeout_seconds=settings.run_timeout_seconds,
        usage=runtime.usage_ledger(),
        daily_token_budget=settings.daily_token_budget,
    )


@cache
def idempotency_config() -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath="[user_id, thread_id, idempotency_key]",
        payload_validation_jmespath="[message, assistant]",
        expires_after_seconds=24 * 3600,
    )


@cache
def start_run_once() -> Any:
    persistence = DynamoDBPersistenceLayer(
        table_name=load_api_settings().table_name,
        key_attr="PK",
        sort_key_attr="SK",
        expiry_attr="expires_at",
    )
    return idempotent_function(
        _start_run,
        data_keyword_argument="request",
        persistence_store=persistence,
        config=idempotency_config(),
        output_serializer=PydanticSerializer(model=RunRecord),
    )


def _start_run(request: RunRequest) -> RunRecord:
    return run_starter().start(
        request.user_id, request.thread_id, request.message, request.assistant
    )


def caller() -> str:
    """The user is the token's subject; API Gateway's JWT authorizer has verified it."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    subject = claims.get("sub")
    if not subject:
        raise UnauthorizedError
    return str(subject)


class UnauthorizedError(Exception):
    pass


class RunStartingError(Exception):
    """The run has no remote run to cancel yet."""


def json_response(status: int, body: BaseModel, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=body,
        headers=headers,
    )


# -- routes ---------------------------------------------------------------------------------


@app.get("/health", summary="Liveness check (no authentication)")
def health() -> Health:
    return Health()


@app.post(
    "/threads",
    summary="Get or create the caller's thread for a purpose",
    responses=answers(_200=ThreadView, _201=ThreadView),
    middlewares=[json_bodies_only],
)
def create_thread(body: CreateThreadBody) -> Response[ThreadView]:
    settings = load_api_settings()
    remote = runtime.backend()
    thread, created = runtime.thread_store().get_or_create(
        caller(),
        body.purpose,
        max_age=timedelta(hours=settings.thread_max_age_hours),
        backend=settings.openai_backend,
        create_remote=remote.create_thread,
        delete_remote=remote.delete_thread,
    )
    return json_response(HTTPStatus.CREATED if created else HTTPStatus.OK, ThreadView.of(thread))


@app.get(
    "/threads", summary="The caller's threads, newest first", responses=answers(_200=ThreadList)
)
def list_threads(limit: Limit = 20, cursor: Cursor = None) -> ThreadList:
    user = caller()
    start_key = None
    if cursor:
        sort_key = decode_cursor(cursor, prefix="THREAD#")
        start_key = {"PK": keys.user_key(user), "SK": sort_key}
    page = runtime.thread_store().list(user, limit=limit, start_key=start_key)
    return ThreadList(
        threads=[ThreadView.of(thread) for thread in page.threads],
        next_cursor=encode_cursor(page.next_key["SK"]) if page.next_key else None,
    )


@app.get(
    "/threads/<thread_id>",
    summary="One of the caller's threads",
    responses=answers(_200=ThreadView),
)
def get_thread(thread_id: Id) -> ThreadView:
    return ThreadView.of(runtime.thread_store().get(caller(), thread_id))


@app.delete(
    "/threads/<thread_id>",
    summary="Delete a thread here and remotely",
    responses=answers(_204=None),
)
def delete_thread(thread_id: Id) -> Response[None]:
    store = runtime.thread_store()
    thread = store.get(caller(), thread_id)
    # Claiming it first stops a run or an upload from starting while it is being deleted.
    if not store.claim_for_purge(thread, idle_for=timedelta(0)):
        raise ThreadBusyError(thread_id, store.get(thread.user_id, thread_id).active_run_id)
    runtime.cleaner().purge(thread)
    return Response(status_code=HTTPStatus.NO_CONTENT)


@app.post(
    "/threads/<thread_id>/runs",
    summary="Post a message and start a run (202; poll the status URL)",
    responses=answers(_202=RunAccepted),
    middlewares=[json_bodies_only],
)
def start_run(
    thread_id: Id,
    body: StartRunBody,
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key", max_length=128)] = None,
) -> Response[RunAccepted]:
    settings = load_api_settings()
    if len(body.message) > settings.max_message_chars:
        raise InvalidRequestError(
            "message_too_long",
            f"message has {len(body.message)} characters; the limit is "
            f"{settings.max_message_chars}",
        )
    request = RunRequest(
        user_id=caller(),
        thread_id=thread_id,
        idempotency_key=idempotency_key,
        message=body.message,
        assistant=body.assistant,
    )
    run = start_run_once()(request=request) if idempotency_key else _start_run(request)
    status_url = f"/threads/{thread_id}/runs/{run.run_id}"
    accepted = RunAccepted(
        id=run.run_id, thread_id=thread_id, status=run.status, status_url=status_url
    )
    return json_response(HTTPStatus.ACCEPTED, accepted, headers={"Location": status_url})


@app.get(
    "/threads/<thread_id>/runs/<run_id>",
    summary="A run's status and result",
    responses=answers(_200=RunView),
)
def get_run(thread_id: Id, run_id: Id) -> RunView:
    runtime.thread_store().get(caller(), thread_id)  # ownership
    run = runtime.run_store().get(thread_id, run_id)
    # Download URLs are made at read time: they expire within minutes.
    links = download_urls(runtime.s3_client(), load_api_settings().bucket_name, run.generated_files)
    return RunView.of(run, links)


@app.post(
    "/threads/<thread_id>/runs/<run_id>/cancel",
    summary="Cancel an active run (the state machine records it as cancelled)",
    responses=answers(_202=RunView),
)
def cancel_run(thread_id: Id, run_id: Id) -> Response[RunView]:
    from threadline.backends.base import RunHandle

    thread = runtime.thread_store().get(caller(), thread_id)
    run = runtime.run_store().get(thread_id, run_id)
    if run.status.is_terminal or thread.active_run_id != run_id:
        raise InvalidRequestError("run_not_active", f"run {run_id} is not active")
    if not run.remote_run_id:
        raise RunStartingError(run_id)
    runtime.backend().cancel_run(
        RunHandle(thread_remote_id=thread.remote_id, run_remote_id=run.remote_run_id)
    )
    return json_response(HTTPStatus.ACCEPTED, RunView.of(run))


@app.post(
    "/threads/<thread_id>/files",
    summary="Get a presigned POST to upload a file to the thread (ingested when it lands)",
    responses=answers(_201=PresignedUpload),
    middlewares=[json_bodies_only],
)
def create_upload(thread_id: Id, body: CreateUploadBody) -> Response[PresignedUpload]:
    upload = runtime.uploads().create_upload(
        caller(), thread_id, body.filename, body.content_type, body.size
    )
    return json_response(HTTPStatus.CREATED, upload)


@app.get(
    "/threads/<thread_id>/files",
    summary="The thread's uploaded files and their status",
    responses=answers(_200=FileList),
)
def list_files(thread_id: Id) -> FileList:
    records = runtime.uploads().list_files(caller(), thread_id)
    return FileList(files=[FileView.of(record) for record in records])


@app.get(
    "/threads/<thread_id>/messages",
    summary="The thread's history: each run's message and, once completed, its answer",
    description=(
        "Newest first by default. `limit` counts runs; a run that failed, timed out or was "
        "cancelled is not part of the history (the next run continues from the last "
        "completed one)."
    ),
    responses=answers(_200=MessageList),
)
def list_messages(
    thread_id: Id,
    limit: Limit = 20,
    cursor: Cursor = None,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
) -> MessageList:
    runtime.thread_store().get(caller(), thread_id)
    page = runtime.run_store().messages(
        thread_id,
        runs=limit,
        after_run_id=decode_cursor(cursor) if cursor else None,
        newest_first=order == "desc",
    )
    return MessageList(
        messages=[MessageView(id=m.id, role=m.role, text=m.text) for m in page.messages],
        next_cursor=encode_cursor(page.next_run_id) if page.next_run_id else None,
    )


@app.get(
    "/usage", summary="The caller's token usage and daily budget", responses=answers(_200=UsageView)
)
def usage() -> UsageView:
    settings = load_api_settings()
    ledger = runtime.usage_ledger()
    user = caller()
    today = ledger.today(user)
    budget = settings.daily_token_budget or None
    return UsageView(
        today=today,
        daily_token_budget=budget,
        remaining_tokens=max(budget - today.total_tokens, 0) if budget else None,
        resets_at=datetime.combine(
            date.fromisoformat(today.day) + timedelta(days=1), time(), tzinfo=UTC
        ),
        recent_days=ledger.recent(user, days=30),
    )


@app.get("/openapi.json", summary="This API's OpenAPI 3.1 document", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=openapi_json())


def openapi_json() -> str:
    return app.get_openapi_json_schema(
        title="Threadline API",
        version="1.0.0",
        description="Threads, runs and messages of OpenAI assistants, run on AWS serverless.",
    )


# -- errors: one mapping, one shape -------------------------------------------------------


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"code": code, "message": message, "details": details}}
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


def retry_after(seconds: float | None) -> dict[str, str]:
    wait = DEFAULT_RETRY_AFTER_SECONDS if seconds is None else max(math.ceil(seconds), 1)
    return {"Retry-After": str(wait)}


@app.exception_handler(RequestUnsupportedContentType)
def unsupported_media_type(error: RequestUnsupportedContentType) -> Response:
    return not_json()


@app.exception_handler(RequestValidationError)
def invalid_request(error: RequestValidationError) -> Response:
    if has_non_json_body():  # a form or multipart body that did not validate
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
    if isinstance(error, ValueError) and has_non_json_body():
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
    idempotency_config().register_lambda_context(context)
    return app.resolve(event, context)
