"""Threads: get or create one for a purpose, list, read, delete."""

from __future__ import annotations

from http import HTTPStatus

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

import wiring
from routes.common import Cursor, Id, Limit, answers, caller, json_bodies_only, json_response
from threadline.api_models import CreateThreadBody, ThreadList, ThreadView

router = Router()


@router.post(
    "/threads",
    summary="Get or create the caller's thread for a purpose",
    responses=answers(_200=ThreadView, _201=ThreadView),
    middlewares=[json_bodies_only],
)
def create_thread(body: CreateThreadBody) -> Response[ThreadView]:
    thread, created = wiring.threads().open(caller(router), body.purpose)
    return json_response(HTTPStatus.CREATED if created else HTTPStatus.OK, ThreadView.of(thread))


@router.get(
    "/threads", summary="The caller's threads, newest first", responses=answers(_200=ThreadList)
)
def list_threads(limit: Limit = 20, cursor: Cursor = None) -> ThreadList:
    page = wiring.threads().page(caller(router), limit=limit, cursor=cursor)
    return ThreadList(
        threads=[ThreadView.of(thread) for thread in page.threads], next_cursor=page.next_cursor
    )


@router.get(
    "/threads/<thread_id>",
    summary="One of the caller's threads",
    responses=answers(_200=ThreadView),
)
def get_thread(thread_id: Id) -> ThreadView:
    return ThreadView.of(wiring.threads().get(caller(router), thread_id))


@router.delete(
    "/threads/<thread_id>",
    summary="Delete a thread here and remotely",
    responses=answers(_204=None),
)
def delete_thread(thread_id: Id) -> Response[None]:
    wiring.threads().delete(caller(router), thread_id)
    return Response(status_code=HTTPStatus.NO_CONTENT)
