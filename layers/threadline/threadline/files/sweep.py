"""The sweep: no upload stays `pending`.

IngestUpload settles an upload when S3 reports it. When its ingest fails every retry Lambda
makes, Lambda's invocation record goes to the on-failure queue and FailUpload gives the
upload up at once. What neither settles - an S3 event lost or delayed, a file never uploaded,
a FailUpload that could not run - the sweep finds, on a schedule, among the uploads still
pending `PENDING_FOR` after their URL was issued (an index query, never a scan), oldest first:

- nothing in S3 under its key: nothing was uploaded before the URL expired; `failed`.
- otherwise it ingests it again, as S3's event would have (ingesting is idempotent: what an
  earlier attempt made is found again). An attempt is counted before it starts, so one the
  sweep never finished (a timeout) counts too; after `MAX_ATTEMPTS` the upload is given up.

So every upload settles within `PENDING_FOR` plus `MAX_ATTEMPTS` sweeps. A second sweep finds
nothing the first settled; only uploads whose attempt failed are tried again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel

from threadline import clock
from threadline.files.records import FileRecord, FileStatus, FileStore
from threadline.files.settling import IngestResult, UploadedObject, UploadSettler
from threadline.files.uploads import PRESIGN_EXPIRY_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

# The URL's expiry, then ample time for S3's event and Lambda's async retries (about three
# minutes on AWS): an upload still pending by then will not be settled by its S3 event.
PENDING_FOR = timedelta(seconds=PRESIGN_EXPIRY_SECONDS) + timedelta(minutes=10)
MAX_ATTEMPTS = 3
# Enough for one more upload's ingest (a few OpenAI calls at their timeout).
DEFAULT_MARGIN_MS = 60_000
MISSING_REASON = "upload_missing: no file arrived before the upload URL expired"


class SweepReport(BaseModel):
    ingested: int = 0  # at OpenAI now (indexing or ingested)
    rejected: int = 0
    failed: int = 0  # by its ingest, or given up
    retrying: int = 0  # the attempt failed; the next sweep tries again
    unfinished: bool = False  # time ran short; the next sweep goes on from the oldest

    def count(self, status: FileStatus) -> None:
        match status:
            case FileStatus.INGESTED | FileStatus.INDEXING:
                self.ingested += 1
            case FileStatus.REJECTED:
                self.rejected += 1
            case FileStatus.FAILED:
                self.failed += 1


class UploadSweep:
    def __init__(
        self,
        *,
        files: FileStore,
        settler: UploadSettler,
        s3_client: S3Client,
        bucket: str,
        pending_for: timedelta = PENDING_FOR,
        max_attempts: int = MAX_ATTEMPTS,
        margin_ms: int = DEFAULT_MARGIN_MS,
        now: Callable[[], datetime] = clock.utc_now,
    ) -> None:
        self._files = files
        self._settler = settler
        self._s3 = s3_client
        self._bucket = bucket
        self._pending_for = pending_for
        self._max_attempts = max_attempts
        self._margin_ms = margin_ms
        self._now = now

    def run(
        self, *, deadline_ms: Callable[[], int], ingest: Callable[[UploadedObject], IngestResult]
    ) -> SweepReport:
        """Settle or retry the uploads pending too long; `deadline_ms` is the time left,
        `ingest` ingests one object (the Ingestor's, made idempotent as IngestUpload's is)."""
        report = SweepReport()
        for record in self._files.pending_before(self._now() - self._pending_for):
            if deadline_ms() < self._margin_ms:
                report.unfinished = True
                return report
            self._sweep(record, ingest, report)
        return report

    def _sweep(
        self,
        record: FileRecord,
        ingest: Callable[[UploadedObject], IngestResult],
        report: SweepReport,
    ) -> None:
        if record.sweep_attempts >= self._max_attempts:  # the last attempt never finished
            self._give_up(record, self._uploaded_object(record), report)
            return
        if not self._files.claim_sweep_attempt(record):
            return  # settled, or another sweep took this attempt
        uploaded = self._uploaded_object(record)
        if uploaded is None:
            self._give_up(record, None, report)
            return
        try:
            result = ingest(uploaded)
        except Exception as error:  # whatever it was, the upload is retried or given up
            attempt = record.sweep_attempts + 1
            logger.warning(
                "a swept upload's ingest failed",
                extra={
                    "upload_id": record.upload_id,
                    "attempt": attempt,
                    "error": type(error).__name__,
                },
            )
            if attempt < self._max_attempts:
                report.retrying += 1
            else:
                self._give_up(record, uploaded, report)
            return
        if not result.duplicate:
            report.count(result.status)

    def _give_up(
        self, record: FileRecord, uploaded: UploadedObject | None, report: SweepReport
    ) -> None:
        if uploaded is None:
            if self._files.mark_failed(record.thread_id, record.upload_id, MISSING_REASON):
                report.count(FileStatus.FAILED)
            return
        reason = f"ingest_failed: not processed after {self._max_attempts} retries; upload it again"
        if not self._settler.give_up(uploaded, reason).duplicate:
            report.count(FileStatus.FAILED)

    def _uploaded_object(self, record: FileRecord) -> UploadedObject | None:
        """The object uploaded under the record's key, as S3's event would describe it; None
        if nothing was. The first version: a later one is a second upload to a used URL."""
        listing = self._s3.list_object_versions(Bucket=self._bucket, Prefix=record.s3_key)
        versions = [v for v in listing.get("Versions", []) if v["Key"] == record.s3_key]
        if not versions:
            return None
        first = versions[-1]  # S3 lists a key's versions newest first
        return UploadedObject(
            bucket=self._bucket,
            key=record.s3_key,
            size=first["Size"],
            etag=first["ETag"].strip('"'),
            # "null": written while the bucket was unversioned, as S3 events leave it out.
            version_id=None if first["VersionId"] == "null" else first["VersionId"],
        )
