"""Files, vector stores and containers.

A file added to a vector store is `in_progress` and becomes `completed` once the server's
latency has passed, as OpenAI indexes it in the background; one whose bytes contain
`UNINDEXABLE_MARKER` becomes `failed` instead. Indexing moves on when someone looks (reads
the store or its files, or a model turn searches the store), and only completed files can
be found by file search.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

from local.openai_server.engine import new_id
from local.openai_server.state import (
    ContainerRecord,
    StoredFile,
    VectorStoreFileRecord,
    VectorStoreRecord,
)
from local.openai_server.wire import (
    bad_request,
    deleted,
    field,
    find,
    json_body,
    json_response,
    metadata,
    page,
    required,
)

if TYPE_CHECKING:
    from local.openai_server.server import Handler, OpenAIServer

UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
CHUNKING = {
    "type": "static",
    "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
}
VECTOR_STORE_FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")
# A file whose bytes contain this fails indexing in any vector store it is added to.
UNINDEXABLE_MARKER = b"<<unindexable>>"
UNINDEXABLE_ERROR = {
    "code": "invalid_file",
    "message": "The file could not be parsed for file search (scripted).",
}


def new_file(srv: OpenAIServer, filename: str, purpose: str, data: bytes) -> StoredFile:
    file_id = new_id("file-")
    stored = StoredFile(
        body={
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(srv.clock()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        },
        data=data,
    )
    srv.state.files[file_id] = stored
    return stored


def new_container(srv: OpenAIServer, name: str) -> ContainerRecord:
    container_id = new_id("cntr_")
    now = int(srv.clock())
    record = ContainerRecord(
        body={
            "id": container_id,
            "object": "container",
            "created_at": now,
            "name": name,
            "status": "running",
            "expires_after": {"anchor": "last_active_at", "minutes": 20},
            "last_active_at": now,
        }
    )
    srv.state.containers[container_id] = record
    return record


def add_container_file(
    srv: OpenAIServer, container: ContainerRecord, filename: str, data: bytes, source: str
) -> StoredFile:
    file_id = new_id("cfile_")
    stored = StoredFile(
        body={
            "id": file_id,
            "object": "container.file",
            "created_at": int(srv.clock()),
            "bytes": len(data),
            "container_id": container.body["id"],
            "path": f"/mnt/data/{filename}",
            "source": source,
        },
        data=data,
    )
    container.files[file_id] = stored
    return stored


def filenames(
    srv: OpenAIServer, file_ids: Iterable[str], vector_store_ids: Iterable[str]
) -> tuple[str, ...]:
    """Names of the files a model can see: given directly, or indexed in vector stores."""
    ids = list(file_ids)
    for vector_store_id in vector_store_ids:
        if vector_store_id in srv.state.vector_stores:
            record = srv.state.vector_stores[vector_store_id]
            _advance_indexing(srv, record)
            ids += [i for i, f in record.files.items() if f.body["status"] == "completed"]
    names = [srv.state.files[i].body["filename"] for i in ids if i in srv.state.files]
    return tuple(dict.fromkeys(names))


def _raw(stored: StoredFile, filename: str) -> Response:
    mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return Response(stored.data, mimetype=mimetype)


# --- Files --------------------------------------------------------------------------------


def upload_file(srv: OpenAIServer, request: Request) -> Response:
    upload = request.files.get("file")
    if upload is None:
        raise bad_request("Missing required parameter: 'file'.", "file")
    purpose = request.form.get("purpose")
    if purpose not in UPLOAD_PURPOSES:
        raise bad_request(f"Invalid 'purpose': {purpose!r}.", "purpose")
    return json_response(new_file(srv, upload.filename or "upload", purpose, upload.read()).body)


def list_files(srv: OpenAIServer, request: Request) -> Response:
    purpose = request.args.get("purpose")
    bodies = [f.body for f in srv.state.files.values() if purpose in (None, f.body["purpose"])]
    return json_response(page(bodies, request.args))


def retrieve_file(srv: OpenAIServer, _request: Request, file_id: str) -> Response:
    return json_response(find(srv.state.files, file_id, "file").body)


def file_content(srv: OpenAIServer, _request: Request, file_id: str) -> Response:
    stored = find(srv.state.files, file_id, "file")
    return _raw(stored, stored.body["filename"])


def delete_file(srv: OpenAIServer, _request: Request, file_id: str) -> Response:
    """As OpenAI does, the file also leaves every vector store."""
    find(srv.state.files, file_id, "file")
    del srv.state.files[file_id]
    for record in srv.state.vector_stores.values():
        if record.files.pop(file_id, None) is not None:
            _recount(record)
    return json_response(deleted(file_id, "file"))


# --- Vector stores ------------------------------------------------------------------------


def create_vector_store(srv: OpenAIServer, request: Request) -> Response:
    body = json_body(request)
    file_ids = field(body, "file_ids", list, [])
    for file_id in file_ids:
        find(srv.state.files, file_id, "file")
    now = int(srv.clock())
    vector_store_id = new_id("vs_")
    record = VectorStoreRecord(
        body={
            "id": vector_store_id,
            "object": "vector_store",
            "created_at": now,
            "name": field(body, "name", str, ""),
            "usage_bytes": 0,
            "file_counts": {},
            "status": "completed",
            "expires_after": None,
            "expires_at": None,
            "last_active_at": now,
            "metadata": metadata(body),
        }
    )
    srv.state.vector_stores[vector_store_id] = record
    for file_id in file_ids:
        _attach(srv, record, file_id)
    _recount(record)
    return json_response(record.body)


def list_vector_stores(srv: OpenAIServer, request: Request) -> Response:
    for record in srv.state.vector_stores.values():
        _advance_indexing(srv, record)
    bodies = [record.body for record in srv.state.vector_stores.values()]
    return json_response(page(bodies, request.args))


def retrieve_vector_store(srv: OpenAIServer, _request: Request, vector_store_id: str) -> Response:
    record = find(srv.state.vector_stores, vector_store_id, "vector store")
    _advance_indexing(srv, record)
    return json_response(record.body)


def delete_vector_store(srv: OpenAIServer, _request: Request, vector_store_id: str) -> Response:
    find(srv.state.vector_stores, vector_store_id, "vector store")
    del srv.state.vector_stores[vector_store_id]
    return json_response(deleted(vector_store_id, "vector_store.deleted"))


def attach_file(srv: OpenAIServer, request: Request, vector_store_id: str) -> Response:
    """A file already in the store is answered as it stands, and not indexed again."""
    record = find(srv.state.vector_stores, vector_store_id, "vector store")
    file_id = required(json_body(request), "file_id", str)
    find(srv.state.files, file_id, "file")
    _advance_indexing(srv, record)
    attached = record.files.get(file_id) or _attach(srv, record, file_id)
    _recount(record)
    return json_response(attached.body)


def list_vector_store_files(srv: OpenAIServer, request: Request, vector_store_id: str) -> Response:
    record = find(srv.state.vector_stores, vector_store_id, "vector store")
    _advance_indexing(srv, record)
    return json_response(page([f.body for f in record.files.values()], request.args))


def retrieve_vector_store_file(
    srv: OpenAIServer, _request: Request, vector_store_id: str, file_id: str
) -> Response:
    record = find(srv.state.vector_stores, vector_store_id, "vector store")
    _advance_indexing(srv, record)
    return json_response(find(record.files, file_id, "file").body)


def detach_file(
    srv: OpenAIServer, _request: Request, vector_store_id: str, file_id: str
) -> Response:
    record = find(srv.state.vector_stores, vector_store_id, "vector store")
    find(record.files, file_id, "file")
    del record.files[file_id]
    _recount(record)
    return json_response(deleted(file_id, "vector_store.file.deleted"))


def _advance_indexing(srv: OpenAIServer, record: VectorStoreRecord) -> None:
    """Finish indexing each of the store's files whose time has come."""
    now = srv.clock()
    for attached in record.files.values():
        if attached.body["status"] == "in_progress" and now >= attached.ready_at:
            attached.body["status"] = "failed" if attached.error else "completed"
            attached.body["last_error"] = attached.error
    _recount(record)


