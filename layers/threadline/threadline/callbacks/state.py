"""A run's callback: where it goes, and how its delivery went (shown on the run view)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, computed_field


class CallbackState(BaseModel):
    url: str
    attempts: int = 0
    last_status_code: int | None = Field(
        default=None, description="The receiver's HTTP status at the last attempt."
    )
    last_error: str | None = Field(
        default=None,
        description="Why the last attempt got no answer: timeout, unreachable, unresolved, "
        "address_not_allowed, url_not_allowed.",
    )
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    gave_up_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> Literal["pending", "delivered", "failed"]:
        """pending until the run ends and the receiver answers 2xx; failed once given up."""
        if self.delivered_at is not None:
            return "delivered"
        return "failed" if self.gave_up_at is not None else "pending"
