"""Opaque pagination cursors: what one encodes comes back, and nothing else is accepted."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadline.errors import InvalidRequestError
from threadline.store import table
from threadline.store.cursors import decode_cursor, encode_cursor

PREFIX = table.thread_sort_key("")


@given(st.text())
def test_every_position_round_trips(position: str) -> None:
    cursor = encode_cursor(position)
    assert "=" not in cursor
    assert decode_cursor(cursor) == position


@given(st.text().map(lambda tail: PREFIX + tail))
def test_a_position_under_the_prefix_round_trips(position: str) -> None:
    assert decode_cursor(encode_cursor(position), prefix=PREFIX) == position


def raw(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        encode_cursor("RUN#run_1"),  # a position of another kind of item
        encode_cursor(""),
        raw({"after": 7}),
        raw({"before": "THREAD#thr_1"}),
        raw(["THREAD#thr_1"]),
        "not base64!",
        "%%%",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "",
    ],
)
def test_a_foreign_or_broken_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        decode_cursor(cursor, prefix=PREFIX)
    assert refused.value.code == "invalid_cursor"