def _attach(srv: OpenAIServer, record: VectorStoreRecord, file_id: str) -> VectorStoreFileRecord:
    stored = srv.state.files[file_id]
    attached = VectorStoreFileRecord(
        body={
            "id": file_id,
            "object": "vector_store.file",
            "created_at": int(srv.clock()),
            "vector_store_id": record.body["id"],
            "status": "in_progress",
            "usage_bytes": stored.body["bytes"],
            "last_error": None,
            "chunking_strategy": CHUNKING,
            "attributes": {},
        },
        ready_at=srv.clock() + srv.latency_seconds,
        error=dict(UNINDEXABLE_ERROR) if UNINDEXABLE_MARKER in stored.data else None,
    )
    record.files[file_id] = attached
    return attached


def _recount(record: VectorStoreRecord) -> None:
    statuses = [f.body["status"] for f in record.files.values()]
    counts = {status: statuses.count(status) for status in VECTOR_STORE_FILE_STATUSES}
    record.body["usage_bytes"] = sum(f.body["usage_bytes"] for f in record.files.values())
    record.body["file_counts"] = {**counts, "total": len(statuses)}
    record.body["status"] = "in_progress" if counts["in_progress"] else "completed"


# --- Containers ---------------------------------------------------------------------------


def create_container(srv: OpenAIServer, request: Request) -> Response:
    body = json_body(request)
    record = new_container(srv, required(body, "name", str))
    for file_id in field(body, "file_ids", list, []):
        stored = find(srv.state.files, file_id, "file")
        add_container_file(srv, record, stored.body["filename"], stored.data, source="user")
    return json_response(record.body)


