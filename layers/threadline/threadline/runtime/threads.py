"""Threads' parts: creating a user's thread with its remote half, the API's thread service,
and the cleanup that deletes stale threads with everything they own."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from threadline.runtime.parts import Parts

if TYPE_CHECKING:
    from threadline.cleanup import Cleaner
    from threadline.threads.creation import ThreadCreator
    from threadline.threads.service import ThreadService


class ThreadParts(Parts):
    def thread_creator(self) -> ThreadCreator:
        def build() -> ThreadCreator:
            from threadline.threads.creation import ThreadCreator

            return ThreadCreator(
                self.table(), threads=self.thread_store(), retention=self.retention()
            )

        return self._part("thread_creator", build)

    def thread_service(self) -> ThreadService:
        def build() -> ThreadService:
            from threadline.threads.service import ThreadService

            settings = self.api_settings()
            return ThreadService(
                threads=self.thread_store(),
                creator=self.thread_creator,
                runs=self.run_store(),
                backend=self.backend,
                cleaner=self.cleaner,
                backend_name=settings.openai_backend,
                reuse_for=timedelta(hours=settings.thread_reuse_hours),
            )

        return self._part("thread_service", build)

    def cleaner(self) -> Cleaner:
        def build() -> Cleaner:
            from threadline.cleanup import Cleaner

            settings = self.settings()
            return Cleaner(
                threads=self.thread_store(),
                files=self.file_store(),
                runs=self.run_store(),
                usage=self.usage_ledger(),
                backend=self.backend(),
                s3_client=self.s3_client(),
                bucket=settings.bucket_name,
                retention=self.retention(),
            )

        return self._part("cleaner", build)
