"""What each role was seen to use of what it grants: every Allow statement's every action,
and whether a decision of a principal acting with the role matched it (`make iam`).

While THREADLINE_IAM_USAGE names a folder, each local stack of the product's template
writes there, when it stops, one JSON file of its roles' grants, each marked used or not,
keyed so that stacks can be merged: the role's logical id, the policy's (the stack's
managed policies), its place (inline policies) or AWS's name (AWS managed policies), the
action and the resources, the stack's names in them replaced by their logical ids.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.aws.iam.gate import Decision
    from local.aws.local_stack import LocalStack

USAGE_DIRECTORY = "THREADLINE_IAM_USAGE"


def usage_directory() -> Path | None:
    folder = os.environ.get(USAGE_DIRECTORY)
    return Path(folder) if folder else None


@dataclass(frozen=True)
class Grant:
    role: str  # the role's logical id
    policy: str
    aws_managed: bool
    action: str  # as granted: a name or a pattern
    resources: tuple[str, ...]  # as provisioned
    used: bool = False

    @property
    def key(self) -> tuple[str, str, str, tuple[str, ...]]:
        return self.role, self.policy, self.action, self.resources


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _policies(stack: LocalStack, role_arn: str) -> Iterator[tuple[str, bool, dict[str, Any]]]:
    """(label, whether AWS manages it, document) of each policy of the role."""
    from local.aws.iam.gate import aws_managed_policy

    role = stack.roles[role_arn]
    logical_ids = {ref: logical_id for logical_id, ref in stack.resources.items()}
    for index, document in enumerate(role.inline):
        yield f"inline policy {index}", False, document
    for arn in role.managed:
        if arn in stack.managed_policies:
            yield logical_ids.get(arn, arn), False, stack.managed_policies[arn]
        else:
            yield arn.rsplit("/", 1)[-1], True, aws_managed_policy(arn)


def _named_logically(stack: LocalStack) -> Callable[[str], str]:
    """A resource pattern with the stack's physical names (random per stack: a table's, an
    API's id) replaced by their resources' logical ids, wherever one is a whole part of an
    ARN (between colons and slashes)."""
    names: dict[str, str] = {}
    for logical_id, ref in stack.resources.items():  # a bucket's, not its policy's, name
        names.setdefault(ref.rsplit(":", 1)[-1].rsplit("/", 1)[-1], logical_id)
    long_names = sorted((name for name in names if len(name) >= 8), key=len, reverse=True)
    if not long_names:  # short ones (a stage's "dev", a layer's version) name nothing alone
        return lambda pattern: pattern
    physical = re.compile("(?<![^:/])(" + "|".join(map(re.escape, long_names)) + ")(?![^:/])")
    return lambda pattern: physical.sub(lambda found: "{" + names[found[1]] + "}", pattern)


def grants(stack: LocalStack, role_arn: str) -> list[Grant]:
    found = []
    named = _named_logically(stack)
    role = stack.roles[role_arn].logical_id
    for label, aws_managed, document in _policies(stack, role_arn):
        for statement in _listed_statements(document):
            if statement.get("Effect") != "Allow" or "Action" not in statement:
                continue
            resources = tuple(_listed(statement.get("Resource", "*")))
            for action in _listed(statement["Action"]):
                found.append(Grant(role, label, aws_managed, action, resources))
    return [replace(grant, resources=tuple(map(named, grant.resources))) for grant in found]


def _listed_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def _matches(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    return fnmatchcase(value, pattern)


def used(grant: Grant, decisions: Iterable[Decision]) -> bool:
    return any(
        _matches(grant.action, decision.action, case_sensitive=False)
        and any(_matches(r, decision.resource, case_sensitive=True) for r in grant.resources)
        for decision in decisions
        if decision.result == "Allowed"
    )


def usage(stack: LocalStack, decisions: Sequence[Decision]) -> list[Grant]:
    """Every grant of the stack's roles, marked used if a decision matched it."""
    named = _named_logically(stack)
    marked = []
    for role_arn in stack.roles:
        mine = [
            replace(decision, resource=named(decision.resource))
            for decision in decisions
            if decision.role_arn == role_arn
        ]
        for grant in grants(stack, role_arn):
            marked.append(replace(grant, used=used(grant, mine)))
    return marked


def write_usage(stack: LocalStack, decisions: Sequence[Decision], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    report = {
        "grants": [asdict(grant) for grant in usage(stack, decisions)],
        "denied": sorted(
            {
                f"{decision.principal} {decision.action} {decision.resource}"
                for decision in decisions
                if decision.result != "Allowed"
            }
        ),
    }
    (directory / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.json").write_text(json.dumps(report))
