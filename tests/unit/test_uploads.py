"""The upload policy and upload keys: pure checks, no AWS."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import REPO
from threadline.errors import ConfigurationError, InvalidRequestError
from threadline.files.policy import DEFAULT_MAX_BYTES, FILE_TYPES, UploadPolicy
from threadline.files.uploads import UploadKey

POLICY = UploadPolicy()


def minimal_xlsx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("filename", "content_type", "size", "code"),
    [
        ("../secrets.csv", "text/csv", 10, "invalid_filename"),
        ("a\\b.csv", "text/csv", 10, "invalid_filename"),
        ("bell\x07.csv", "text/csv", 10, "invalid_filename"),
        ("right\u202eto-left.csv", "text/csv", 10, "invalid_filename"),
        ("x" * 197 + ".csv", "text/csv", 10, "invalid_filename"),
        ("..", "text/plain", 10, "invalid_filename"),
        (" padded.csv", "text/csv", 10, "invalid_filename"),
        ("", "text/csv", 10, "invalid_filename"),
        ("setup.exe", "application/octet-stream", 10, "file_type_not_allowed"),
        ("README", "text/plain", 10, "file_type_not_allowed"),
        ("data.csv", "image/png", 10, "content_type_mismatch"),
        ("photo.jpg", "image/png", 10, "content_type_mismatch"),
        ("data.csv", "text/csv", 0, "empty_file"),
        ("data.csv", "text/csv", DEFAULT_MAX_BYTES + 1, "file_too_large"),
    ],
)
def test_bad_upload_requests_say_what_is_wrong(
    filename: str, content_type: str, size: int, code: str
) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        POLICY.check_request(filename, content_type, size)
    assert refused.value.code == code
    assert str(refused.value)


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("Q3 sales (final).CSV", "text/csv"),
        ("export.csv", "application/vnd.ms-excel"),  # what Excel on Windows declares
        ("notes.md", "text/markdown; charset=utf-8"),
        ("plan.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("café menu.pdf", "application/pdf"),
        ("photo.jpeg", "image/jpeg"),
    ],
)
def test_acceptable_upload_requests_pass(filename: str, content_type: str) -> None:
    POLICY.check_request(filename, content_type, DEFAULT_MAX_BYTES)


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("data.csv", b"region,revenue\nnorth,1\n"),
        ("data.json", b'{"rows": [1, 2]}'),
        ("notes.md", "# Überblick\n".encode()),
        ("notes.txt", b"\xef\xbb\xbfwith a byte order mark\n"),
        ("report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"),
        ("book.xlsx", minimal_xlsx()),
        ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
    ],
)
def test_content_that_is_what_its_name_says_passes(filename: str, content: bytes) -> None:
    POLICY.check_content(filename, content)


@pytest.mark.parametrize(
    ("filename", "content", "found"),
    [
        ("book.xlsx", b"PK\x03\x04not really a workbook", "is application/zip"),
        ("notes.txt", b"%PDF-1.7\n", "is application/pdf"),
        ("data.json", b"[1, 2,]", "is not valid json"),
    ],
)
def test_content_that_is_not_what_its_name_says_fails(
    filename: str, content: bytes, found: str
) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        POLICY.check_content(filename, content)
    assert refused.value.code == "content_mismatch"
    assert found in str(refused.value)


def test_the_allowed_types_and_limit_are_configurable() -> None:
    policy = UploadPolicy.from_settings("csv, PDF", 1024)
    assert policy.allowed == {"csv", "pdf"}
    with pytest.raises(InvalidRequestError, match="allowed types are csv, pdf"):
        policy.check_request("photo.png", "image/png", 10)
    with pytest.raises(InvalidRequestError) as refused:
        policy.check_request("big.csv", "text/csv", 1025)
    assert refused.value.code == "file_too_large"


def test_unset_allowed_types_are_every_type_the_readme_lists() -> None:
    assert UploadPolicy.from_settings(None, 10).allowed == set(FILE_TYPES)
    assert ", ".join(FILE_TYPES) in (REPO / "README.md").read_text()


@pytest.mark.parametrize(("allowed", "max_bytes"), [("csv,exe", 10), ("", 10), ("csv", 0)])
def test_a_bad_configuration_is_named(allowed: str, max_bytes: int) -> None:
    with pytest.raises(ConfigurationError, match="UPLOAD_"):
        UploadPolicy.from_settings(allowed, max_bytes)


def test_every_allowed_type_has_a_mime_type_its_requests_may_declare() -> None:
    for extension, file_type in FILE_TYPES.items():
        assert file_type.mime in file_type.declared_as, extension


segment = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/"),
    min_size=1,
    max_size=30,
)


@given(user=segment, thread=segment, upload=segment, filename=segment)
def test_upload_keys_round_trip(user: str, thread: str, upload: str, filename: str) -> None:
    key = UploadKey(user, thread, upload, filename)
    assert UploadKey.parse(str(key)) == key


@pytest.mark.parametrize(
    "key",
    [
        "uploads/u/t/upl/name.csv/extra",
        "uploads/u/t/name.csv",
        "outputs/u/t/run/chart.png",
        "uploads//t/upl/name.csv",
        '"uploads/u/t/upl/x"',
    ],
)
def test_keys_that_are_not_upload_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        UploadKey.parse(key)
    assert refused.value.code == "unexpected_key"
