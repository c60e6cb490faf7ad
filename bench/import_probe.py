"""Run by bench.cold_start in a fresh interpreter (`python -P import_probe.py ...`); imports
nothing but `sys` and `time` before it times, and prints one JSON line.

    import_probe.py handler CODE_DIR MODULE   import a handler module as Lambda would
    import_probe.py libraries < NAMES         import exactly these modules, one per line
"""

from __future__ import annotations

import sys
import time


def import_handler(code_dir: str, module_name: str) -> dict[str, object]:
    sys.path.insert(0, code_dir)  # Lambda puts the function's code first on the path
    before = set(sys.modules)
    started = time.perf_counter()
    __import__(module_name)
    elapsed_ms = (time.perf_counter() - started) * 1000
    loaded = [name for name in sys.modules if name not in before]  # in import order
    return {
        "import_ms": elapsed_ms,
        "third_party_modules": [name for name in loaded if _is_third_party(name)],
        "openai_loaded": "openai" in sys.modules,
    }


def import_libraries(names: list[str]) -> dict[str, object]:
    failed = []
    started = time.perf_counter()
    for name in names:
        try:
            __import__(name)
        except Exception:
            failed.append(name)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return {"import_ms": elapsed_ms, "failed": failed}


def _is_third_party(module_name: str) -> bool:
    """Installed in site-packages: neither the standard library, nor the function's code, nor
    the threadline layer package."""
    import sysconfig

    package = sys.modules.get(module_name.partition(".")[0])
    paths = list(getattr(package, "__path__", None) or [])
    location = getattr(package, "__file__", None) or (paths[0] if paths else None)
    site_dirs = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    return location is not None and any(location.startswith(site) for site in site_dirs)


def main() -> None:
    mode, *arguments = sys.argv[1:]
    if mode == "handler":
        result = import_handler(*arguments)
    else:
        result = import_libraries(sys.stdin.read().split())
    import json

    print(json.dumps(result))


if __name__ == "__main__":
    main()
