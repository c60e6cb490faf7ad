"""The local API Gateway for the template's WebSocket API: a WebSocket server on 127.0.0.1
that runs $connect through the route's REQUEST authorizer and integration, routes each
message by the API's route selection expression (`$request.body.action`) to its route's
function as API Gateway's proxy events, and serves the management API the functions post
through (`POST /{stage}/@connections/{id}`: 410 GoneException for a closed connection, 413
above 128 KB). As API Gateway it closes a connection whose client sends a frame over 32 KB
or a message over 128 KB (1009), and one idle for ten minutes or open for two hours (1001,
Going away). Not emulated: IAM on the management API.

It also publishes the local identity provider's public keys (`/.well-known/jwks.json`),
which the authorizer fetches as it fetches a real provider's.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from local.aws.local_stack import FunctionInvocationError, LocalStack
from local.aws.records import Invoker, WebSocketApiSpec
from local.served_app import ServedApp

ACCOUNT_ID = "123456789012"
POST_BYTES = 128 * 1024  # the most the management API posts to a connection
GOING_AWAY = 1001
MESSAGE_TOO_BIG = 1009


@dataclass(frozen=True)
class ConnectionLimits:
    """API Gateway's WebSocket quotas (a test may pass smaller ones): the largest frame and
    message a client may send, how long a connection may be idle (nothing sent either way)
    and how long it may last."""

    frame_bytes: int = 32 * 1024
    message_bytes: int = 128 * 1024
    idle_seconds: float = 600.0
    lifetime_seconds: float = 7200.0


def _frames_of_at_most(frame_bytes: int) -> type[WebSocketsSansIOProtocol]:
    """uvicorn's WebSocket protocol, closing the connection (1009) on a frame over
    `frame_bytes` as API Gateway does (uvicorn bounds whole messages itself)."""

    class FramesOfAtMost(WebSocketsSansIOProtocol):
        def handle_text(self, event: Frame) -> None:
            if self._fits(event):
                super().handle_text(event)

        def handle_bytes(self, event: Frame) -> None:
            if self._fits(event):
                super().handle_bytes(event)

        def handle_cont(self, event: Frame) -> None:
            if self._fits(event):
                super().handle_cont(event)

        def _fits(self, event: Frame) -> bool:
            if len(event.data) <= frame_bytes:
                return True
            self.conn.fail(MESSAGE_TOO_BIG, f"frame over {frame_bytes} bytes")
            self.handle_parser_exception()  # tells the app, sends the close, drops the link
            return False

    return FramesOfAtMost


@dataclass
class _Connection:
    connection_id: str
    stage: str
    socket: WebSocket
    connected_at: int  # epoch milliseconds
    source_ip: str
    user_agent: str
    authorizer: dict[str, Any] = field(default_factory=dict)
    # time.monotonic() when it opened and of its last message either way; how it closed.
    opened: float = field(default_factory=time.monotonic)
    last_active: float = field(default_factory=time.monotonic)
    close_code: int = 1000


class LocalWebSocketApi(ServedApp):
    """Serves between enter and exit; `attach` the stack once it is provisioned (the URLs are
    known before, so the template's parameters can name them)."""

    def __init__(
        self,
        *,
        public_keys: Callable[[], dict[str, object]],
        port: int = 0,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self._public_keys = public_keys
        self._limits = limits or ConnectionLimits()
        self._stack: LocalStack | None = None
        self._api: WebSocketApiSpec | None = None
        self._connections: dict[str, _Connection] = {}
        self._lock = threading.Lock()
        app = Starlette(
            routes=[
                Route("/.well-known/jwks.json", self._jwks),
                Route("/{stage}/@connections/{connection_id}", self._manage, methods=["POST"]),
                WebSocketRoute("/{stage}", self._serve),
            ]
        )
        super().__init__(
            app,
            port=port,
            name="WebSocket API",
            websocket_protocol=_frames_of_at_most(self._limits.frame_bytes),
            websocket_message_bytes=self._limits.message_bytes,
        )
        self.origin = f"127.0.0.1:{self.port}"
        self.jwks_url = f"http://{self.origin}/.well-known/jwks.json"

    def attach(self, stack: LocalStack) -> str:
        """Serve the stack's WebSocket API (the template has one); its management URL."""
        (self._api,) = stack.websocket_apis.values()
        self._stack = stack
        return self.management_url

    @property
    def stage(self) -> str:
        return self._attached()[1].stages[0]

    @property
    def url(self) -> str:
        """Where clients connect (`?token=<JWT>`), as the deployed `StreamUrl`."""
        return f"ws://{self.origin}/{self.stage}"

    @property
    def management_url(self) -> str:
        """The management API's endpoint, as the functions' STREAM_ENDPOINT."""
        return f"http://{self.origin}/{self.stage}"

    def _attached(self) -> tuple[LocalStack, WebSocketApiSpec]:
        if self._stack is None or self._api is None:
            raise RuntimeError("the local WebSocket API has no stack attached")
        return self._stack, self._api

    # -- the identity provider's keys ------------------------------------------------------

    async def _jwks(self, _request: Request) -> Response:
        return JSONResponse(self._public_keys())

    # -- connections -----------------------------------------------------------------------

    async def _serve(self, socket: WebSocket) -> None:
        stack, api = self._attached()
        stage = socket.path_params["stage"]
        if stage not in api.stages:
            await socket.close(code=1008)
            return
        client = socket.client
        connection = _Connection(
            connection_id=secrets.token_urlsafe(12),
            stage=stage,
            socket=socket,
            connected_at=int(time.time() * 1000),
            source_ip=client.host if client else "127.0.0.1",
            user_agent=socket.headers.get("user-agent", ""),
        )
        status = await run_in_threadpool(self._connect, stack, api, connection)
        if status != 200:
            message = "Unauthorized" if status == 401 else "Forbidden"
            await socket.send_denial_response(JSONResponse({"message": message}, status))
            return
        await socket.accept()
        with self._lock:
            self._connections[connection.connection_id] = connection
        try:
            while (body := await self._next_message(connection)) is not None:
                failed = await run_in_threadpool(self._message, stack, api, connection, body)
                if failed:
                    await socket.send_text(failed)
        except WebSocketDisconnect as closed:
            connection.close_code = closed.code
        finally:
            with self._lock:
                self._connections.pop(connection.connection_id, None)
            if "$disconnect" in api.routes:
                event = self._event(api, connection, "$disconnect", "DISCONNECT")
                await run_in_threadpool(self._invoke_route, stack, api, "$disconnect", event)

    async def _next_message(self, connection: _Connection) -> str | None:
        """The client's next message; None once the connection is closed for being idle too
        long or open too long."""
        ends = connection.opened + self._limits.lifetime_seconds
        while True:
            now = time.monotonic()
            until = min(connection.last_active + self._limits.idle_seconds, ends)
            if now >= until:
                connection.close_code = GOING_AWAY
                await connection.socket.close(code=GOING_AWAY, reason="Going away")
                return None
            try:
                body = await asyncio.wait_for(connection.socket.receive_text(), until - now)
            except TimeoutError:
                continue  # a post to the client may have kept it active meanwhile
            connection.last_active = time.monotonic()
            return body

    def _connect(self, stack: LocalStack, api: WebSocketApiSpec, connection: _Connection) -> int:
        """The HTTP status API Gateway answers the upgrade with."""
        if "$connect" not in api.routes:
            return 200
        query = dict(connection.socket.query_params)
        headers = dict(connection.socket.headers)
        _, authorizer_id = api.routes["$connect"]
        if authorizer_id is not None:
            authorizer = api.authorizers[authorizer_id]
            if not all(
                self._identity_present(source, query, headers)
                for source in authorizer.identity_source
            ):
                return 401  # API Gateway does not call the authorizer then
            request = {
                "type": "REQUEST",
                "methodArn": f"arn:aws:execute-api:{stack.region}:{ACCOUNT_ID}:{api.api_id}/"
                f"{connection.stage}/$connect",
                **_request_parts(query, headers),
                "stageVariables": {},
                "requestContext": self._context(api, connection, "$connect", "CONNECT"),
            }
            source = f"arn:aws:execute-api:{stack.region}:{ACCOUNT_ID}:{api.api_id}/authorizers/"
            invoker = Invoker("apigateway.amazonaws.com", source_arn=source + authorizer_id)
            try:
                policy = stack.invoke(authorizer.function_logical_id, request, invoker=invoker)
            except FunctionInvocationError as failure:
                return 401 if failure.payload.get("errorMessage") == "Unauthorized" else 500
            if not _allows(policy):
                return 403
            connection.authorizer = {
                **policy.get("context", {}),
                "principalId": policy.get("principalId"),
            }
        event = {
            **_request_parts(query, headers),
            **self._event(api, connection, "$connect", "CONNECT"),
        }
        try:
            result = self._invoke_route(stack, api, "$connect", event)
        except FunctionInvocationError:
            return 500
        status = int((result or {}).get("statusCode", 200))
        return 200 if 200 <= status < 300 else status

    @staticmethod
    def _identity_present(source: str, query: dict[str, str], headers: dict[str, str]) -> bool:
        if source.startswith("route.request.querystring."):
            return bool(query.get(source.removeprefix("route.request.querystring.")))
        if source.startswith("route.request.header."):
            return bool(headers.get(source.removeprefix("route.request.header.").lower()))
        return True

    def _message(
        self, stack: LocalStack, api: WebSocketApiSpec, connection: _Connection, body: str
    ) -> str | None:
        """Route a message; what API Gateway sends back when the integration failed."""
        route_key = _selected_route(api, body)
        if route_key is None:
            return None  # no route and no $default: API Gateway drops the message
        event = {**self._event(api, connection, route_key, "MESSAGE"), "body": body}
        try:
            self._invoke_route(stack, api, route_key, event)
        except FunctionInvocationError as failure:
            print(json.dumps(failure.payload), flush=True)  # the function's log
            return json.dumps(
                {"message": "Internal server error", "connectionId": connection.connection_id}
            )
        return None

    def _event(
        self, api: WebSocketApiSpec, connection: _Connection, route_key: str, kind: str
    ) -> dict[str, Any]:
        return {
            "requestContext": self._context(api, connection, route_key, kind),
            "isBase64Encoded": False,
        }

    def _context(
        self, api: WebSocketApiSpec, connection: _Connection, route_key: str, kind: str
    ) -> dict[str, Any]:
        now = time.time()
        context: dict[str, Any] = {
            "routeKey": route_key,
            "eventType": kind,
            "extendedRequestId": uuid.uuid4().hex,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "messageDirection": "IN",
            "stage": connection.stage,
            "connectedAt": connection.connected_at,
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
            "requestId": uuid.uuid4().hex,
            "domainName": self.origin,
            "connectionId": connection.connection_id,
            "apiId": api.api_id,
        }
        if kind == "MESSAGE":
            context["messageId"] = uuid.uuid4().hex
        if kind == "DISCONNECT":
            context.update({"disconnectStatusCode": connection.close_code, "disconnectReason": ""})
        if connection.authorizer:
            context["authorizer"] = connection.authorizer
        return context

    @staticmethod
    def _invoke_route(
        stack: LocalStack, api: WebSocketApiSpec, route_key: str, event: dict[str, Any]
    ) -> Any:
        integration_id, _ = api.routes[route_key]
        stage = event["requestContext"]["stage"]
        source = f"arn:aws:execute-api:{stack.region}:{ACCOUNT_ID}:{api.api_id}/{stage}/{route_key}"
        invoker = Invoker("apigateway.amazonaws.com", source_arn=source)
        return stack.invoke(api.integrations[integration_id], event, invoker=invoker)

    # -- the management API ----------------------------------------------------------------

    async def _manage(self, request: Request) -> Response:
        connection_id = request.path_params["connection_id"]
        with self._lock:
            connection = self._connections.get(connection_id)
        if connection is None:
            return _error(410, "GoneException", f"connection {connection_id} is gone")
        data = await request.body()
        if len(data) > POST_BYTES:
            return _error(413, "PayloadTooLargeException", "Message too long")
        await connection.socket.send_text(data.decode())
        connection.last_active = time.monotonic()
        return Response(status_code=200)


def _error(status: int, code: str, message: str) -> Response:
    """An error as the management API answers one (botocore reads the code's header)."""
    return JSONResponse({"message": message}, status, headers={"x-amzn-ErrorType": code})


def _selected_route(api: WebSocketApiSpec, body: str) -> str | None:
    """The route `$request.body.<field>` selects, else `$default` (if the API has one)."""
    field = api.route_selection_expression.removeprefix("$request.body.")
    try:
        selected = json.loads(body).get(field)
    except (ValueError, AttributeError):
        selected = None
    if isinstance(selected, str) and selected in api.routes and not selected.startswith("$"):
        return selected
    return "$default" if "$default" in api.routes else None


def _request_parts(query: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
    return {
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {name: [value] for name, value in query.items()},
    }


def _allows(policy: Any) -> bool:
    statements = (policy or {}).get("policyDocument", {}).get("Statement", [])
    return any(statement.get("Effect") == "Allow" for statement in statements)
