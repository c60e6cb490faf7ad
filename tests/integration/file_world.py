"""The files domain on moto (table as template.yaml declares it, a versioned bucket) and the
local OpenAI server in-process, with one clock both read (it moves only when a test moves
it); plus PNG bytes and a backend with one failing method."""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import openai
from botocore.config import Config

from local.openai_server import OpenAIServer, sdk_client
from threadline.assistant_config import load_assistant
from threadline.backends import RunView, make_backend
from threadline.backends.base import AssistantBackend, RunHandle, RunOwner
from threadline.cleanup import S3_DELETE_BATCH, Cleaner
from threadline.files.ingest import Ingestor
from threadline.files.policy import UploadPolicy
from threadline.files.records import FileStore, run_context
from threadline.files.settling import IngestResult, UploadedObject
from threadline.files.sweep import UploadSweep
from threadline.files.uploads import PresignedUpload, Uploads
from threadline.ids import new_id
from threadline.runs.records import RunStore
from threadline.threads.creation import ThreadCreator
from threadline.threads.records import Thread, ThreadStore
from threadline.threads.run_lock import RunLock
from threadline.tools import ToolRegistry
from threadline.usage import UsageLedger

BUCKET = "threadline-files-test"
RETENTION = timedelta(days=7)


class Clock:
    def __init__(self) -> None:
        self.moment = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment += delta


@dataclass
class World:
    server: OpenAIServer
    backend: AssistantBackend
    table: Any
    s3: Any
    clock: Clock = field(default_factory=Clock)
    policy: UploadPolicy = field(default_factory=UploadPolicy)
    bucket: str = BUCKET

    def __post_init__(self) -> None:
        self.threads = ThreadStore(self.table, now=self.clock)
        self.creator = ThreadCreator(
            self.table, threads=self.threads, retention=RETENTION, now=self.clock
        )
        self.lock = RunLock(self.table, threads=self.threads, retention=RETENTION, now=self.clock)
        self.files = FileStore(self.table, backend=lambda: self.backend, now=self.clock)
        self.runs = RunStore(self.table, now=self.clock)
        self.uploads = Uploads(
            threads=self.threads,
            files=self.files,
            s3_client=self.s3,
            bucket=self.bucket,
            policy=self.policy,
            now=self.clock,
        )

    def ingestor(self, backend: AssistantBackend | None = None) -> Ingestor:
        return Ingestor(
            threads=self.threads,
            files=self.files,
            backend=backend or self.backend,
            s3_client=self.s3,
            policy=self.policy,
        )

    def sweeper(self) -> UploadSweep:
        return UploadSweep(
            files=self.files,
            settler=self.ingestor(),
            s3_client=self.s3,
            bucket=self.bucket,
            now=self.clock,
        )

    def sweep(self) -> dict[str, Any]:
        """One sweep with all the time it needs; what it did, zero counts left out."""
        report = self.sweeper().run(deadline_ms=lambda: 10**9, ingest=self.ingestor().ingest)
        return {name: count for name, count in report.model_dump().items() if count}

    def cleaner(
        self, backend: AssistantBackend | None = None, *, delete_batch: int = S3_DELETE_BATCH
    ) -> Cleaner:
        return Cleaner(
            threads=self.threads,
            files=self.files,
            runs=self.runs,
            usage=UsageLedger(self.table, now=self.clock),
            backend=backend or self.backend,
            s3_client=self.s3,
            bucket=self.bucket,
            retention=RETENTION,
            delete_batch=delete_batch,
            now=self.clock,
        )

    def new_thread(self, user_id: str) -> Thread:
        thread, _ = self.creator.get_or_create(
            user_id,
            new_id("purpose"),
            reuse_for=timedelta(hours=1),
            backend=self.backend.name,
            create_remote=self.backend.create_thread,
            delete_remote=self.backend.delete_thread,
        )
        return thread

    def put(self, key: str, content: bytes, content_type: str = "text/plain") -> UploadedObject:
        """Store an object as the presigned POST would, and describe it as S3's event does."""
        put = self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=content, ContentType=content_type
        )
        return UploadedObject(
            bucket=self.bucket,
            key=key,
            size=len(content),
            etag=put["ETag"].strip('"'),
            version_id=put.get("VersionId"),
        )

    def upload(
        self,
        thread: Thread,
        filename: str,
        content: bytes,
        content_type: str = "text/plain",
        *,
        declared_size: int | None = None,
    ) -> tuple[PresignedUpload, UploadedObject]:
        ticket = self.uploads.create_upload(
            thread.user_id,
            thread.thread_id,
            filename,
            content_type,
            declared_size if declared_size is not None else len(content),
        )
        return ticket, self.put(ticket.key, content, content_type)

    def ingest_new(
        self, thread: Thread, filename: str, content: bytes, content_type: str = "text/plain"
    ) -> IngestResult:
        _ticket, uploaded = self.upload(thread, filename, content, content_type)
        return self.ingestor().ingest(uploaded)

    def versions(self, prefix: str) -> list[dict[str, Any]]:
        listing = self.s3.list_object_versions(Bucket=self.bucket, Prefix=prefix)
        return listing.get("Versions", []) + listing.get("DeleteMarkers", [])

    def openai_files(self) -> dict[str, str]:
        """file id -> filename of every file at the OpenAI server."""
        return {file_id: f.body["filename"] for file_id, f in self.server.state.files.items()}

    def finished_run(self, thread: Thread, message: str, *, with_files: bool = True) -> RunView:
        """A run on the backend directly (no state machine), with the thread's RunContext."""
        return self.finished_remote_run(thread, message, with_files=with_files)[1]

    def finished_remote_run(
        self, thread: Thread, message: str, *, with_files: bool = True
    ) -> tuple[RunHandle, RunView]:
        context = run_context(self.threads.get(thread.user_id, thread.thread_id), self.files)
        handle = self.backend.start_run(
            thread,
            message,
            load_assistant("data_analyst"),
            ToolRegistry([]),
            context if with_files else context.model_copy(update={"file_ids": []}),
            owner=RunOwner(thread_id=thread.thread_id, user_id=thread.user_id, run_id="run_1"),
        )
        for _ in range(6000):  # bounded: it returns once the condition holds
            view = self.backend.get_run(handle)
            if view.status.is_terminal:
                return handle, view
            time.sleep(0.01)
        raise TimeoutError(f"run {handle.run_remote_id} did not finish")


