"""The local console: a page to chat with an assistant as a local user, with the answer
streamed over the WebSocket API, uploads, approvals, and each run's state machine graph lit
as its states are entered, its tool calls with their arguments and results, tokens and
timings. Local only: it signs local tokens for anyone who asks and reads what a deployed
client could not (executions, the model's tool calls), so it is never deployed.

It serves the page, passes `/api/...` to the local HTTP API (same origin for the browser),
and answers `/console/...` itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from local.served_app import ServedApp
from local.stack_session import LocalThreadline
from local.tokens import LOCAL_AUDIENCE, LOCAL_ISSUER, issue_token, verified_claims
from threadline import runtime
from threadline.errors import NotFoundError

STATIC = Path(__file__).resolve().parent / "static"
MACHINES = ("RunExpressStateMachine", "RunStateMachine")  # a run starts in the first
PASSED_HEADERS = ("authorization", "content-type", "idempotency-key")


class Console(ServedApp):
    def __init__(self, product: LocalThreadline, api_url: str, *, port: int = 0) -> None:
        if product.websocket is None:
            raise ValueError("the console streams runs: serve the WebSocket API too")
        self._product = product
        self._api_url = api_url
        self.stream_url = product.websocket.url
        app = Starlette(
            # A page elsewhere reaching 127.0.0.1 through a name of its own (DNS rebinding)
            # gets nothing: only these names are served.
            middleware=[
                Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])
            ],
            routes=[
                Route("/", self._page),
                Mount("/static", StaticFiles(directory=STATIC)),
                Route("/console/session", self._session, methods=["POST"]),
                Route("/console/threads/{thread_id}/runs/{run_id}", self._run),
                Route("/api/{path:path}", self._pass, methods=["GET", "POST", "DELETE"]),
            ],
        )
        super().__init__(app, port=port, name="console")
        self.url = f"http://127.0.0.1:{self.port}/"

    async def _page(self, _request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def _session(self, request: Request) -> Response:
        """Sign in as a local user: a token for the API and the WebSocket API."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        user = str(body.get("user", "")).strip() if isinstance(body, dict) else ""
        if not user or len(user) > 64:
            return JSONResponse({"error": {"code": "bad_request", "message": "a user name"}}, 400)
        return JSONResponse(
            {"user": user, "token": issue_token(user), "stream_url": self.stream_url}
        )

    async def _pass(self, request: Request) -> Response:
        """The local HTTP API, from the page's origin."""
        headers = {
            name: value for name, value in request.headers.items() if name.lower() in PASSED_HEADERS
        }
        url = f"{self._api_url}/{request.path_params['path']}"
        body = await request.body()
        answer = await run_in_threadpool(
            requests.request,
            request.method,
            url,
            params=dict(request.query_params),
            data=body or None,
            headers=headers,
            timeout=30,
        )
        return Response(
            answer.content, answer.status_code, media_type=answer.headers.get("content-type")
        )

    async def _run(self, request: Request) -> Response:
        """A run of the caller's: its executions (each state machine's states, and those
        entered, in order) and the model's tool calls with their arguments and results."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        claims = (
            verified_claims(token, LOCAL_ISSUER, (LOCAL_AUDIENCE,)) if scheme == "Bearer" else None
        )
        if claims is None:
            return JSONResponse({"message": "Unauthorized"}, 401)
        thread_id, run_id = request.path_params["thread_id"], request.path_params["run_id"]
        found = await run_in_threadpool(self._run_detail, str(claims["sub"]), thread_id, run_id)
        if found is None:
            return JSONResponse({"error": {"code": "not_found", "message": "no such run"}}, 404)
        return JSONResponse(found)

    def _run_detail(self, user: str, thread_id: str, run_id: str) -> dict[str, Any] | None:
        try:
            run = runtime.current().run_store().get(thread_id, run_id)
        except NotFoundError:
            return None
        if run.user_id != user:
            return None
        executions = [
            execution
            for machine in MACHINES
            if (execution := self._execution(machine, run_id)) is not None
        ]
        return {"executions": executions, "calls": self._calls(run.remote_object_ids)}

    def _execution(self, machine: str, run_id: str) -> dict[str, Any] | None:
        sfn = self._product.sfn
        arn = self._product.execution_of(machine, run_id)
        try:
            described = sfn.describe_execution(executionArn=arn)
        except sfn.exceptions.ExecutionDoesNotExist:
            return None
        definition = json.loads(
            sfn.describe_state_machine(stateMachineArn=self._product.stack.state_machines[machine])[
                "definition"
            ]
        )
        history = self._product.history(arn)
        entered = [
            {
                "state": event["stateEnteredEventDetails"]["name"],
                "at": event["timestamp"].isoformat(),
            }
            for event in history
            if "stateEnteredEventDetails" in event
        ]
        return {
            "machine": machine,
            "status": described["status"],
            "start_at": definition["StartAt"],
            "states": {
                name: {"type": state["Type"], "next": _next_states(state)}
                for name, state in definition["States"].items()
            },
            "entered": entered,
        }

    def _calls(self, response_ids: list[str]) -> list[dict[str, Any]]:
        """The function calls of the run's responses and the outputs handed back for them
        (the Responses backend's chain; an Assistants run lists none here)."""
        if self._product.environment.get("OPENAI_BACKEND") != "responses":
            return []
        client = runtime.current().backend_client()
        calls: dict[str, dict[str, Any]] = {}
        for response_id in response_ids:
            for item in client.responses.retrieve(response_id).output:
                if item.type == "function_call":
                    calls[item.call_id] = {
                        "call_id": item.call_id,
                        "name": item.name,
                        "arguments": item.arguments,
                        "output": None,
                    }
            for given in client.responses.input_items.list(response_id):
                if given.type == "function_call_output" and given.call_id in calls:
                    calls[given.call_id]["output"] = given.output
        return list(calls.values())


def _next_states(state: dict[str, Any]) -> list[str]:
    targets = [state.get("Next"), state.get("Default")]
    targets += [choice.get("Next") for choice in state.get("Choices", [])]
    targets += [catch.get("Next") for catch in state.get("Catch", [])]
    return list(dict.fromkeys(target for target in targets if target))
