"""IAM's decision on one request: AWS's evaluation rules, as @cloud-copilot/iam-simulate
implements them (identity and resource policies, explicit denies, conditions, wildcards).

The simulator runs in a long-lived Node process (`simulator.cjs`, installed by `make dev`
under .tools); a decision is asked once and kept, as the policies do not change while a
stack runs.
"""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404: runs the project's own Node script, no shell
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[3]
_SCRIPT = Path(__file__).with_name("simulator.cjs")
NODE_MODULES = REPO / ".tools" / "node_modules"

Result = Literal["Allowed", "ExplicitlyDenied", "ImplicitlyDenied"]
ContextValue = str | list[str]


@dataclass(frozen=True)
class Request:
    """One action on one resource, and the condition keys that come with it."""

    action: str  # e.g. dynamodb:PutItem
    resource: str  # an ARN, or * for actions that take none
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    def key(self) -> tuple[str, str, str]:
        return self.action, self.resource, json.dumps(self.context, sort_keys=True)


@dataclass(frozen=True)
class Policies:
    """What applies to a principal's requests: its identity policies (the role's inline and
    attached ones), named by `key` for the cache."""

    key: str
    identity: Sequence[Mapping[str, Any]]


class PolicySimulator:
    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._decided: dict[tuple[str, ...], Result] = {}

    def decide(
        self,
        principal: str,
        account: str,
        request: Request,
        policies: Policies,
        resource_policy: tuple[str, Mapping[str, Any]] | None = None,
    ) -> Result:
        """Whether `principal` (an ARN, or a service such as apigateway.amazonaws.com) may
        make `request`; `resource_policy` is the resource's own (its key, its document)."""
        resource_key = resource_policy[0] if resource_policy else ""
        key = (principal, policies.key, *request.key(), resource_key)
        with self._lock:
            if key not in self._decided:
                decided = self._ask(principal, account, request, policies, resource_policy)
                self._decided[key] = decided
            return self._decided[key]

    def _ask(
        self,
        principal: str,
        account: str,
        request: Request,
        policies: Policies,
        resource_policy: tuple[str, Mapping[str, Any]] | None,
    ) -> Result:
        simulation: dict[str, Any] = {
            "request": {
                "principal": principal,
                "action": request.action,
                "resource": {"resource": request.resource, "accountId": account},
                "contextVariables": dict(request.context),
            },
            "identityPolicies": [
                {"name": f"policy{index}", "policy": document}
                for index, document in enumerate(policies.identity)
            ],
            "serviceControlPolicies": [],
            "resourceControlPolicies": [],
        }
        if resource_policy is not None:
            simulation["resourcePolicy"] = resource_policy[1]
        process = self._running()
        if process.stdin is None or process.stdout is None:  # both are pipes: never
            raise RuntimeError("the IAM simulator has no pipes")
        process.stdin.write(json.dumps(simulation) + "\n")
        process.stdin.flush()
        answer = json.loads(process.stdout.readline() or '{"error": "the simulator stopped"}')
        if "error" in answer:
            raise ValueError(f"IAM simulation of {request.action} failed: {answer['error']}")
        result: Result = answer["result"]
        return result

    def _running(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            if not (NODE_MODULES / "@cloud-copilot" / "iam-simulate").is_dir():
                raise RuntimeError("the IAM simulator is not installed: run `make dev`")
            self._process = subprocess.Popen(  # nosec B603 B607: node, the project's script
                ["node", str(_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
            )
        return self._process

    def close(self) -> None:
        with self._lock:
            if self._process is not None:
                self._process.terminate()
                self._process.wait(timeout=10)
                self._process = None
