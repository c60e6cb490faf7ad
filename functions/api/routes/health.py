"""Liveness, without authentication."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from threadline.api_models import Health

router = Router()


@router.get("/health", summary="Liveness check (no authentication)")
def health() -> Health:
    return Health()
