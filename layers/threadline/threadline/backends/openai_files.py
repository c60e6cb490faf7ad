"""File operations that are the same in both OpenAI APIs: uploads, vector stores, contents."""

from __future__ import annotations

from openai import OpenAI

from threadline.backends.base import translated_errors

# What file search can index among the types Threadline accepts; the others (csv, xlsx,
# images) are for code interpreter only, and OpenAI refuses them for file search.
FILE_SEARCH_EXTENSIONS = frozenset({"json", "md", "pdf", "txt"})


def supports_file_search(filename: str) -> bool:
    return filename.rpartition(".")[2].lower() in FILE_SEARCH_EXTENSIONS


class OpenAIFiles:
    """Mixed into both adapters; `_client` is theirs."""

    _client: OpenAI

    def upload_file(self, filename: str, content: bytes) -> str:
        with translated_errors("upload file"):
            return self._client.files.create(file=(filename, content), purpose="assistants").id

    def delete_file(self, file_id: str) -> None:
        with translated_errors("delete file", gone_is_done=True):
            self._client.files.delete(file_id)

    def delete_vector_store(self, vector_store_id: str) -> None:
        with translated_errors("delete vector store", gone_is_done=True):
            self._client.vector_stores.delete(vector_store_id)

    def _file_content(self, file_id: str) -> bytes:
        with translated_errors("download file"):
            return self._client.files.content(file_id).read()
