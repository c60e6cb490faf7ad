"""Files a tool hands the user (ToolContext.save_file): stored with the run's outputs in S3,
beside the files the model made, and listed in the run's files with fresh download URLs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from threadline.files.generated import OUTPUT_PREFIX, StoredFile, safe_name
from threadline.runs.records import RunStore
from threadline.tools.registry import SavedFile

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class RunFileSaver:
    """Saves the files of one run's tools (a `FileSaver`)."""

    s3: Callable[[], S3Client]  # built on the first save
    bucket: str
    runs: RunStore
    user_id: str
    thread_id: str
    run_id: str

    def __call__(self, call_id: str, filename: str, body: bytes, content_type: str) -> SavedFile:
        """Stored as `outputs/{user}/{thread}/{run}/{name}`; the name is the call's id and
        the tool's name, so calls cannot overwrite each other's files while a retried call
        writes its own again."""
        name = f"{safe_name(call_id)}-{safe_name(filename) or 'file'}"
        key = f"{OUTPUT_PREFIX}/{self.user_id}/{self.thread_id}/{self.run_id}/{name}"
        self.s3().put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        stored = StoredFile(file_id=call_id, filename=name, s3_key=key, bytes=len(body))
        self.runs.add_generated_file(self.thread_id, self.run_id, stored)
        return SavedFile(filename=name, bytes=len(body))
