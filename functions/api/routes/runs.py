"""Runs: start one on a thread (once per Idempotency-Key), read it, cancel it, decide the
tool calls it waits on."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header

import wiring
from routes.common import Id, answers, caller, json_bodies_only, json_response
from threadline.api_models import ApprovalsBody, RunAccepted, RunResource, StartRunBody

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
    started = wiring.runs().start(
        caller(router),
        thread_id,
        body.message,
        body.assistant,
        idempotency_key=idempotency_key,
        if_busy=body.if_busy,
        callback_url=body.callback_url,
    )
    status_url = f"/threads/{thread_id}/runs/{started.run.run_id}"
    accepted = RunAccepted(
        id=started.run.run_id,
        thread_id=thread_id,
        status=started.run.status,
        status_url=status_url,
        queue_position=started.queue_position,
    )
    return json_response(HTTPStatus.ACCEPTED, accepted, headers={"Location": status_url})


@router.get(
    "/threads/<thread_id>/runs/<run_id>",
    summary="A run's status and result",
    responses=answers(_200=RunResource),
)
def get_run(thread_id: Id, run_id: Id) -> RunResource:
    found = wiring.runs().get(caller(router), thread_id, run_id)
    return RunResource.of(found.run, found.files, found.queue_position)


@router.post(
    "/threads/<thread_id>/runs/<run_id>/cancel",
    summary="Cancel a run: a queued one leaves the queue, an active one is stopped",
    responses=answers(_202=RunResource),
)
def cancel_run(thread_id: Id, run_id: Id) -> Response[RunResource]:
    run = wiring.runs().cancel(caller(router), thread_id, run_id)
    return json_response(HTTPStatus.ACCEPTED, RunResource.of(run))


@router.post(
    "/threads/<thread_id>/runs/<run_id>/approvals",
    summary="Approve or deny tool calls the run waits on (the last decision resumes it)",
    responses=answers(_200=RunResource),
    middlewares=[json_bodies_only],
)
def decide_approvals(thread_id: Id, run_id: Id, body: ApprovalsBody) -> RunResource:
    run = wiring.approvals().decide(caller(router), thread_id, run_id, body.decisions)
    return RunResource.of(run)
