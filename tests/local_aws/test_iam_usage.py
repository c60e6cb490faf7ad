"""Which grants a run used: a grant is used when an allowed decision of its role matches its
action and resources, stacks merge by role, policy, action and resources named logically,
and the report names what was never used."""

from __future__ import annotations

import json
from pathlib import Path

from local.aws.iam.gate import Decision
from local.aws.iam.report import merged, needlessly_broad, render
from local.aws.iam.usage import Grant, usage, write_usage
from local.aws.local_stack import LocalStack
from local.aws.records import RoleSpec

ROLE_ARN = "arn:aws:iam::123456789012:role/stack-WorkerRole-1"
READER_ARN = "arn:aws:iam::123456789012:role/stack-ReaderRole-1"


def stack_with(table: str, *, suffix: str) -> LocalStack:
    """A stack whose WorkerRole reads and writes its table and writes X-Ray traces, and
    whose ReaderRole shares the table's policy."""
    table_arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}"
    table_policy = f"arn:aws:iam::123456789012:policy/stack-TablePolicy-{suffix}"
    return LocalStack(
        stack_name="stack",
        region="us-east-1",
        resources={"Table": table, "TablePolicy": table_policy, "WorkerRole": f"Worker{suffix}"},
        roles={
            ROLE_ARN: RoleSpec(
                logical_id="WorkerRole",
                name=f"stack-WorkerRole-{suffix}",
                arn=ROLE_ARN,
                inline=[
                    {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "states:SendTaskSuccess",
                                "Resource": "*",
                            },
                            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"},
                        ]
                    }
                ],
                managed=[table_policy, "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"],
            ),
            READER_ARN: RoleSpec(
                logical_id="ReaderRole",
                name=f"stack-ReaderRole-{suffix}",
                arn=READER_ARN,
                managed=[table_policy],
            ),
        },
        managed_policies={
            table_policy: {
                "Statement": {
                    "Effect": "Allow",
                    "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
                    "Resource": [table_arn, f"{table_arn}/index/*"],
                }
            }
        },
    )


def decision(action: str, resource: str, result: str = "Allowed") -> Decision:
    return Decision("Worker", action, resource, result, ROLE_ARN)  # type: ignore[arg-type]


def test_a_grant_is_used_by_an_allowed_decision_of_its_role_on_its_resources() -> None:
    stack = stack_with("stack-Table-AAAAAAAAAAAA", suffix="AAAAAAAAAAAA")
    table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/stack-Table-AAAAAAAAAAAA"
    decisions = [
        decision("dynamodb:GetItem", f"{table_arn}/index/byUser"),  # the pattern matches
        decision("dynamodb:PutItem", table_arn, result="ImplicitlyDenied"),  # not allowed
        decision("states:SendTaskSuccess", "*"),
        Decision("Other", "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q", "Allowed", "other"),
    ]

    marked = usage(stack, decisions)
    used = {grant.action: grant.used for grant in marked if grant.role == "WorkerRole"}

    assert used["dynamodb:GetItem"]
    assert used["states:SendTaskSuccess"]
    assert not used["dynamodb:PutItem"]
    assert not used["sqs:SendMessage"]
    assert not used["xray:PutTraceSegments"]
    assert not any(grant.used for grant in marked if grant.role == "ReaderRole")  # not its call


def test_stacks_merge_under_logical_names_and_the_report_lists_the_unused(
    tmp_path: Path,
) -> None:
    first = stack_with("stack-Table-AAAAAAAAAAAA", suffix="AAAAAAAAAAAA")
    second = stack_with("stack-Table-BBBBBBBBBBBB", suffix="BBBBBBBBBBBB")
    write_usage(
        first,
        [
            decision(
                "dynamodb:GetItem",
                "arn:aws:dynamodb:us-east-1:123456789012:table/stack-Table-AAAAAAAAAAAA",
            )
        ],
        tmp_path,
    )
    write_usage(
        second,
        [
            decision("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:queue"),
            decision(
                "dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:1:table/x", "ExplicitlyDenied"
            ),
        ],
        tmp_path,
    )
    assert len(list(tmp_path.glob("*.json"))) == 2

    grants, denied = merged(tmp_path)

    table = (
        "arn:aws:dynamodb:us-east-1:123456789012:table/{Table}",
        "arn:aws:dynamodb:us-east-1:123456789012:table/{Table}/index/*",
    )
    ours = {
        (grant.action, grant.resources): grant.used for grant in grants if not grant.aws_managed
    }
    assert ours == {
        ("dynamodb:GetItem", table): True,
        ("dynamodb:PutItem", table): False,
        ("states:SendTaskSuccess", ("*",)): False,
        ("sqs:SendMessage", ("*",)): True,
    }
    assert denied == {"Worker dynamodb:PutItem arn:aws:dynamodb:us-east-1:1:table/x"}
    report = render(grants, denied)
    assert "WorkerRole: 1 of 2 own grants used" in report
    assert "unused  states:SendTaskSuccess on * (inline policy 0)" in report
    assert "TablePolicy: shared by 2 roles\n  dynamodb:GetItem: used by 1 of 2" in report
    assert "  dynamodb:PutItem: used by 0 of 2" in report
    assert "broad   sqs:SendMessage on * (inline policy 0)" in report
    assert "managed AWSXrayWriteOnlyAccess (used by the service)" in report
    assert json.loads(next(tmp_path.glob("*.json")).read_text())["grants"]


def test_only_actions_that_can_be_limited_are_broad_on_every_resource() -> None:
    def grant(action: str) -> Grant:
        return Grant("Role", "inline policy 0", False, action, ("*",), used=True)

    assert needlessly_broad(grant("sqs:SendMessage"))
    assert not needlessly_broad(grant("states:SendTaskSuccess"))  # task tokens are no resource
    assert not needlessly_broad(Grant("Role", "p", False, "sqs:SendMessage", ("arn:q",)))
