"""Usage: the caller's tokens today against the daily budget, and recent days."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from routes.common import answers, caller
from threadline import runtime
from threadline.api_models import UsageView
from threadline.settings import ApiSettings, load

router = Router()


@router.get(
    "/usage", summary="The caller's token usage and daily budget", responses=answers(_200=UsageView)
)
def usage() -> UsageView:
    user = caller(router)
    budget = load(ApiSettings).daily_token_budget
    return UsageView.of(
        runtime.current().usage_ledger().summary(user, daily_token_budget=budget, days=30)
    )
