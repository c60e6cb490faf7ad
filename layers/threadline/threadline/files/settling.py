"""An object S3 reported under `uploads/`, what became of it, and settling its upload
without OpenAI: its file record and its object in S3.

An ingest (`threadline.files.ingest`) settles through these; an upload whose every ingest failed is
given up (`UploadSettler.give_up`, which needs no OpenAI): settled `failed` and its object
deleted. What it may have left at OpenAI is named for it, and goes with its thread (cleanup).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from pydantic import BaseModel

from threadline.errors import InvalidRequestError
from threadline.files.records import FileRecord, FileStatus, FileStore
from threadline.files.uploads import UploadKey

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parser.models import S3RecordModel
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import DeleteObjectRequestTypeDef

logger = logging.getLogger(__name__)


class UploadedObject(BaseModel):
    """One object S3 reported created (a record of an ObjectCreated event)."""

    bucket: str
    key: str
    size: int
    etag: str | None = None
    version_id: str | None = None

    @classmethod
    def from_record(cls, record: S3RecordModel) -> UploadedObject:
        s3_object = record.s3.object
        if s3_object is None:
            raise ValueError("the S3 record names no object")
        return cls(
            bucket=record.s3.bucket.name,
            key=unquote_plus(s3_object.key),  # S3 form-encodes keys in its events
            size=int(s3_object.size or 0),
            etag=s3_object.eTag,
            version_id=s3_object.versionId,
        )


class IngestResult(BaseModel):
    key: str
    status: FileStatus
    upload_id: str | None = None
    thread_id: str | None = None
    reason: str | None = None
    openai_file_id: str | None = None
    bytes: int = 0
    duplicate: bool = False  # the upload had already settled: this event changed nothing


class UploadSettler:
    """What settling an upload needs besides OpenAI: its record and its object in S3."""

    def __init__(self, *, files: FileStore, s3_client: S3Client) -> None:
        self._files = files
        self._s3 = s3_client

    def give_up(self, uploaded: UploadedObject, reason: str) -> IngestResult:
        """Settle an upload no ingest could finish (every retry failed) as `failed`, and
        delete its object; one that settled meanwhile keeps its outcome."""
        try:
            record = self._issued_record(uploaded)
        except InvalidRequestError as error:
            return self._quarantine(uploaded, error)
        # Settled first, deleted after: a concurrent ingest that settled it keeps the bytes.
        if not self._files.mark_failed(record.thread_id, record.upload_id, reason):
            return self._already_settled(
                uploaded, self._files.get(record.thread_id, record.upload_id)
            )
        self._delete_object(uploaded)
        return self._result(uploaded, record, FileStatus.FAILED, reason=reason)

    def _issued_record(self, uploaded: UploadedObject) -> FileRecord:
        """The record of the upload the object is; InvalidRequestError if we issued none."""
        location = UploadKey.parse(uploaded.key)
        record = self._files.find(location.thread_id, location.upload_id)
        if record is None or record.s3_key != uploaded.key:
            raise InvalidRequestError("unknown_upload", "no upload was issued for it")
        return record

    def _quarantine(self, uploaded: UploadedObject, error: InvalidRequestError) -> IngestResult:
        """Not an upload we issued: delete it; there is no record to settle."""
        self._delete_object(uploaded)
        logger.warning(
            "deleted an object that is not an issued upload", extra={"key": uploaded.key}
        )
        return IngestResult(
            key=uploaded.key, status=FileStatus.REJECTED, reason=f"{error.code}: {error}"
        )

    def _already_settled(self, uploaded: UploadedObject, record: FileRecord) -> IngestResult:
        """A duplicate event, or a second upload to a used URL: the latter is discarded."""
        if uploaded.version_id is not None and uploaded.version_id != record.s3_version_id:
            self._delete_object(uploaded)
        return self._result(
            uploaded,
            record,
            record.status,
            reason=record.reason,
            openai_file_id=record.openai_file_id,
            duplicate=True,
        )

    def _result(
        self,
        uploaded: UploadedObject,
        record: FileRecord,
        status: FileStatus,
        *,
        reason: str | None = None,
        openai_file_id: str | None = None,
        duplicate: bool = False,
    ) -> IngestResult:
        return IngestResult(
            key=uploaded.key,
            status=status,
            upload_id=record.upload_id,
            thread_id=record.thread_id,
            reason=reason,
            openai_file_id=openai_file_id,
            bytes=uploaded.size,
            duplicate=duplicate,
        )

    def _delete_object(self, uploaded: UploadedObject) -> None:
        # With a version id the bytes are gone for good; without, on a versioned bucket,
        # S3 would only add a delete marker over them.
        request: DeleteObjectRequestTypeDef = {"Bucket": uploaded.bucket, "Key": uploaded.key}
        if uploaded.version_id:
            request["VersionId"] = uploaded.version_id
        self._s3.delete_object(**request)
