"""Messages: a thread's history, a page of runs at a time."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

import wiring
from routes.common import Cursor, Id, Limit, answers, caller
from threadline.api_models import MessageList, MessageView

router = Router()

Order = Annotated[str, Query(pattern="^(asc|desc)$")]


@router.get(
    "/threads/<thread_id>/messages",
    summary="The thread's history: each run's message and, once completed, its answer",
    description=(
        "Newest first by default. `limit` counts runs; a run that failed, timed out or was "
        "cancelled is not part of the history (the next run continues from the last "
        "completed one)."
    ),
    responses=answers(_200=MessageList),
)
def list_messages(
    thread_id: Id, limit: Limit = 20, cursor: Cursor = None, order: Order = "desc"
) -> MessageList:
    page = wiring.threads().messages(
        caller(router), thread_id, runs=limit, cursor=cursor, newest_first=order == "desc"
    )
    return MessageList(
        messages=[MessageView(id=m.id, role=m.role, text=m.text) for m in page.messages],
        next_cursor=page.next_cursor,
    )
