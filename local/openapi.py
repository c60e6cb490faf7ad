"""Write the API's OpenAPI document from the api function's own models: `make openapi`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCUMENT = REPO / "docs" / "openapi.json"


def generate() -> str:
    spec = importlib.util.spec_from_file_location(
        "threadline_api_app", REPO / "functions/api/app.py"
    )
    if spec is None or spec.loader is None:
        raise ImportError("functions/api/app.py cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return json.dumps(json.loads(module.openapi_json()), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    DOCUMENT.write_text(generate())
    print(f"wrote {DOCUMENT.relative_to(REPO)}")
