"""What a user may upload: the file types Threadline accepts, their size, their names, and
their content.

The API checks an upload's request against the policy before presigning it
(`threadline.files.uploads`); the same policy checks the bytes again by content when S3 reports
them (`threadline.files.ingest`): a presigned POST bounds what can be sent, not what it contains.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import filetype

from threadline.errors import ConfigurationError, InvalidRequestError

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MAX_FILENAME_CHARS = 200


@dataclass(frozen=True)
class FileType:
    extension: str
    mime: str
    # What browsers and tools also declare for it (Excel's CSV is "application/vnd.ms-excel").
    declared_as: frozenset[str]
    parse_text: Callable[[str], object] | None = None  # None: a binary type, sniffed


def _parse_csv(text: str) -> object:
    return sum(1 for _row in csv.reader(io.StringIO(text), strict=True))


def _accept_text(text: str) -> object:
    return text


FILE_TYPES: dict[str, FileType] = {
    file_type.extension: file_type
    for file_type in (
        FileType(
            "csv",
            "text/csv",
            frozenset({"text/csv", "application/csv", "application/vnd.ms-excel"}),
            _parse_csv,
        ),
        FileType("json", "application/json", frozenset({"application/json"}), json.loads),
        FileType("txt", "text/plain", frozenset({"text/plain"}), _accept_text),
        FileType(
            "md",
            "text/markdown",
            frozenset({"text/markdown", "text/x-markdown", "text/plain"}),
            _accept_text,
        ),
        FileType("pdf", "application/pdf", frozenset({"application/pdf"})),
        FileType(
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            frozenset({"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}),
        ),
        FileType("png", "image/png", frozenset({"image/png"})),
        FileType("jpg", "image/jpeg", frozenset({"image/jpeg", "image/jpg"})),
        FileType("jpeg", "image/jpeg", frozenset({"image/jpeg", "image/jpg"})),
    )
}


@dataclass(frozen=True)
class UploadPolicy:
    allowed: frozenset[str] = frozenset(FILE_TYPES)
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_settings(cls, allowed_types: str | None, max_bytes: int) -> UploadPolicy:
        """From `UPLOAD_ALLOWED_TYPES` ("csv,pdf,..."; unset: every type in FILE_TYPES) and
        `UPLOAD_MAX_BYTES`."""
        if allowed_types is None:
            allowed = frozenset(FILE_TYPES)
        else:
            allowed = frozenset(
                part.strip().lower() for part in allowed_types.split(",") if part.strip()
            )
        unknown = sorted(allowed - set(FILE_TYPES))
        if unknown or not allowed:
            raise ConfigurationError(
                f"UPLOAD_ALLOWED_TYPES: {unknown or 'nothing'} not among {sorted(FILE_TYPES)}"
            )
        if max_bytes < 1:
            raise ConfigurationError("UPLOAD_MAX_BYTES must be positive")
        return cls(allowed=allowed, max_bytes=max_bytes)

    def check_request(self, filename: str, content_type: str, size: int) -> FileType:
        """The declared upload's type; InvalidRequestError saying what is wrong with it."""
        file_type = self.type_of(filename)
        declared = content_type.split(";", 1)[0].strip().lower()
        if declared not in file_type.declared_as:
            raise InvalidRequestError(
                "content_type_mismatch",
                f"a .{file_type.extension} file is {file_type.mime}, not {content_type!r}",
            )
        self.check_size(size)
        return file_type

    def type_of(self, filename: str) -> FileType:
        check_filename(filename)
        extension = filename.rpartition(".")[2].lower() if "." in filename else ""
        if extension not in self.allowed:
            raise InvalidRequestError(
                "file_type_not_allowed",
                f"{filename!r}: allowed types are {', '.join(sorted(self.allowed))}",
            )
        return FILE_TYPES[extension]

    def check_size(self, size: int) -> None:
        if size < 1:
            raise InvalidRequestError("empty_file", "the file is empty")
        if size > self.max_bytes:
            raise InvalidRequestError(
                "file_too_large", f"the file has {size} bytes; the limit is {self.max_bytes}"
            )

    def check_content(self, filename: str, content: bytes) -> None:
        """The bytes really are what the filename says; InvalidRequestError if not."""
        file_type = self.type_of(filename)
        self.check_size(len(content))
        sniffed = filetype.guess(content)
        if file_type.parse_text is None:
            if sniffed is None or sniffed.mime != file_type.mime:
                found = sniffed.mime if sniffed else "unrecognised content"
                raise InvalidRequestError(
                    "content_mismatch", f"{filename!r} is {found}, not {file_type.mime}"
                )
            return
        if sniffed is not None:
            raise InvalidRequestError(
                "content_mismatch", f"{filename!r} is {sniffed.mime}, not {file_type.mime}"
            )
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidRequestError(
                "content_mismatch", f"{filename!r} is not UTF-8 text"
            ) from None
        if "\x00" in text:
            raise InvalidRequestError("content_mismatch", f"{filename!r} contains NUL bytes")
        try:
            file_type.parse_text(text)
        except (ValueError, csv.Error) as error:
            raise InvalidRequestError(
                "content_mismatch", f"{filename!r} is not valid {file_type.extension}: {error}"
            ) from None


def check_filename(filename: str) -> None:
    """A plain file name: becomes the last segment of an S3 key and a download name."""
    problem = None
    if not filename or len(filename) > MAX_FILENAME_CHARS:
        problem = f"must have 1 to {MAX_FILENAME_CHARS} characters"
    elif "/" in filename or "\\" in filename:
        problem = "must not contain path separators"
    elif any(unicodedata.category(char).startswith("C") for char in filename):
        problem = "must not contain control characters"
    elif filename.strip(". ") == "" or filename != filename.strip():
        problem = "must not be only dots or start or end with spaces"
    if problem:
        raise InvalidRequestError("invalid_filename", f"the file name {problem}")
