"""Transform a SAM template as CloudFormation does, with AWS's own SAM translator.

Run by `local.aws.sam_translation` in the SAM CLI's interpreter, where `samtranslator` is
installed with the pydantic it pins (the app's environment has another). Reads
`{"template": ..., "parameters": ..., "region": ...}` as JSON on stdin and writes the
CloudFormation template as JSON on stdout; imports nothing of the project's.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


class _NoManagedPolicies:
    """The translator looks up AWS managed policies named by name in `Policies` (an IAM
    call); the templates here name them by ARN, so there is nothing to look up."""

    def load(self) -> dict[str, str]:
        return {}


def main() -> None:
    request: dict[str, Any] = json.load(sys.stdin)
    os.environ["AWS_DEFAULT_REGION"] = request["region"]
    # Imported here: only the SAM CLI's interpreter has it.
    from samtranslator.translator.transform import transform

    transformed = transform(request["template"], request["parameters"], _NoManagedPolicies())
    json.dump(transformed, sys.stdout, default=str)


if __name__ == "__main__":
    main()