def make_world(backend_name: str, table: Any, *, client_timeout: float | None = None) -> World:
    """Inside moto (the `table` fixture's): a versioned bucket, as the template has it, and a
    fresh local OpenAI server. With `client_timeout` the backend talks to the server over
    HTTP and gives up on a reply after that many seconds (stop the server when done)."""
    s3 = boto3.client("s3", config=Config(signature_version="s3v4"))  # as runtime.s3_client
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    clock = Clock()
    server = OpenAIServer(clock=lambda: clock().timestamp())
    client = (
        sdk_client(server)
        if client_timeout is None
        else openai.OpenAI(
            base_url=server.start_background(),
            api_key="local",
            max_retries=0,
            timeout=client_timeout,
        )
    )
    return World(
        server=server,
        backend=make_backend(backend_name, client, "gpt-test"),
        table=table,
        s3=s3,
        clock=clock,
    )


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    """A valid PNG (greyscale), as code interpreter's charts are."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class FailingBackend:
    """The real backend, except that `method` raises `error` (when `when` says so)."""

    def __init__(
        self,
        inner: AssistantBackend,
        method: str,
        error: Exception,
        when: Any = lambda *args: True,
    ) -> None:
        self._inner = inner
        self._method = method
        self._error = error
        self._when = when
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._inner, name)
        if name != self._method:
            return real

        def failing(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self._when(*args):
                raise self._error
            return real(*args, **kwargs)

        return failing
