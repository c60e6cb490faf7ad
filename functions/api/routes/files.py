"""Files: a presigned upload to a thread, and the thread's files."""

from __future__ import annotations

from http import HTTPStatus

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from routes.common import Id, answers, caller, json_bodies_only, json_response
from threadline import runtime
from threadline.api_models import CreateUploadBody, FileList, FileView
from threadline.files.uploads import PresignedUpload

router = Router()


@router.post(
    "/threads/<thread_id>/files",
    summary="Get a presigned POST to upload a file to the thread (ingested when it lands)",
    responses=answers(_201=PresignedUpload),
    middlewares=[json_bodies_only],
)
def create_upload(thread_id: Id, body: CreateUploadBody) -> Response[PresignedUpload]:
    upload = (
        runtime.current()
        .uploads()
        .create_upload(caller(router), thread_id, body.filename, body.content_type, body.size)
    )
    return json_response(HTTPStatus.CREATED, upload)


@router.get(
    "/threads/<thread_id>/files",
    summary="The thread's uploaded files and their status",
    responses=answers(_200=FileList),
)
def list_files(thread_id: Id) -> FileList:
    records = runtime.current().uploads().list_files(caller(router), thread_id)
    return FileList(files=[FileView.of(record) for record in records])
