"""The API's domain services: thin accessors over the runtime's composition root, which
builds each once per execution environment on first use (`threadline.runtime.reset()` starts
over, with the parts a test passes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from threadline import runtime

if TYPE_CHECKING:
    from threadline.runs.approvals import RunApprovals
    from threadline.runs.service import RunService
    from threadline.threads.service import ThreadService


def threads() -> ThreadService:
    return runtime.current().thread_service()


def runs() -> RunService:
    return runtime.current().run_service()


def approvals() -> RunApprovals:
    return runtime.current().run_approvals()
