"""Paging cursors: what goes in comes out, and any change to a cursor is refused."""

from __future__ import annotations

import re
import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.reader import (
    CURSOR_MAX_LENGTH,
    KEY_SHAPES,
    CursorError,
    decode_cursor,
    encode_cursor,
)

SECRET = b"k" * 32
URL_SAFE = string.ascii_letters + string.digits + "-_"

indexes = st.integers(min_value=-1, max_value=2**63 - 1)
values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40).filter(lambda t: "\x00" not in t),
)
keys = st.lists(values, max_size=6).map(tuple)
scopes = st.text(max_size=60)


@given(indexes, keys, scopes)
def test_round_trip(at: int, key: tuple[Any, ...], scope: str) -> None:
    """A cursor decodes, for its scope and secret, to the index and key it was made from,
    and is URL-safe with no padding."""
    cursor = encode_cursor(at, key, scope=scope, secret=SECRET)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)
    assert len(cursor) <= CURSOR_MAX_LENGTH
    assert decode_cursor(cursor, scope=scope, secret=SECRET) == (at, key)
    shape = tuple(type(v) for v in key)
    assert decode_cursor(cursor, scope=scope, secret=SECRET, shape=shape) == (at, key)


@given(indexes, keys, scopes, st.data())
def test_any_change_is_refused(at: int, key: tuple[Any, ...], scope: str, data: Any) -> None:
    """Replacing, deleting or inserting a character, truncating or extending: all refused."""
    cursor = encode_cursor(at, key, scope=scope, secret=SECRET)
    position = data.draw(st.integers(0, len(cursor) - 1), label="position")
    other = data.draw(
        st.sampled_from(URL_SAFE).filter(lambda c: c != cursor[position]), label="other"
    )
    extra = data.draw(st.text(URL_SAFE, min_size=1, max_size=8), label="extra")
    cut = data.draw(st.integers(0, len(cursor) - 1), label="cut")
    tampered = {
        cursor[:position] + other + cursor[position + 1 :],
        cursor[:position] + cursor[position + 1 :],
        cursor[:position] + other + cursor[position:],
        cursor[:cut],
        cursor + extra,
    }
    for changed in tampered:
        assert changed != cursor
        with pytest.raises(CursorError):
            decode_cursor(changed, scope=scope, secret=SECRET)


@given(indexes, keys, scopes, scopes)
def test_a_cursor_only_fits_its_own_scope(
    at: int, key: tuple[Any, ...], scope: str, other: str
) -> None:
    """A cursor made for one listing (path and filters) or secret does not fit another."""
    cursor = encode_cursor(at, key, scope=scope, secret=SECRET)
    if other != scope:
        with pytest.raises(CursorError):
            decode_cursor(cursor, scope=other, secret=SECRET)
    with pytest.raises(CursorError):
        decode_cursor(cursor, scope=scope, secret=b"another secret")


@given(st.text(max_size=300))
def test_garbage_is_only_ever_a_cursor_error(text: str) -> None:
    """Whatever a client sends, decoding fails with CursorError, never anything else."""
    with pytest.raises(CursorError):
        decode_cursor(text, scope="/proposals?", secret=SECRET)


@given(st.text(URL_SAFE, min_size=1, max_size=300))
def test_url_safe_garbage_is_refused(text: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(text, scope="/proposals?", secret=SECRET)


def test_shape_is_checked() -> None:
    """A genuine cursor whose key does not fit the listing's shape is refused (no bool for
    int, no int for float, no wrong length)."""
    cursor = encode_cursor(5, (3, "a"), scope="s", secret=SECRET)
    assert decode_cursor(cursor, scope="s", secret=SECRET, shape=KEY_SHAPES["proposals"]) == (
        5,
        (3, "a"),
    )
    for shape in [(int,), (int, str, str), (str, str), (float, str)]:
        with pytest.raises(CursorError):
            decode_cursor(cursor, scope="s", secret=SECRET, shape=shape)
    rank = encode_cursor(5, (1.0, 2, "proposal", "p", ""), scope="s", secret=SECRET)
    assert decode_cursor(rank, scope="s", secret=SECRET, shape=KEY_SHAPES["search"])[1][0] == 1.0


@pytest.mark.parametrize(
    ("at", "key"),
    [
        (-2, ()),
        (True, ()),
        (2**63, ()),
        (1, (None,)),
        (1, (True,)),
        (1, (float("nan"),)),
        (1, (float("inf"),)),
        (1, ("a\x00b",)),
        (1, ("x" * 2000,)),
        (1, (2**64,)),
        (1, ([1],)),
    ],
)
def test_encode_refuses_what_decode_would(at: Any, key: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the value
        encode_cursor(at, key, scope="s", secret=SECRET)


def test_too_long_and_empty_cursors_are_refused() -> None:
    with pytest.raises(CursorError):
        decode_cursor("", scope="s", secret=SECRET)
    with pytest.raises(CursorError):
        decode_cursor("A" * (CURSOR_MAX_LENGTH + 4), scope="s", secret=SECRET)