def list_containers(srv: OpenAIServer, request: Request) -> Response:
    bodies = [record.body for record in srv.state.containers.values()]
    return json_response(page(bodies, request.args))


def retrieve_container(srv: OpenAIServer, _request: Request, container_id: str) -> Response:
    return json_response(find(srv.state.containers, container_id, "container").body)


def delete_container(srv: OpenAIServer, _request: Request, container_id: str) -> Response:
    find(srv.state.containers, container_id, "container")
    del srv.state.containers[container_id]
    return json_response(deleted(container_id, "container.deleted"))


def create_container_file(srv: OpenAIServer, request: Request, container_id: str) -> Response:
    """Either a multipart upload (`file`) or a copy of an uploaded file (`file_id`)."""
    record = find(srv.state.containers, container_id, "container")
    upload = request.files.get("file")
    if upload is not None:
        name, data = upload.filename or "upload", upload.read()
    else:
        form = request.form if request.mimetype == "multipart/form-data" else json_body(request)
        file_id = form.get("file_id")
        if not isinstance(file_id, str):
            raise bad_request("Provide either 'file' or 'file_id'.", "file_id")
        stored = find(srv.state.files, file_id, "file")
        name, data = stored.body["filename"], stored.data
    return json_response(add_container_file(srv, record, name, data, source="user").body)


def list_container_files(srv: OpenAIServer, request: Request, container_id: str) -> Response:
    record = find(srv.state.containers, container_id, "container")
    return json_response(page([f.body for f in record.files.values()], request.args))


def retrieve_container_file(
    srv: OpenAIServer, _request: Request, container_id: str, file_id: str
) -> Response:
    record = find(srv.state.containers, container_id, "container")
    return json_response(find(record.files, file_id, "container file").body)


def container_file_content(
    srv: OpenAIServer, _request: Request, container_id: str, file_id: str
) -> Response:
    record = find(srv.state.containers, container_id, "container")
    stored = find(record.files, file_id, "container file")
    return _raw(stored, stored.body["path"])


def delete_container_file(
    srv: OpenAIServer, _request: Request, container_id: str, file_id: str
) -> Response:
    record = find(srv.state.containers, container_id, "container")
    find(record.files, file_id, "container file")
    del record.files[file_id]
    return json_response(deleted(file_id, "container.file.deleted"))


ROUTES: list[tuple[str, str, Handler]] = [
    ("/files", "POST", upload_file),
    ("/files", "GET", list_files),
    ("/files/<file_id>", "GET", retrieve_file),
    ("/files/<file_id>", "DELETE", delete_file),
    ("/files/<file_id>/content", "GET", file_content),
    ("/vector_stores", "POST", create_vector_store),
    ("/vector_stores", "GET", list_vector_stores),
    ("/vector_stores/<vector_store_id>", "GET", retrieve_vector_store),
    ("/vector_stores/<vector_store_id>", "DELETE", delete_vector_store),
    ("/vector_stores/<vector_store_id>/files", "POST", attach_file),
    ("/vector_stores/<vector_store_id>/files", "GET", list_vector_store_files),
    ("/vector_stores/<vector_store_id>/files/<file_id>", "GET", retrieve_vector_store_file),
    ("/vector_stores/<vector_store_id>/files/<file_id>", "DELETE", detach_file),
    ("/containers", "POST", create_container),
    ("/containers", "GET", list_containers),
    ("/containers/<container_id>", "GET", retrieve_container),
    ("/containers/<container_id>", "DELETE", delete_container),
    ("/containers/<container_id>/files", "POST", create_container_file),
    ("/containers/<container_id>/files", "GET", list_container_files),
    ("/containers/<container_id>/files/<file_id>", "GET", retrieve_container_file),
    ("/containers/<container_id>/files/<file_id>", "DELETE", delete_container_file),
    ("/containers/<container_id>/files/<file_id>/content", "GET", container_file_content),
]
