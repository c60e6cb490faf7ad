"""`make rehearse`: a deploy of template.yaml rehearsed without AWS.

For each way of configuring the stack that changes what it makes (its conditions and
rules), the template is transformed as CloudFormation transforms it (SAM's translator).
cfn-lint then checks every reference, `!GetAtt`, dependency and property of the result. The
result is provisioned in moto as the stack `samconfig.toml` deploys, under the checks
CloudFormation and the services make that moto does not (`local.aws.deploy_checks`). Any
error fails the rehearsal with what CloudFormation would have said. `make rehearse` then
runs the demo's story on the transformed template.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from cfnlint.api import ManualArgs, lint
from moto import mock_aws

from local.aws import provision
from local.aws.deploy_checks import DeployRefused, characters
from local.aws.sam_translation import transformed

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "template.yaml"
REGION = "us-east-1"
STACK_NAME = "threadline-prod"  # samconfig.toml's longest

# Each set turns on what the others leave off; the conditions and the rule see every branch.
CONFIGURATIONS: dict[str, dict[str, str]] = {
    "defaults": {},
    "own issuer, account's logging role": {
        "JwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
        "JwtAudience": "example-client-id",
        "ApiGatewayCloudWatchRoleArn": "arn:aws:iam::123456789012:role/api-gateway-logs",
    },
    "every option on, longest stage": {
        "Stage": "production-eu-01",  # Stage's AllowedPattern takes 16 characters at most
        "AnalystDatabase": "s3://analyst-data/sales.sqlite",
        "ApiConcurrencyLimit": "50",
        "DailyTokenBudget": "1000000",
        "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:threadline-alarms",
        "RunWaitMode": "push",
        "CallbackAllowedHosts": "hooks.example.com",
    },
    "assistants": {"Backend": "assistants", "RunWaitMode": "poll"},
}


@dataclass(frozen=True)
class Rehearsed:
    configuration: str
    template_resources: int
    created: int
    template_bytes: int
    largest_inline_policies: int  # characters, one role's together
    most_managed_policies: int  # on one role
    lint_warnings: int


def lint_errors(template: dict[str, object]) -> tuple[list[str], int]:
    """cfn-lint's errors on the transformed template, and how many warnings it gave."""
    matches = lint(json.dumps(template), config=ManualArgs(regions=[REGION]))
    errors = [str(match) for match in matches if match.rule.severity == "error"]
    return errors, len(matches) - len(errors)


def rehearse(
    configuration: str, parameters: dict[str, str], template_path: Path = TEMPLATE
) -> Rehearsed:
    """Transform, lint and provision the template with these parameters; DeployRefused with
    every reason CloudFormation would refuse it for."""
    template = transformed(template_path, parameters, REGION, folder=REPO)
    errors, warnings = lint_errors(template)
    if errors:
        raise DeployRefused(f"{configuration}: cfn-lint found\n  " + "\n  ".join(errors))
    with mock_aws():
        try:
            stack = provision(
                template_path,
                parameters=parameters,
                stack_name=STACK_NAME,
                region=REGION,
                folder=REPO,
            )
        except ValueError as error:
            raise DeployRefused(f"{configuration}: {error}") from error
    return Rehearsed(
        configuration=configuration,
        template_resources=len(template["Resources"]),
        created=len(stack.resources),
        template_bytes=len(json.dumps(template, separators=(",", ":")).encode()),
        largest_inline_policies=max(
            sum(map(characters, role.inline)) for role in stack.roles.values()
        ),
        most_managed_policies=max(len(role.managed) for role in stack.roles.values()),
        lint_warnings=warnings,
    )


def main() -> int:
    print(f"Rehearsing a deploy of {TEMPLATE.name} as {STACK_NAME} in {REGION}")
    print(
        f"{'configuration':<36} {'resources':>9} {'created':>7} {'bytes':>8} "
        f"{'inline':>6} {'managed':>7} {'warnings':>8}"
    )
    for configuration, parameters in CONFIGURATIONS.items():
        try:
            result = rehearse(configuration, parameters)
        except DeployRefused as refused:
            print(f"REFUSED {refused}", file=sys.stderr)
            return 1
        print(
            f"{result.configuration:<36} {result.template_resources:>9} {result.created:>7} "
            f"{result.template_bytes:>8} {result.largest_inline_policies:>6} "
            f"{result.most_managed_policies:>7} {result.lint_warnings:>8}"
        )
    print("CloudFormation's limits: 500 resources, 1,048,576 bytes; IAM's: 10,240 inline")
    print("characters a role, 10 managed policies a role.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
