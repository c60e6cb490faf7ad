"""A user of the HTTP API, called through its Lambda (invoked via moto) with the caller's
claims as the JWT authorizer passes them."""

from __future__ import annotations

import json
import time
from typing import Any

from local.aws.apigw import http_api_event
from local.openai_server import Step
from local.stack_session import LocalThreadline
from threadline import runtime


class Client:
    def __init__(self, product: LocalThreadline, user: str | None) -> None:
        self.product = product
        self.user = user

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: str | None = None,
        headers: dict[str, str] | None = None,
        query: str = "",
    ) -> tuple[int, Any, dict[str, str]]:
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        event = http_api_event(
            method,
            path,
            body=payload,
            headers={"content-type": "application/json", **(headers or {})},
            query=query,
            claims={"sub": self.user} if self.user else None,
        )
        result = self.product.stack.invoke("ApiFunction", event)
        text = result.get("body") or ""
        return result["statusCode"], json.loads(text) if text else None, result.get("headers", {})

    def thread(self, purpose: str = "analysis") -> str:
        status, body, _ = self.call("POST", "/threads", {"purpose": purpose})
        assert status in (200, 201), body
        return body["id"]

    def script(self, thread_id: str, step: Step) -> None:
        """The model's next turn on this thread only: a run another test left going must not
        take it."""
        assert self.product.openai is not None
        assert self.user is not None
        remote_id = runtime.current().thread_store().get(self.user, thread_id).remote_id
        self.product.openai.script.push(step, key=remote_id)

    def finished_run(self, thread_id: str, message: str) -> dict[str, Any]:
        status, accepted, headers = self.call(
            "POST", f"/threads/{thread_id}/runs", {"message": message}
        )
        assert status == 202, accepted
        self.product.wait_for_run(accepted["id"])
        status, run, _ = self.call("GET", headers["Location"])
        assert status == 200
        return run

    def started(self, thread_id: str, body: dict[str, Any]) -> str:
        """Start a run on the thread; its id."""
        status, accepted, _ = self.call("POST", f"/threads/{thread_id}/runs", body)
        assert status == 202, accepted
        return str(accepted["id"])

    def run(self, thread_id: str, run_id: str) -> dict[str, Any]:
        status, run, _ = self.call("GET", f"/threads/{thread_id}/runs/{run_id}")
        assert status == 200, run
        return dict(run)

    def finished(self, thread_id: str, run_id: str) -> dict[str, Any]:
        self.product.wait_for_run(run_id)
        return self.run(thread_id, run_id)

    def waiting_for_approval(self, thread_id: str, run_id: str) -> list[dict[str, Any]]:
        """The calls the run waits on, once it waits (bounded)."""
        deadline = time.monotonic() + 30
        while (run := self.run(thread_id, run_id))["status"] != "requires_approval":
            assert run["status"] not in ("completed", "failed", "cancelled"), run
            assert time.monotonic() < deadline, run
            time.sleep(0.05)
        return list(run["pending_approvals"])

    def decide(self, thread_id: str, run_id: str, *decisions: dict[str, Any]) -> tuple[int, Any]:
        status, body, _ = self.call(
            "POST", f"/threads/{thread_id}/runs/{run_id}/approvals", {"decisions": list(decisions)}
        )
        return status, body
