"""Assistants: the deployment's assistants, for a client to offer a choice."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from routes.common import answers, caller
from threadline.api_models import AssistantList
from threadline.assistant_config import catalogue
from threadline.settings import ApiSettings, load

router = Router()


@router.get(
    "/assistants",
    summary="The deployment's assistants and their tools",
    responses=answers(_200=AssistantList),
)
def list_assistants() -> AssistantList:
    caller(router)  # signed-in users only
    return AssistantList.of(catalogue(), load(ApiSettings).openai_model)
