"""Files' parts: the upload policy, presigned uploads, ingestion into OpenAI, giving up on an
upload, and the sweep of uploads that never arrived."""

from __future__ import annotations

from typing import TYPE_CHECKING

from threadline.runtime.parts import Parts

if TYPE_CHECKING:
    from threadline.files.ingest import Ingestor
    from threadline.files.policy import UploadPolicy
    from threadline.files.settling import UploadSettler
    from threadline.files.sweep import UploadSweep
    from threadline.files.uploads import Uploads


class FileParts(Parts):
    def upload_policy(self) -> UploadPolicy:
        def build() -> UploadPolicy:
            from threadline.files.policy import UploadPolicy

            settings = self.settings()
            return UploadPolicy.from_settings(
                settings.upload_allowed_types, settings.upload_max_bytes
            )

        return self._part("upload_policy", build)

    def uploads(self) -> Uploads:
        def build() -> Uploads:
            from threadline.files.uploads import Uploads

            return Uploads(
                threads=self.thread_store(),
                files=self.file_store(),
                s3_client=self.s3_client(),
                bucket=self.settings().bucket_name,
                policy=self.upload_policy(),
            )

        return self._part("uploads", build)

    def ingestor(self) -> Ingestor:
        def build() -> Ingestor:
            from threadline.files.ingest import Ingestor

            return Ingestor(
                threads=self.thread_store(),
                files=self.file_store(),
                backend=self.backend(),
                s3_client=self.s3_client(),
                policy=self.upload_policy(),
            )

        return self._part("ingestor", build)

    def upload_settler(self) -> UploadSettler:
        def build() -> UploadSettler:
            from threadline.files.settling import UploadSettler

            # No Ingestor: giving up needs no OpenAI client (nor its key).
            return UploadSettler(files=self.file_store(), s3_client=self.s3_client())

        return self._part("upload_settler", build)

    def upload_sweep(self) -> UploadSweep:
        def build() -> UploadSweep:
            from threadline.files.sweep import UploadSweep

            return UploadSweep(
                files=self.file_store(),
                settler=self.ingestor(),
                s3_client=self.s3_client(),
                bucket=self.settings().bucket_name,
            )

        return self._part("upload_sweep", build)
