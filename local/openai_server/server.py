"""`OpenAIServer`: the WSGI app, its clock, script, faults, ticker, webhooks and HTTP serving."""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from local.openai_server import assistants_api, engine, resources_api, responses_api
from local.openai_server.engine import (
    DEFAULT_PLAYBOOK,
    ModelInput,
    Outcome,
    Script,
    new_id,
    respond,
)
from local.openai_server.faults import ConnectionDropped, Faults
from local.openai_server.state import State, Stats, Turn
from local.openai_server.webhooks import (
    WebhookDispatcher,
    WebhookSender,
    post_webhook,
    sign_webhook,
)
from local.openai_server.wire import ApiError, json_response, scripted_http_error

if TYPE_CHECKING:
    import openai

Handler = Callable[..., Response]

TICK_SECONDS = 0.005
HELD_FLUSH_SECONDS = 60.0  # a bound for a test's failure, not a wait it relies on
SHUTDOWN_POLL_SECONDS = 0.05  # how quickly .stop() is noticed by the HTTP server thread
BETA_PREFIXES = ("/v1/assistants", "/v1/threads")


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class OpenAIServer:
    """An in-memory OpenAI-compatible server that the real `openai` SDK talks to unchanged."""

    def __init__(
        self,
        latency_seconds: float = 0.0,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        clock: Callable[[], float] = time.time,
        playbook: list[engine.Rule] | None = None,
    ) -> None:
        if webhook_url and not webhook_secret:
            raise ValueError("webhook_url needs a webhook_secret to sign the events with")
        self.latency_seconds = latency_seconds
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.clock = clock
        self.playbook = list(DEFAULT_PLAYBOOK if playbook is None else playbook)
        self.script = Script()
        self.faults = Faults()
        self.stats = Stats()
        self.state = State()
        self.webhook_sender: WebhookSender = post_webhook
        self.lock = threading.RLock()
        self.webhook_dispatcher = WebhookDispatcher(lambda: self.webhook_sender)
        self._ticker_stop: threading.Event | None = None
        self._http_server: BaseWSGIServer | None = None
        self._map, self._handlers = _served_routes()

    # --- WSGI ---------------------------------------------------------------------------

    def wsgi_app(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        fault = self.faults.take(request.method, request.path)
        if fault is None:
            response = self._respond(request)
        else:
            self.stats.count_fault(fault.kind)
            # Outside the lock: a slow reply is held while others are answered.
            response = fault.apply(request, self._respond, hold=self.faults.hold)
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:
        try:
            return self._dispatch(request)
        except ApiError as error:
            return error.to_response()
        except Exception as error:  # a bug here should reach the client as a readable 500
            traceback.print_exc()
            return ApiError(500, f"local server error: {error!r}").to_response()

    def _dispatch(self, request: Request) -> Response:
        adapter = self._map.bind_to_environ(request.environ)
        try:
            endpoint, params = adapter.match()
        except HTTPException as error:
            code = error.code or 404
            raise ApiError(code, f"Invalid URL ({request.method} {request.path})") from None
        _check_headers(request, endpoint)
        self.stats.count_endpoint(endpoint)
        with self.lock:  # the handler serialises its JSON under the lock too
            return self._handlers[endpoint](self, request, **params)

    @contextlib.contextmanager
    def unlocked(self) -> Iterator[None]:
        """Let other requests in while this one waits (a synchronous response's latency)."""
        self.lock.release()
        try:
            yield
        finally:
            self.lock.acquire()

    # --- the model ------------------------------------------------------------------------

    def start_turn(
        self, key: str | None, model_input: ModelInput, decided: Outcome | None = None
    ) -> Turn:
        """Consume the next step for `key` and decide the turn (unless it is `decided`: a
        remote MCP turn), finishing after the step's own latency if it has one, else the
        server's; a scripted HTTP error is raised here, before the caller has changed any
        state."""
        step = self.script.take(key) if decided is None else None
        if step is not None and step.kind == "http_error":
            raise scripted_http_error(step.status, step.retry_after, step.message)
        outcome = respond(model_input, step, self.playbook, decided)
        latency = self.latency_seconds
        if step is not None and step.latency_seconds is not None:
            latency = step.latency_seconds
        started = self.clock()
        finish = math.inf if outcome.kind == "hang" else started + latency
        return Turn(outcome=outcome, started_at=started, finish_at=finish)

    def poll_headers(self) -> dict[str, str]:
        """Tell the SDK's poll helpers how long to wait instead of their default second."""
        return {"openai-poll-after-ms": str(max(1, int(self.latency_seconds * 1000 / 5)))}

    def advance_all(self) -> None:
        with self.lock:
            for object_id in list(self.state.moving):
                if object_id in self.state.responses:
                    responses_api.advance(self, self.state.responses[object_id])
                elif object_id in self.state.runs:
                    assistants_api.advance(self, self.state.runs[object_id])
                else:
                    self.state.moving.discard(object_id)

    def ensure_ticker(self) -> None:
        """Advance state without anyone polling, so webhooks fire on their own."""
        with self.lock:
            if self._ticker_stop is not None:
                return
            stop = self._ticker_stop = threading.Event()

        def tick() -> None:
            while not stop.wait(TICK_SECONDS):
                self.advance_all()

        threading.Thread(target=tick, name="openai-server-ticker", daemon=True).start()

    # --- webhooks -------------------------------------------------------------------------

    def sign_webhook(
        self,
        payload: dict[str, Any],
        *,
        timestamp: int | None = None,
        webhook_id: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        if not self.webhook_secret:
            raise ValueError("the server has no webhook_secret")
        return sign_webhook(
            payload, self.webhook_secret, timestamp=timestamp, webhook_id=webhook_id
        )

    def emit_webhook(self, event_type: str, object_id: str) -> None:
        if not (self.webhook_url and self.webhook_secret):
            return
        event = {
            "id": new_id("evt_"),
            "object": "event",
            "created_at": int(time.time()),
            "type": event_type,
            "data": {"id": object_id},
        }
        body, headers = self.sign_webhook(event)
        self.webhook_dispatcher.enqueue(self.webhook_url, body, headers)

    def flush_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until every queued delivery has succeeded or given up."""
        return self.webhook_dispatcher.wait_idle(timeout)

    @contextlib.contextmanager
    def webhooks_held(self) -> Iterator[list[tuple[str, bytes, dict[str, str]]]]:
        """Collect the webhooks emitted inside the block instead of delivering them, so a test
        that plays the webhook's part itself is the only actor that can."""
        held: list[tuple[str, bytes, dict[str, str]]] = []
        # Earlier deliveries (each a whole webhook handler run) may take a while on a busy
        # machine: wait for them to end, not for a fixed time.
        if not self.flush_webhooks(timeout=HELD_FLUSH_SECONDS):
            raise TimeoutError("earlier webhooks are still being delivered")
        sender, self.webhook_sender = self.webhook_sender, lambda *delivery: held.append(delivery)
        try:
            yield held
            if not self.flush_webhooks(timeout=HELD_FLUSH_SECONDS):
                raise TimeoutError("webhooks emitted in the block are still queued")
        finally:
            self.webhook_sender = sender

    # --- lifecycle ------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.state = State()
            self.script.clear()
            self.faults.clear()
            self.stats.reset()

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 8765,
        ready: Callable[[str], None] | None = None,
        log_requests: bool = True,
    ) -> None:
        """Serve over HTTP until interrupted (threaded werkzeug server)."""
        http_server = self._listen(host, port, log_requests)
        if ready is not None:
            ready(self.base_url)
        try:
            http_server.serve_forever(poll_interval=SHUTDOWN_POLL_SECONDS)
        finally:
            self.stop()

    def start_background(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve from a daemon thread; returns the base URL (`.../v1`). Stop with `.stop()`."""
        http_server = self._listen(host, port, log_requests=False)
        serve = functools.partial(http_server.serve_forever, poll_interval=SHUTDOWN_POLL_SECONDS)
        threading.Thread(target=serve, name="openai-http", daemon=True).start()
        return self.base_url

    @property
    def base_url(self) -> str:
        if self._http_server is None:
            raise RuntimeError("the server is not listening")
        host, port = self._http_server.server_address[:2]
        if isinstance(host, bytes | bytearray):  # typed so, but an IP socket's name is a str
            host = host.decode()
        return f"http://{host}:{port}/v1"

    def stop(self) -> None:
        self.faults.clear()  # lets held replies go
        http_server, self._http_server = self._http_server, None
        if http_server is not None:
            http_server.shutdown()
            http_server.server_close()
        if self._ticker_stop is not None:
            self._ticker_stop.set()
            self._ticker_stop = None
        self.webhook_dispatcher.stop()

    def _listen(self, host: str, port: int, log_requests: bool) -> BaseWSGIServer:
        handler = WSGIRequestHandler if log_requests else _QuietHandler
        self._http_server = make_server(
            host, port, self.wsgi_app, threaded=True, request_handler=handler
        )
        self.ensure_ticker()
        return self._http_server


def sdk_client(server: OpenAIServer, **kwargs: Any) -> openai.OpenAI:
    """A real SDK client wired to `server` in-process (no sockets). An injected `reset` or
    `lost_reply` reaches the SDK as the transport error a closed socket causes, which it raises
    as `openai.APIConnectionError`."""
    import httpx2  # imported here so `python -m local.openai_server` starts faster
    import openai

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            return server.wsgi_app(environ, start_response)
        except ConnectionDropped as error:
            raise httpx2.RemoteProtocolError(
                "Server disconnected without sending a response."
            ) from error

    transport = httpx2.WSGITransport(app=app)
    kwargs.setdefault("api_key", "local")
    kwargs.setdefault("base_url", "http://local/v1")
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("webhook_secret", server.webhook_secret)
    kwargs.setdefault("http_client", httpx2.Client(transport=transport))
    return openai.OpenAI(**kwargs)


def _api_routes() -> list[tuple[str, str, Handler]]:
    return [*responses_api.ROUTES, *resources_api.ROUTES, *assistants_api.ROUTES]


@functools.cache
def _served_routes() -> tuple[Map, dict[str, Handler]]:
    """The server's routes, compiled once for every server: werkzeug compiles a rule with
    `ast`, whose recursion guard CPython 3.11 does not keep per thread (compiling while
    another thread does fails with "AST constructor recursion depth mismatch")."""
    return _route_map(
        [
            *(("/v1" + path, method, handler) for path, method, handler in _api_routes()),
            ("/_local/stats", "GET", _stats),
            ("/_local/reset", "POST", _reset),
        ]
    )


def _route_map(routes: Iterable[tuple[str, str, Handler]]) -> tuple[Map, dict[str, Handler]]:
    routes = list(routes)
    handlers = {f"{method} {path}": handler for path, method, handler in routes}
    rules = [
        Rule(path, methods=[method], endpoint=f"{method} {path}") for path, method, _ in routes
    ]
    return Map(rules, strict_slashes=False), handlers


def _check_headers(request: Request, endpoint: str) -> None:
    path = endpoint.split(" ", 1)[1]
    if not path.startswith("/v1/"):
        return
    if not request.headers.get("Authorization", "").startswith("Bearer "):
        raise ApiError(401, "You didn't provide an API key (Authorization: Bearer ...).")
    if path.startswith(BETA_PREFIXES) and "assistants=v2" not in request.headers.get(
        "OpenAI-Beta", ""
    ):
        raise ApiError(
            400,
            "You must provide the 'OpenAI-Beta' header to access the Assistants API. "
            "Please try again by setting the header 'OpenAI-Beta: assistants=v2'.",
            code="invalid_beta",
        )


def _stats(server: OpenAIServer, _request: Request) -> Response:
    snapshot = server.stats.snapshot()
    snapshot["webhooks"] = {
        "delivered": server.webhook_dispatcher.delivered,
        "failed": server.webhook_dispatcher.failed,
    }
    return json_response(snapshot)


def _reset(server: OpenAIServer, _request: Request) -> Response:
    server.reset()
    return json_response({"reset": True})


# Compiled when the module is imported, before any server's threads run.
_served_routes()
