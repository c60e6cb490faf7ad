"""AWS::SecretsManager::Secret."""

from __future__ import annotations

import json
from typing import Any

from local.aws.intrinsics import ProvisionedResource
from local.aws.resources.context import ProvisionContext

# GenerateSecretString keys that GetRandomPassword takes under the same name.
_PASSWORD_OPTIONS = (
    "PasswordLength",
    "ExcludeCharacters",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "ExcludeLowercase",
    "IncludeSpace",
    "RequireEachIncludedType",
)


def provision_secret(
    ctx: ProvisionContext, logical_id: str, properties: dict[str, Any]
) -> ProvisionedResource:
    secretsmanager = ctx.client("secretsmanager")
    name = properties.get("Name") or ctx.physical_name(logical_id, max_length=512)
    optional: dict[str, Any] = {
        key: properties[key] for key in ("Description", "KmsKeyId", "Tags") if key in properties
    }
    if "GenerateSecretString" in properties:
        optional["SecretString"] = _generated_secret(
            secretsmanager, properties["GenerateSecretString"]
        )
    elif "SecretString" in properties:
        optional["SecretString"] = properties["SecretString"]
    arn = secretsmanager.create_secret(Name=name, **optional)["ARN"]
    return ProvisionedResource(ref=arn, attributes={"Id": arn})


def _generated_secret(secretsmanager: Any, options: dict[str, Any]) -> str:
    password = secretsmanager.get_random_password(
        **{key: options[key] for key in _PASSWORD_OPTIONS if key in options}
    )["RandomPassword"]
    if "SecretStringTemplate" not in options:
        return password
    secret = json.loads(options["SecretStringTemplate"])
    secret[options["GenerateStringKey"]] = password
    return json.dumps(secret)
