"""A browser's upload: the multipart form POST of a presigned POST, sent to the local S3.

moto serves S3 in-process for boto3, but a form POST is plain HTTP: it goes to moto's own S3
WSGI app, which shares the in-process backend (so S3 notifications fire as for any upload).
"""

from __future__ import annotations

import io
from urllib.parse import urlsplit

from moto.server import create_backend_app
from werkzeug.test import Client


def post_presigned(url: str, fields: dict[str, str], filename: str, content: bytes) -> int:
    """POST the form (fields first, the file last, as S3 requires); the HTTP status."""
    address = urlsplit(url)
    browser = Client(create_backend_app("s3"))
    answer = browser.post(
        address.path or "/",
        base_url=f"{address.scheme}://{address.netloc}",
        data={**fields, "file": (io.BytesIO(content), filename)},
    )
    return answer.status_code
