"""Each function sees its own environment variables only, as in a Lambda process of its own.

The local stack runs every function in one process, with one `os.environ`. While
`separated()` is active, `os.environ` answers an invocation (and the threads it starts) with
the process's variables less the other functions' (`as_function`); outside any invocation it
is the process's, unchanged. Values are the process's, so what the local stack sets for the
functions (its local endpoints) still holds. Writes go to the process's variables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar

# The variables an invocation does not see: the other functions'.
_hidden: ContextVar[frozenset[str] | None] = ContextVar("function_environment", default=None)


class _SeparatedEnviron(MutableMapping[str, str]):
    def __init__(self, process: MutableMapping[str, str]) -> None:
        self.process = process

    def __getitem__(self, key: str) -> str:
        if key in (_hidden.get() or ()):
            raise KeyError(key)
        return self.process[key]

    def __iter__(self) -> Iterator[str]:
        hidden = _hidden.get() or frozenset()
        return iter([key for key in self.process if key not in hidden])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __setitem__(self, key: str, value: str) -> None:
        self.process[key] = value

    def __delitem__(self, key: str) -> None:
        del self.process[key]

    def copy(self) -> dict[str, str]:
        return dict(self)


@contextmanager
def separated() -> Iterator[None]:
    """While active, an invocation (`as_function`) sees its function's variables only."""
    process = os.environ
    # Replaced, not cleared: every reader looks `os.environ` up when it reads.
    os.environ = _SeparatedEnviron(process)  # type: ignore[assignment]  # noqa: B003
    try:
        yield
    finally:
        os.environ = process  # noqa: B003


@contextmanager
def as_function(environment: Mapping[str, str], every: frozenset[str]) -> Iterator[None]:
    """Run the context as an invocation of a function with `environment`, among functions
    whose variables are `every`."""
    token = _hidden.set(every - set(environment))
    try:
        yield
    finally:
        _hidden.reset(token)
