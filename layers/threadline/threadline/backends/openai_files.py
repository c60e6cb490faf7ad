"""File operations that are the same in both OpenAI APIs: uploads, vector stores, contents.

OpenAI has no idempotency keys, so a create whose reply was lost may have happened. What
Threadline creates carries who it is for (an upload's file its name, a thread's vector store
its metadata) and is looked for among the objects made since its owner was (newest first,
so usually one page) before it is created. Before every create, not only after a failure
seen: the attempt whose reply never came may have died (a Lambda timeout) before it could
look, so only the next attempt can.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from openai import OpenAI
from openai.types import FileObject
from openai.types.vector_stores import VectorStoreFile

from threadline.backends.base import FileIndex, translated_errors
from threadline.errors import NotFoundError

# What file search can index among the types Threadline accepts; the others (csv, xlsx,
# images) are for code interpreter only, and OpenAI refuses them for file search.
FILE_SEARCH_EXTENSIONS = frozenset({"json", "md", "pdf", "txt"})
# OpenAI's clock and ours may disagree by this much: the search for an object made since a
# moment looks back this much further.
CLOCK_SKEW = timedelta(minutes=5)
LIST_PAGE_SIZE = 100  # the most a files or vector stores list returns per page


class Created(Protocol):
    """Anything OpenAI lists: it says when it was made."""

    created_at: int  # epoch seconds


CreatedT = TypeVar("CreatedT", bound=Created)


def supports_file_search(filename: str) -> bool:
    return filename.rpartition(".")[2].lower() in FILE_SEARCH_EXTENSIONS


def remote_filename(filename: str, upload_id: str) -> str:
    """The name an upload's file has at OpenAI: the user's name, still readable (code
    interpreter and file search show it to the model) and still ending in its extension,
    prefixed by the upload id, so that the file can be recognised when found again."""
    return f"{upload_id}-{filename}"


def created_since(newest_first: Iterable[CreatedT], moment: datetime) -> Iterator[CreatedT]:
    """The objects of a newest-first listing made since `moment`: where a create whose reply
    was lost left what it made. Stops at the first older one, so pages are fetched only as
    far as needed."""
    cutoff = (moment - CLOCK_SKEW).timestamp()
    return itertools.takewhile(lambda made: made.created_at >= cutoff, newest_first)


def index_of(added: VectorStoreFile) -> FileIndex:
    """How indexing a vector store file stands, its last error as `code: message`."""
    error = added.last_error
    return FileIndex(status=added.status, error=f"{error.code}: {error.message}" if error else None)


class OpenAIFiles:
    """Mixed into both adapters; `_client` is theirs."""

    _client: OpenAI

    def upload_file(
        self, filename: str, content: bytes, *, upload_id: str, not_before: datetime
    ) -> str:
        for existing in self._made_for(filename, upload_id, not_before):
            if existing.bytes == len(content):
                return existing.id
        with translated_errors("upload file"):
            return self._client.files.create(
                file=(remote_filename(filename, upload_id), content), purpose="assistants"
            ).id

    def files_made_for(self, filename: str, *, upload_id: str, not_before: datetime) -> list[str]:
        return [made.id for made in self._made_for(filename, upload_id, not_before)]

    def _made_for(self, filename: str, upload_id: str, not_before: datetime) -> list[FileObject]:
        name = remote_filename(filename, upload_id)
        with translated_errors("list files"):
            newest = self._client.files.list(
                purpose="assistants", order="desc", limit=LIST_PAGE_SIZE
            )
            return [made for made in created_since(newest, not_before) if made.filename == name]

    def delete_file(self, file_id: str) -> None:
        with translated_errors("delete file", gone_is_done=True):
            self._client.files.delete(file_id)

    def file_index(self, vector_store_id: str, file_id: str) -> FileIndex:
        return self._indexed(vector_store_id, file_id) or FileIndex(
            status="failed", error="not_found: the vector store no longer holds the file"
        )

    def _indexed(self, vector_store_id: str, file_id: str) -> FileIndex | None:
        """How indexing the file stands in the store; None if the store does not hold it."""
        try:
            with translated_errors("retrieve vector store file"):
                added = self._client.vector_stores.files.retrieve(
                    file_id, vector_store_id=vector_store_id
                )
        except NotFoundError:
            return None
        return index_of(added)

    def delete_vector_store(self, vector_store_id: str) -> None:
        with translated_errors("delete vector store", gone_is_done=True):
            self._client.vector_stores.delete(vector_store_id)

    def _file_content(self, file_id: str) -> bytes:
        with translated_errors("download file"):
            return self._client.files.content(file_id).read()
