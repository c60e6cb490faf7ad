"""The local stack's IAM decisions are AWS's: allow and implicit deny, an explicit deny in a
resource's policy winning over an identity allow, conditions and ARN wildcards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local.aws.iam.policies import Policies, PolicySimulator, Request

ACCOUNT = "123456789012"
CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/fn-role/fn"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/threadline"
BUCKET = "arn:aws:s3:::files"
API = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:abc"
IDENTITY = Policies(
    key="fn-role",
    identity=[
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query"],
                 "Resource": [TABLE, f"{TABLE}/index/*"]},
                {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET,
                 "Condition": {"StringLike": {"s3:prefix": "outputs/*"}}},
                {"Effect": "Allow", "Action": "s3:*Object", "Resource": f"{BUCKET}/*"},
                {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"{BUCKET}/uploads/*"},
                {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                 "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:key-??????"},
            ],
        }
    ],
)  # fmt: skip
SECURE_TRANSPORT_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [BUCKET, f"{BUCKET}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}


@pytest.fixture(scope="module")
def simulator() -> Iterator[PolicySimulator]:
    simulator = PolicySimulator()
    yield simulator
    simulator.close()


@pytest.mark.parametrize(
    ("action", "resource", "context", "expected"),
    [
        ("dynamodb:GetItem", TABLE, {}, "Allowed"),
        ("dynamodb:Query", f"{TABLE}/index/ByActivity", {}, "Allowed"),
        ("dynamodb:Scan", TABLE, {}, "ImplicitlyDenied"),
        ("dynamodb:GetItem", TABLE.replace("threadline", "other"), {}, "ImplicitlyDenied"),
        ("s3:ListBucket", BUCKET, {"s3:prefix": "outputs/u/t/"}, "Allowed"),
        ("s3:ListBucket", BUCKET, {"s3:prefix": "uploads/u/t/"}, "ImplicitlyDenied"),
        ("s3:ListBucket", BUCKET, {}, "ImplicitlyDenied"),
        ("s3:PutObject", f"{BUCKET}/outputs/a.csv", {}, "Allowed"),
        ("s3:GetObject", f"{BUCKET}/uploads/a.csv", {}, "ExplicitlyDenied"),
        ("secretsmanager:GetSecretValue",
         f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:key-AbC123", {}, "Allowed"),
        # A secret that does not exist has no suffix: `-??????` matches no ARN of it.
        ("secretsmanager:GetSecretValue",
         f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:key", {}, "ImplicitlyDenied"),
    ],
)  # fmt: skip
def test_identity_policies_decide_as_aws_does(
    simulator: PolicySimulator, action: str, resource: str, context: dict[str, Any], expected: str
) -> None:
    assert (
        simulator.decide(CALLER, ACCOUNT, Request(action, resource, context), IDENTITY) == expected
    )


@pytest.mark.parametrize(
    ("secure", "expected"), [("true", "Allowed"), ("false", "ExplicitlyDenied")]
)
def test_a_deny_in_the_resources_policy_wins_over_the_roles_allow(
    simulator: PolicySimulator, secure: str, expected: str
) -> None:
    request = Request("s3:PutObject", f"{BUCKET}/outputs/a.csv", {"aws:SecureTransport": secure})
    policy = ("files", SECURE_TRANSPORT_ONLY)
    assert simulator.decide(CALLER, ACCOUNT, request, IDENTITY, policy) == expected


def test_a_service_is_allowed_only_by_the_functions_permission_for_its_source(
    simulator: PolicySimulator,
) -> None:
    """API Gateway invokes a function only where the function's policy names the route."""
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:api"
    permission = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
                "Resource": function,
                "Condition": {"ArnLike": {"AWS:SourceArn": f"{API}/*/POST/threads/*/runs"}},
            }
        ],
    }
    none = Policies(key="service", identity=[])

    def invoked_from(route: str) -> str:
        source = f"{API}/dev/{route}"
        request = Request("lambda:InvokeFunction", function, {"aws:SourceArn": source})
        return simulator.decide(
            "apigateway.amazonaws.com", ACCOUNT, request, none, ("api", permission)
        )

    assert invoked_from("POST/threads/thr_1/runs") == "Allowed"
    assert invoked_from("GET/threads/thr_1/runs") == "ImplicitlyDenied"
