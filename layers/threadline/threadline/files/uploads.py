"""The presigned S3 POST a user uploads a file to a thread with, and the upload's record.

The browser sends the bytes straight to S3 (no Lambda payload limit, no API time spent);
the POST policy pins the key, the Content-Type and the exact size, once the request passes
`threadline.files.policy` (what may be uploaded at all).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel

from threadline import clock
from threadline.errors import InvalidRequestError
from threadline.files.records import FileRecord, FileStore
from threadline.ids import new_id

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from threadline.files.policy import UploadPolicy
    from threadline.threads.records import ThreadStore

UPLOAD_PREFIX = "uploads"
PRESIGN_EXPIRY_SECONDS = 300


# -- S3 keys and the presigned POST --------------------------------------------------------


@dataclass(frozen=True)
class UploadKey:
    user_id: str
    thread_id: str
    upload_id: str
    filename: str

    def __str__(self) -> str:
        return "/".join(
            [UPLOAD_PREFIX, self.user_id, self.thread_id, self.upload_id, self.filename]
        )

    @classmethod
    def parse(cls, key: str) -> UploadKey:
        """`uploads/{user}/{thread}/{upload_id}/{filename}`; InvalidRequestError otherwise."""
        parts = key.split("/")
        if len(parts) != 5 or parts[0] != UPLOAD_PREFIX or not all(parts):
            raise InvalidRequestError("unexpected_key", f"{key!r} is not an upload key")
        return cls(user_id=parts[1], thread_id=parts[2], upload_id=parts[3], filename=parts[4])


class PresignedUpload(BaseModel):
    """What the client needs to upload: POST `fields` plus the file (last) to `url`."""

    upload_id: str
    key: str
    url: str
    fields: dict[str, str]
    expires_in: int


def presign_upload(
    s3_client: S3Client,
    bucket: str,
    policy: UploadPolicy,
    *,
    user_id: str,
    thread_id: str,
    filename: str,
    content_type: str,
    size: int,
    expires_in: int = PRESIGN_EXPIRY_SECONDS,
) -> PresignedUpload:
    """A presigned POST for exactly this file: its key, its Content-Type and its size."""
    policy.check_request(filename, content_type, size)
    if "/" in user_id or "/" in thread_id:
        raise InvalidRequestError("invalid_id", "ids must not contain '/'")
    upload_id = new_id("upl")
    key = str(UploadKey(user_id, thread_id, upload_id, filename))
    post = s3_client.generate_presigned_post(
        Bucket=bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[
            {"Content-Type": content_type},
            ["content-length-range", size, size],
        ],
        ExpiresIn=expires_in,
    )
    return PresignedUpload(
        upload_id=upload_id,
        key=key,
        url=post["url"],
        fields=post["fields"],
        expires_in=expires_in,
    )


# -- the API's use cases -------------------------------------------------------------------


class Uploads:
    """Issue upload URLs for a user's thread and list what was uploaded to it."""

    def __init__(
        self,
        *,
        threads: ThreadStore,
        files: FileStore,
        s3_client: S3Client,
        bucket: str,
        policy: UploadPolicy,
        now: Callable[[], datetime] = clock.utc_now,
    ) -> None:
        self._threads = threads
        self._files = files
        self._s3 = s3_client
        self._bucket = bucket
        self._policy = policy
        self._now = now

    def create_upload(
        self, user_id: str, thread_id: str, filename: str, content_type: str, size: int
    ) -> PresignedUpload:
        """A presigned POST, and the file's `pending` record that ingestion will settle.

        NotFoundError if the thread is not the user's; InvalidRequestError if the file is not
        acceptable.
        """
        self._threads.get(user_id, thread_id)
        upload = presign_upload(
            self._s3,
            self._bucket,
            self._policy,
            user_id=user_id,
            thread_id=thread_id,
            filename=filename,
            content_type=content_type,
            size=size,
        )
        self._files.create_pending(
            FileRecord(
                upload_id=upload.upload_id,
                thread_id=thread_id,
                user_id=user_id,
                filename=filename,
                content_type=content_type,
                s3_key=upload.key,
                bytes=size,
                created_at=self._now(),
            )
        )
        return upload

    def list_files(self, user_id: str, thread_id: str) -> list[FileRecord]:
        """The thread's uploads, oldest first, those OpenAI has finished indexing settled;
        NotFoundError if the thread is not the user's."""
        self._threads.get(user_id, thread_id)
        return self._files.current(thread_id)
