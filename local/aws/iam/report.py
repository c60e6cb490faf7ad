"""Merge what the local stacks of a run wrote to THREADLINE_IAM_USAGE and print, per role,
each grant the run used and each it never used (`make iam`).

A grant is used when any stack saw it used: tests take different paths, and a grant one
test needs is needed. Grants of AWS managed policies are listed apart: the service, not
our code, uses most of them (Lambda's logs, X-Ray's traces), and the local stack makes
those calls for the service without asking IAM.

    python -m local.aws.iam.report .local/iam
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from functools import cache
from pathlib import Path

from local.aws.iam.policies import NODE_MODULES
from local.aws.iam.usage import Grant


def merged(directory: Path) -> tuple[list[Grant], set[str]]:
    grants: dict[tuple[str, str, str, tuple[str, ...]], Grant] = {}
    denied: set[str] = set()
    for path in sorted(directory.glob("*.json")):
        report = json.loads(path.read_text())
        denied.update(report["denied"])
        for fields in report["grants"]:
            grant = Grant(**{**fields, "resources": tuple(fields["resources"])})
            known = grants.get(grant.key)
            if known is None or (grant.used and not known.used):
                grants[grant.key] = grant
    return sorted(grants.values(), key=lambda grant: grant.key), denied


@cache
def _resource_types(service: str) -> dict[str, list[object]]:
    """The service's actions and the resource types each can be limited to (AWS's service
    authorization reference, as the IAM simulator's data has it)."""
    path = NODE_MODULES / "@cloud-copilot" / "iam-data" / "data" / "actions" / f"{service}.json"
    actions = json.loads(path.read_text()) if path.exists() else {}
    return {name: action.get("resourceTypes", []) for name, action in actions.items()}


def needlessly_broad(grant: Grant) -> bool:
    """Granted on every resource although the action can be limited to some."""
    service, _, action = grant.action.lower().partition(":")
    return "*" in grant.resources and bool(_resource_types(service).get(action, [True]))


def _shared_policies(grants: list[Grant]) -> set[str]:
    """The stack's managed policies attached to more than one role."""
    roles: dict[str, set[str]] = defaultdict(set)
    for grant in grants:
        if not grant.aws_managed and not grant.policy.startswith("inline policy"):
            roles[grant.policy].add(grant.role)
    return {policy for policy, attached in roles.items() if len(attached) > 1}


def _grant_line(label: str, grant: Grant) -> str:
    return f"  {label:<7} {grant.action} on {', '.join(grant.resources)} ({grant.policy})"


def render(grants: list[Grant], denied: set[str]) -> str:
    """Per role: its own grants (inline, or a managed policy only it has) unused, or on every
    resource where the action could be limited; per shared policy: what no role used."""
    shared = _shared_policies(grants)
    by_role: dict[str, list[Grant]] = defaultdict(list)
    by_shared: dict[tuple[str, str, tuple[str, ...]], list[Grant]] = defaultdict(list)
    for grant in grants:
        if grant.policy in shared:
            by_shared[(grant.policy, grant.action, grant.resources)].append(grant)
        else:
            by_role[grant.role].append(grant)
    lines = []
    for role, owned in sorted(by_role.items()):
        ours = [grant for grant in owned if not grant.aws_managed]
        unused = [grant for grant in ours if not grant.used]
        lines.append(f"{role}: {len(ours) - len(unused)} of {len(ours)} own grants used")
        lines.extend(_grant_line("unused", grant) for grant in unused)
        lines.extend(
            _grant_line("broad", grant) for grant in ours if grant.used and needlessly_broad(grant)
        )
        managed = sorted({grant.policy for grant in owned if grant.aws_managed})
        if managed:
            lines.append(f"  managed {', '.join(managed)} (used by the service)")
    for policy in sorted(shared):
        actions = {key: found for key, found in by_shared.items() if key[0] == policy}
        roles = {grant.role for found in actions.values() for grant in found}
        lines.append(f"{policy}: shared by {len(roles)} roles")
        for (_, action, _), found in sorted(actions.items()):
            users = sorted(grant.role for grant in found if grant.used)
            lines.append(f"  {action}: used by {len(users)} of {len(found)}")
    lines.append(f"denied: {len(denied)}")
    lines.extend(f"  {decision}" for decision in sorted(denied))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    grants, denied = merged(Path(argv[0]))
    if not grants:
        print(
            f"no usage in {argv[0]}: run the tests with THREADLINE_IAM_USAGE set", file=sys.stderr
        )
        return 1
    print(render(grants, denied))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
