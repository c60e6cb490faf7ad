"""Write the API's OpenAPI document from the api function's own models: `make openapi`."""

from __future__ import annotations

import json
from pathlib import Path

from local.aws.handler_modules import load_handler_module

REPO = Path(__file__).resolve().parent.parent
DOCUMENT = REPO / "docs" / "openapi.json"


def generate() -> str:
    # As Lambda loads it: functions/api is its code directory, `app` the Handler's module.
    module = load_handler_module(REPO / "functions" / "api", "app", "threadline_api_app")
    return json.dumps(json.loads(module.openapi_json()), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    DOCUMENT.write_text(generate())
    print(f"wrote {DOCUMENT.relative_to(REPO)}")
