"""The composition root: builds the real dependencies once per Lambda cold start.

One `Runtime` holds everything a handler uses, each part built on first use (a cold start pays
only for what it touches) and kept for the execution environment. Its parts are grouped as the
package is: the shared clients and stores (`parts`), then runs, threads, files and events. Handlers
reach the one current root with `current()`; `reset()` starts a new one (a new cold start: the
local stack calls it between stacks, tests to swap parts). A root takes overrides for its leaf
clients and stores, so tests and the local stack can pass fakes or fresh clients.

On Lambda an execution environment is a process, with one root. The local stack runs many
environments in one process, each in a context of its own: `start_environment()` gives the
running context a root of its own, which `current()` then returns.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar

from threadline.runtime.events import EventParts
from threadline.runtime.files import FileParts
from threadline.runtime.runs import RunParts
from threadline.runtime.streams import StreamParts
from threadline.runtime.threads import ThreadParts


class Runtime(RunParts, ThreadParts, FileParts, EventParts, StreamParts):
    """The dependencies of one execution environment, each built once, on first use."""


class _Current:
    """The one current root (None until first use)."""

    root: Runtime | None = None
    lock = threading.Lock()


_environment_root: ContextVar[Runtime | None] = ContextVar("threadline_root", default=None)


def start_environment() -> Runtime:
    """Give the running context a root and settings of its own (a cold start of one of many
    environments in a process)."""
    from threadline.settings import load_apart

    load_apart()
    root = Runtime()
    _environment_root.set(root)
    return root


def current() -> Runtime:
    """This execution environment's root, made on first use."""
    root = _environment_root.get()
    if root is not None:
        return root
    with _Current.lock:
        if _Current.root is None:
            _Current.root = Runtime()
        return _Current.root


def reset(root: Runtime | None = None) -> Runtime:
    """Start over as a new cold start would: `root` (or a new default root) becomes current,
    and the settings read from the environment are read again."""
    from threadline.assistant_config import assistants, catalogue
    from threadline.settings import forget_loaded

    forget_loaded()
    catalogue.cache_clear()
    assistants.cache_clear()
    with _Current.lock:
        _Current.root = root if root is not None else Runtime()
        return _Current.root


__all__ = ["Runtime", "current", "reset", "start_environment"]
