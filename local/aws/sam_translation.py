"""A SAM template as CloudFormation deploys it: transformed by the SAM translator.

The local stack provisions what the transform makes, as a deploy would: the functions'
roles with SAM's policy templates expanded, the permissions SAM adds for each event source,
the HTTP API's OpenAPI body, the event source mappings and schedule rules. Local code
locations (CodeUri, ContentUri, DefinitionUri) are first written as S3 locations in
LOCAL_CODE_BUCKET, as `sam package` would upload them; the provisioner reads them back
from the template's folder.

The translator is AWS's `aws-sam-translator`, installed with the SAM CLI in its own tool
environment (it pins a pydantic the app does not use); it runs there, in a child process.
Its result is kept under `.local/` by the digest of what went in.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess  # nosec B404: runs the SAM CLI's own interpreter, no shell
from pathlib import Path
from typing import Any

from local.aws.template import load_template

REPO = Path(__file__).resolve().parents[2]
# Where a packaged template's code lives; locally, a folder of the template's own.
LOCAL_CODE_BUCKET = "threadline-local-code"
_CODE_LOCATIONS = ("CodeUri", "ContentUri", "DefinitionUri")
_SAM_PYTHON = REPO / ".tools" / "uv-tools" / "aws-sam-cli" / "bin" / "python"
_CHILD = Path(__file__).with_name("sam_translator_child.py")
_CACHE = REPO / ".local" / "sam-transformed"


def packaged(template: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The template with its local code locations (relative to the template's `folder`, or
    absolute) written as LOCAL_CODE_BUCKET objects, keyed by their path from `folder`."""
    packaged_template = copy.deepcopy(template)
    sections = [
        resource.get("Properties", {}) for resource in packaged_template["Resources"].values()
    ]
    sections += packaged_template.get("Globals", {}).values()
    for properties in sections:
        for name in _CODE_LOCATIONS:
            location = properties.get(name)
            if isinstance(location, str) and not location.startswith("s3://"):
                key = os.path.relpath(folder / location, folder)
                properties[name] = f"s3://{LOCAL_CODE_BUCKET}/{key}"
    return packaged_template


def transformed(
    template_path: Path, parameters: dict[str, str], region: str, *, folder: Path | None = None
) -> dict[str, Any]:
    """The template as CloudFormation would deploy it with these parameter values; its code
    locations are relative to `folder` (by default the template's own)."""
    request = {
        "template": packaged(load_template(template_path), folder or template_path.parent),
        "parameters": parameters,
        "region": region,
    }
    text = json.dumps(request, sort_keys=True)
    digest = hashlib.sha256((text + _CHILD.read_text()).encode()).hexdigest()[:24]
    cached = _CACHE / f"{digest}.json"
    if cached.exists():
        result: dict[str, Any] = json.loads(cached.read_text())
        return result
    if not _SAM_PYTHON.exists():
        raise RuntimeError(f"the SAM CLI is not installed ({_SAM_PYTHON}): run `make dev`")
    completed = subprocess.run(  # nosec B603: a fixed interpreter and script, no shell
        [str(_SAM_PYTHON), str(_CHILD)],
        input=text,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if completed.returncode != 0:
        raise ValueError(f"the SAM transform of {template_path} failed:\n{completed.stderr}")
    result = json.loads(completed.stdout)
    _CACHE.mkdir(parents=True, exist_ok=True)
    draft = cached.with_suffix(f".{os.getpid()}.tmp")
    draft.write_text(completed.stdout)
    draft.replace(cached)  # whole or not at all: parallel tests may write the same one
    return result
