"""The local API Gateway: an HTTP server on 127.0.0.1 that routes the template's HttpApi
events to their functions as payload-2.0 events, enforcing each route's JWT authorizer with
the token check the caller gives (the local identity provider's).

As API Gateway's HTTP APIs it takes request bodies of up to 10 MB and waits 30 s for a
function: past that the caller has 503 Service Unavailable while the function runs on.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID as ACCOUNT_ID
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from local.aws.apigw import http_api_event
from local.aws.fire import schedule_admin_response
from local.aws.local_stack import FunctionInvocationError, LocalStack
from local.aws.records import HttpRoute, Invoker

# (token, issuer, audiences) -> the token's claims, or None when it is not valid for them.
TokenCheck = Callable[[str, str, tuple[str, ...]], dict[str, object] | None]
REQUEST_BYTES = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS = 30.0


def _gateway_answer(status: int, message: str) -> Response:
    """An answer API Gateway makes itself (its default responses: `{"message": ...}`)."""
    return Response(json.dumps({"message": message}), status, content_type="application/json")


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass(frozen=True)
class _CompiledRoute:
    route: HttpRoute
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, route: HttpRoute) -> _CompiledRoute:
        regex = re.sub(r"\\\{([A-Za-z_][A-Za-z0-9_]*)\\\}", r"(?P<\1>[^/]+)", re.escape(route.path))
        return cls(route, re.compile(f"^{regex}$"))


class LocalHttpApi:
    """`integration_timeout_seconds`: how long a request waits for its function (a test may
    wait less than API Gateway's 30 s)."""

    def __init__(
        self,
        stack: LocalStack,
        *,
        check_token: TokenCheck,
        integration_timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS,
    ) -> None:
        self._stack = stack
        self._check_token = check_token
        self._integration_timeout = integration_timeout_seconds
        self._routes = [_CompiledRoute.of(route) for route in stack.http_routes]
        self._server: BaseWSGIServer | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._handle(Request(environ))(environ, start_response)

    def _handle(self, request: Request) -> Response:
        admin = schedule_admin_response(self._stack, request)
        if admin is not None:
            return admin
        if (request.content_length or 0) > REQUEST_BYTES or len(request.get_data()) > REQUEST_BYTES:
            return _gateway_answer(413, "Request Entity Too Large")
        match = self._match(request.method, request.path)
        if match is None:
            return _gateway_answer(404, "Not Found")
        compiled, path_parameters = match
        claims = None
        if compiled.route.authorizer:
            claims = self._authorize(
                compiled.route.api_logical_id,
                compiled.route.authorizer,
                request.headers.get("Authorization", ""),
            )
            if claims is None:
                return _gateway_answer(401, "Unauthorized")
        event = http_api_event(
            request.method,
            request.path,
            body=request.get_data() or None,
            headers=dict(request.headers),
            query=request.query_string.decode(),
            claims=claims,
            route_key=f"{request.method} {compiled.route.path}",
            path_parameters=path_parameters or None,
        )
        api = self._stack.http_apis[compiled.route.api_logical_id]
        stage = self._stack.api_stages.get(api.api_id, "$default")
        # The route's path: API Gateway's source ARN is the route's, its parameters as they are.
        source = (
            f"arn:aws:execute-api:{self._stack.region}:{ACCOUNT_ID}:{api.api_id}/{stage}/"
            f"{request.method}{compiled.route.path}"
        )
        invoker = Invoker("apigateway.amazonaws.com", source_arn=source)
        return self._integrate(compiled.route.function_logical_id, event, invoker)

    def _integrate(
        self, function_logical_id: str, event: dict[str, Any], invoker: Invoker
    ) -> Response:
        """The function's answer, or API Gateway's when there is none."""
        try:
            result = self._invoke(function_logical_id, event, invoker)
        except TimeoutError:
            # As API Gateway answers a function still running at the integration timeout
            # (cortexlabs/cortex#1225 shows the answer); the function runs on.
            return _gateway_answer(503, "Service Unavailable")
        except FunctionInvocationError as failure:
            # API Gateway's answer when the function fails; the error goes to the function's
            # log (stdout here), as the Lambda runtime writes it.
            print(json.dumps(failure.payload), flush=True)
            return _gateway_answer(500, "Internal Server Error")
        except ClientError as error:
            if error.response["Error"]["Code"] != "RequestEntityTooLargeException":
                raise
            # The event is over Lambda's 6 MB though the body is under 10 MB.
            return _gateway_answer(413, "Request Entity Too Large")
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else body
        return Response(raw, result.get("statusCode", 200), headers=result.get("headers", {}))

    def _invoke(self, function_logical_id: str, event: dict[str, Any], invoker: Invoker) -> Any:
        """The function's result; TimeoutError once the integration timeout has passed."""
        outcome: Future[Any] = Future()

        def invoke() -> None:
            try:
                outcome.set_result(self._stack.invoke(function_logical_id, event, invoker=invoker))
            except Exception as error:  # handed to the request, which answers it
                outcome.set_exception(error)

        threading.Thread(target=invoke, daemon=True).start()
        return outcome.result(timeout=self._integration_timeout)

    def _match(self, method: str, path: str) -> tuple[_CompiledRoute, dict[str, str]] | None:
        for compiled in self._routes:
            found = compiled.pattern.match(path)
            if found and compiled.route.method in (method, "ANY"):
                return compiled, found.groupdict()
        return None

    def _authorize(
        self, api_logical_id: str, authorizer_name: str, header: str
    ) -> dict[str, Any] | None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        api = self._stack.http_apis[api_logical_id]
        authorizer = api.authorizers[authorizer_name]
        return self._check_token(token, authorizer.issuer, authorizer.audience)

    def start(self, port: int = 0) -> str:
        self._server = make_server("127.0.0.1", port, self, threaded=True, request_handler=_Quiet)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
