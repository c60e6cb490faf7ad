"""Files the model produced during a run, copied to S3 and handed out as presigned URLs.

S3 is where they live for Threadline: a container file disappears with its container (about
twenty minutes idle), and an Assistants output file would stay at OpenAI for good, so once
copied the OpenAI copy of the latter is deleted. Copying is idempotent: an object already in
S3 is not fetched again, so a retried FinishRun copies nothing twice.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import filetype
from pydantic import BaseModel

from threadline.backends.base import AssistantBackend, GeneratedFile

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

OUTPUT_PREFIX = "outputs"
DOWNLOAD_EXPIRY_SECONDS = 300
MAX_NAME_CHARS = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class StoredFile(BaseModel):
    file_id: str
    filename: str
    s3_key: str
    bytes: int


class DownloadLink(BaseModel):
    filename: str
    bytes: int
    url: str
    expires_in: int


def store_generated_files(
    *,
    user_id: str,
    thread_id: str,
    run_id: str,
    files: list[GeneratedFile],
    backend: AssistantBackend,
    s3_client: S3Client,
    bucket: str,
) -> list[StoredFile]:
    """Copy each generated file to `outputs/{user}/{thread}/{run}/{name}`."""
    stored: list[StoredFile] = []
    taken: set[str] = set()
    for file in files:
        name = _unique(safe_name(file.filename), file.file_id, taken)
        key = f"{OUTPUT_PREFIX}/{user_id}/{thread_id}/{run_id}/{name}"
        size = _stored_size(s3_client, bucket, key)
        if size is None:
            content = backend.download_generated_file(file)
            s3_client.put_object(
                Bucket=bucket, Key=key, Body=content, ContentType=_content_type(content)
            )
            size = len(content)
        if file.container_id is None:  # idempotent: a retry finishes a delete that failed
            backend.delete_file(file.file_id)
        stored.append(StoredFile(file_id=file.file_id, filename=name, s3_key=key, bytes=size))
    return stored


def download_urls(
    s3_client: S3Client,
    bucket: str,
    stored: list[StoredFile],
    expires_in: int = DOWNLOAD_EXPIRY_SECONDS,
) -> list[DownloadLink]:
    """Presigned GET URLs that download each file under its name."""
    return [
        DownloadLink(
            filename=file.filename,
            bytes=file.bytes,
            url=s3_client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": bucket,
                    "Key": file.s3_key,
                    "ResponseContentDisposition": f'attachment; filename="{file.filename}"',
                },
                ExpiresIn=expires_in,
            ),
            expires_in=expires_in,
        )
        for file in stored
    ]


def safe_name(filename: str | None) -> str:
    """The model's file name reduced to safe characters (it becomes a key and a header)."""
    base = (filename or "").rsplit("/", 1)[-1]
    return _UNSAFE.sub("_", base).strip("._")[-MAX_NAME_CHARS:]


def _unique(name: str, file_id: str, taken: set[str]) -> str:
    """The name, prefixed by the file id if the run already has one so named; an unnamed
    file (an Assistants image) is `{file_id}.png`."""
    if not name:
        name = f"{safe_name(file_id)}.png"
    elif name in taken:
        name = f"{safe_name(file_id)}-{name}"
    taken.add(name)
    return name


def _stored_size(s3_client: S3Client, bucket: str, key: str) -> int | None:
    """The object's size if it is stored. A listing of its key, not a HEAD: a missing object
    is then an empty listing, with no read grant on outputs and no bucket-wide listing."""
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
    return next((item["Size"] for item in listed if item["Key"] == key), None)


def _content_type(content: bytes) -> str:
    kind = filetype.guess(content)
    return kind.mime if kind else "application/octet-stream"
