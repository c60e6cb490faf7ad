"""Load a function's handler module as Lambda does, under a name of the caller's choosing.

Lambda puts the function's code directory on sys.path, so a handler imports its sibling
modules by their plain names (`import wiring`, `from routes import threads`). Here the code
directory is on sys.path only while the handler module runs, and the sibling modules it
imported are then taken out of sys.modules again: loading the handler again (another
execution environment) gives it siblings of its own (their module-level state, such as a
Powertools Router, is per environment as in Lambda), and two functions' siblings of the same
name never meet. So a handler must import its siblings when it is loaded, not later; shared
code belongs in the layer package. Loads must not run concurrently (callers serialise them).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


class HandlerImportError(Exception):
    """The module is missing or failed while it ran; the cause is chained."""


def _sibling_names(code_dir: Path) -> set[str]:
    return {
        entry.stem if entry.suffix == ".py" else entry.name
        for entry in code_dir.iterdir()
        if (entry.suffix == ".py" or entry.is_dir()) and not entry.name.startswith((".", "__"))
    }


def _is_sibling(name: str, siblings: set[str]) -> bool:
    return name.partition(".")[0] in siblings


def load_handler_module(code_dir: Path, module_path: str, module_name: str) -> ModuleType:
    """Run `code_dir`/`module_path` (dotted, as in a Handler setting) as module `module_name`,
    with its siblings importable while it runs; it stays in sys.modules under that name (as a
    real import leaves it: dataclasses and pydantic look their module up there)."""
    source = code_dir / f"{module_path.replace('.', '/')}.py"
    module_spec = importlib.util.spec_from_file_location(module_name, source)
    if module_spec is None or module_spec.loader is None or not source.is_file():
        raise HandlerImportError(f"cannot load {source}")
    siblings = _sibling_names(code_dir)
    # Modules of the same names loaded by someone else: put aside, and back afterwards.
    put_aside = {
        name: sys.modules.pop(name)
        for name in list(sys.modules)
        if _is_sibling(name, siblings) and name != module_name
    }
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    directory = str(code_dir)
    sys.path.insert(0, directory)
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[module_name]
        raise HandlerImportError(str(error)) from error
    finally:
        sys.path.remove(directory)
        # A snapshot: invocations on other threads import modules lazily meanwhile.
        loaded = [name for name in list(sys.modules) if _is_sibling(name, siblings)]
        for name in loaded:
            if name != module_name:
                del sys.modules[name]  # the handler module holds the ones it uses
        sys.modules.update(put_aside)
    return module
