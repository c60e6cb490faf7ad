"""Runs: start one on a thread (once per Idempotency-Key), read it, cancel it."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header

import wiring
from routes.common import Id, answers, caller, json_bodies_only, json_response
from threadline.api_models import RunAccepted, RunResource, StartRunBody

router = Router()

IdempotencyKey = Annotated[str | None, Header(alias="idempotency-key", max_length=128)]


@router.post(
    "/threads/<thread_id>/runs",
    summary="Post a message and start a run (202; poll the status URL)",
    responses=answers(_202=RunAccepted),
    middlewares=[json_bodies_only],
)
def start_run(
    thread_id: Id, body: StartRunBody, idempotency_key: IdempotencyKey = None
) -> Response[RunAccepted]:
    run = wiring.runs().start(
        caller(router), thread_id, body.message, body.assistant, idempotency_key=idempotency_key
    )
    status_url = f"/threads/{thread_id}/runs/{run.run_id}"
    accepted = RunAccepted(
        id=run.run_id, thread_id=thread_id, status=run.status, status_url=status_url
    )
    return json_response(HTTPStatus.ACCEPTED, accepted, headers={"Location": status_url})


@router.get(
    "/threads/<thread_id>/runs/<run_id>",
    summary="A run's status and result",
    responses=answers(_200=RunResource),
)
def get_run(thread_id: Id, run_id: Id) -> RunResource:
    found = wiring.runs().get(caller(router), thread_id, run_id)
    return RunResource.of(found.run, found.files)


@router.post(
    "/threads/<thread_id>/runs/<run_id>/cancel",
    summary="Cancel an active run (the state machine records it as cancelled)",
    responses=answers(_202=RunResource),
)
def cancel_run(thread_id: Id, run_id: Id) -> Response[RunResource]:
    run = wiring.runs().cancel(caller(router), thread_id, run_id)
    return json_response(HTTPStatus.ACCEPTED, RunResource.of(run))
