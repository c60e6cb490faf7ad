"""Where the Data Analyst's SQLite database comes from: the bundled sample, a file, or S3."""

from __future__ import annotations

import csv
import hashlib
import sqlite3
import tempfile
import threading
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SAMPLE_DATA_DIR = Path(__file__).with_name("sample_data")

# The declared types let SQLite's type affinity turn the CSV text into numbers on insert.
_SAMPLE_TABLES = {
    "customers": (
        "id INTEGER PRIMARY KEY, name TEXT NOT NULL, region TEXT NOT NULL,"
        " signup_date TEXT NOT NULL"
    ),
    "products": (
        "id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL, price REAL NOT NULL"
    ),
    "sales": (
        "id INTEGER PRIMARY KEY, sale_date TEXT NOT NULL,"
        " customer_id INTEGER NOT NULL REFERENCES customers (id),"
        " product_id INTEGER NOT NULL REFERENCES products (id),"
        " quantity INTEGER NOT NULL, amount REAL NOT NULL, region TEXT NOT NULL"
    ),
}

# Source ("" for the sample) -> local file; each database is prepared once per process.
_prepared: dict[str, Path] = {}
_prepared_lock = threading.Lock()


def resolve_database(source: str | None, *, s3_client: S3Client | None = None) -> Path:
    """Local path of the database named by `source`.

    `None` or "" is the embedded sample database, `s3://bucket/key` is downloaded to the temp
    directory, anything else is a path to an existing file.
    """
    if source and not source.startswith("s3://"):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"database file not found: {source}")
        return path
    key = source or ""
    with _prepared_lock:
        if key not in _prepared:
            _prepared[key] = _download(key, s3_client) if key else _build_sample_database()
        return _prepared[key]


def _build_sample_database() -> Path:
    path = Path(tempfile.mkdtemp(prefix="threadline-sample-")) / "sample.sqlite3"
    with closing(sqlite3.connect(path)) as connection, connection:
        for table, columns in _SAMPLE_TABLES.items():
            connection.execute(f"CREATE TABLE {table} ({columns})")  # nosec B608: constants
            with (SAMPLE_DATA_DIR / f"{table}.csv").open(newline="", encoding="utf-8") as file:
                reader = csv.reader(file)
                header = next(reader)
                placeholders = ", ".join("?" * len(header))
                connection.executemany(
                    f"INSERT INTO {table} ({', '.join(header)}) VALUES ({placeholders})",  # nosec B608: shipped CSV
                    reader,
                )
    return path


def _download(source: str, s3_client: S3Client | None) -> Path:
    bucket, _, key = source.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ValueError(f"expected s3://bucket/key, got {source!r}")
    if s3_client is None:
        import boto3  # only S3-backed deployments pay for importing boto3

        s3_client = boto3.client("s3")
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    destination = Path(tempfile.gettempdir()) / f"threadline-db-{digest}.sqlite3"
    # download_file writes to a temporary name and renames, so a failed download leaves no file.
    s3_client.download_file(bucket, key, str(destination))
    return destination
