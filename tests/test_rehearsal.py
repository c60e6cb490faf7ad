"""The deploy rehearsal (`make rehearse`): the template, transformed as CloudFormation
transforms it, passes cfn-lint and CloudFormation's and IAM's checks in every
configuration, and each check refuses what CloudFormation would refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from moto import mock_aws

from local.aws import provision
from local.aws.deploy_checks import (
    MANAGED_POLICIES_PER_ROLE,
    SECTION_LIMITS,
    DeployRefused,
    check_template,
)
from local.aws.template import load_template
from local.rehearse import CONFIGURATIONS, REPO, TEMPLATE, rehearse


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_each_configuration_deploys(configuration: str) -> None:
    rehearsed = rehearse(configuration, CONFIGURATIONS[configuration])

    assert rehearsed.created > 100  # the conditions leave out a few, never most
    assert rehearsed.template_resources <= SECTION_LIMITS["Resources"]
    assert rehearsed.most_managed_policies <= MANAGED_POLICIES_PER_ROLE


def changed_template(tmp_path: Path, change: str, into: str) -> Path:
    text = TEMPLATE.read_text()
    assert change in text
    changed = tmp_path / "template.yaml"
    changed.write_text(text.replace(change, into, 1))
    return changed


def test_a_getatt_of_an_attribute_the_type_lacks_is_refused(tmp_path: Path) -> None:
    broken = changed_template(tmp_path, "!GetAtt CallbackQueue.Arn", "!GetAtt CallbackQueue.Url")

    with pytest.raises(DeployRefused, match=r"E1010.*'Url' is not one of"):
        rehearse("broken", {}, broken)


def test_a_dependency_on_a_missing_resource_is_refused(tmp_path: Path) -> None:
    broken = changed_template(
        tmp_path,
        "  ApiFunction:\n    Type: AWS::Serverless::Function\n",
        "  ApiFunction:\n    Type: AWS::Serverless::Function\n    DependsOn: NoSuchResource\n",
    )

    with pytest.raises(DeployRefused, match="NoSuchResource"):
        rehearse("broken", {}, broken)


def test_parameters_a_rule_forbids_are_refused_before_anything_is_made() -> None:
    with pytest.raises(DeployRefused, match="RunWaitMode push needs Backend responses"):
        rehearse("push on assistants", {"Backend": "assistants", "RunWaitMode": "push"})


def test_a_name_longer_than_its_service_takes_is_refused(tmp_path: Path) -> None:
    long_stage = 'AllowedPattern: "[a-z0-9-]{1,16}"'
    broken = changed_template(tmp_path, long_stage, 'AllowedPattern: "[a-z0-9-]{1,40}"')

    with pytest.raises(DeployRefused, match=r"FilesBucket: BucketName .* is 66 characters"):
        rehearse("long stage", {"Stage": "a" * 32}, broken)


def test_a_role_with_more_managed_policies_than_iam_allows_is_refused(tmp_path: Path) -> None:
    template = load_template(TEMPLATE)
    policies = template["Resources"]["ApiFunction"]["Properties"]["Policies"]
    policies.extend(
        f"arn:aws:iam::aws:policy/{name}"
        for name in (
            "AmazonS3ReadOnlyAccess",
            "AmazonSQSReadOnlyAccess",
            "AmazonSNSReadOnlyAccess",
            "AWSStepFunctionsReadOnlyAccess",
            "CloudWatchReadOnlyAccess",
            "AmazonDynamoDBReadOnlyAccess",
        )
    )
    broken = tmp_path / "template.yaml"
    broken.write_text(yaml.safe_dump(template))

    refused = pytest.raises(DeployRefused, match="ApiFunctionRole: 11 managed policies attached")
    with mock_aws(), refused:
        provision(broken, folder=REPO)


def test_a_template_over_cloudformations_quotas_is_refused() -> None:
    resources = {f"Queue{index}": {"Type": "AWS::SQS::Queue"} for index in range(501)}

    with pytest.raises(DeployRefused, match=r"Number of resources \(501\)"):
        check_template({"Resources": resources})
    with pytest.raises(DeployRefused, match="may not exceed 1048576 bytes"):
        check_template({"Resources": {}, "Description": "x" * 1_048_577})
