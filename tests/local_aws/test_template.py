"""Template loading and intrinsic functions, without moto."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from local.aws.intrinsics import ProvisionedResource, Resolver
from local.aws.template import dependency_order, load_template

TEMPLATE = """
Mappings:
  Sizes: { dev: { memory: 128 } }
Conditions:
  IsDev: !Equals [!Ref Stage, dev]
Globals:
  Function:
    Layers: [!Ref Layer]
    Environment: { Variables: { SHARED: one, OVERRIDDEN: global } }
Resources:
  Layer: { Type: AWS::Serverless::LayerVersion }
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Layers: [extra-layer]
      Environment: { Variables: { OVERRIDDEN: local } }
      Values:
        sub_short: !Sub "${Bucket}/${Bucket.Arn}/${AWS::Region}/${!Literal}"
        sub_long: !Sub ["${Name}-${Stage}", { Name: !GetAtt Bucket.Arn }]
        select_split: !Select [1, !Split [",", "a,b,c"]]
        join: !Join ["-", [x, 1, true]]
        find: !FindInMap [Sizes, !Ref Stage, memory]
        when: !If [IsDev, !Ref AWS::NoValue, prod-only]
        negated: !Not [!Condition IsDev]
  Bucket: { Type: AWS::S3::Bucket }
"""


@pytest.fixture
def template(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    return load_template(path)


def test_short_form_tags_become_the_long_form(template: dict[str, Any]) -> None:
    values = template["Resources"]["Fn"]["Properties"]["Values"]
    assert values["sub_long"] == {
        "Fn::Sub": ["${Name}-${Stage}", {"Name": {"Fn::GetAtt": ["Bucket", "Arn"]}}]
    }
    assert values["negated"] == {"Fn::Not": [{"Condition": "IsDev"}]}


def test_resources_come_after_what_they_reference(template: dict[str, Any]) -> None:
    order = dependency_order(template["Resources"])

    assert order.index("Bucket") < order.index("Fn")
    assert order.index("Layer") < order.index("Fn")


def test_circular_references_are_refused() -> None:
    resources = {
        "A": {"Properties": {"X": {"Ref": "B"}}},
        "B": {"Properties": {"X": {"Fn::Sub": "${A.Arn}"}}},
    }
    with pytest.raises(ValueError, match="circular"):
        dependency_order(resources)


def test_intrinsics_resolve_against_parameters_and_created_resources(
    template: dict[str, Any],
) -> None:
    resolver = Resolver(
        parameters={"Stage": "dev"},
        pseudo_parameters={"AWS::Region": "us-east-1"},
        condition_definitions=template["Conditions"],
        mappings=template["Mappings"],
    )
    resolver.add_resource(
        "Bucket", ProvisionedResource(ref="my-bucket", attributes={"Arn": "arn:aws:s3:::my-bucket"})
    )

    values = resolver.resolve(template["Resources"]["Fn"]["Properties"]["Values"])

    assert values == {
        "sub_short": "my-bucket/arn:aws:s3:::my-bucket/us-east-1/${Literal}",
        "sub_long": "arn:aws:s3:::my-bucket-dev",
        "select_split": "b",
        "join": "x-1-true",
        "find": 128,
        "negated": False,
    }  # `when` resolved to AWS::NoValue, so the key is gone


def test_unknown_references_are_named() -> None:
    resolver = Resolver(parameters={}, pseudo_parameters={}, condition_definitions={}, mappings={})
    with pytest.raises(ValueError, match="'Missing'"):
        resolver.resolve({"Ref": "Missing"})
