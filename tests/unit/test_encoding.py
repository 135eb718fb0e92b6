"""Canonical entry encoding: RFC 8785 for our subset, and nothing outside it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.chain import parse_entry
from ledger.encoding import (
    MAX_ENTRY_BYTES,
    MAX_SAFE_INTEGER,
    canonical,
    encode_entry,
    format_time,
    parse_time,
)
from ledger.errors import EncodingError, EntryTooLargeError

text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)


def jcs_reference(value: Any) -> bytes:
    """An independent RFC 8785 writer for our subset, from the standard library."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        inner = ",".join(
            json.dumps(k, ensure_ascii=False) + ":" + jcs_reference(value[k]).decode() for k in keys
        )
        return ("{" + inner + "}").encode()
    if isinstance(value, list):
        return ("[" + ",".join(jcs_reference(v).decode() for v in value) + "]").encode()
    return json.dumps(value, ensure_ascii=False).encode()


@given(json_values)
def test_canonical_matches_an_independent_rfc8785_writer(value: Any) -> None:
    """Our bytes equal a from-scratch RFC 8785 encoding of the same value."""
    assert canonical(value) == jcs_reference(value)


@given(json_values)
def test_canonical_round_trips_and_is_a_fixed_point(value: Any) -> None:
    """Parsing canonical bytes gives the value back, and re-encoding changes nothing."""
    encoded = canonical(value)
    assert orjson.loads(encoded) == value
    assert canonical(orjson.loads(encoded)) == encoded


def test_keys_sort_by_utf16_code_units() -> None:
    """A key beyond the BMP sorts before U+FFFD-range keys, as RFC 8785 requires."""
    assert canonical({"\ufb01": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufb01":1}'.encode()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "floats"),
        (2**53, "outside"),
        (-(2**53), "outside"),
        ({1: "x"}, "keys must be strings"),
        ("\ud800", "lone surrogate"),
        ("a\x00b", "NUL"),
        ({"k\x00": 1}, "NUL"),
        (b"bytes", "cannot be written"),
        (datetime(2015, 1, 1), "timezone-aware"),
    ],
)
def test_values_outside_the_subset_are_refused(value: Any, message: str) -> None:
    """Floats, unsafe integers, non-string keys, lone surrogates, bytes, naive times fail."""
    with pytest.raises(EncodingError, match=message):
        canonical({"v": value})


def test_deep_nesting_is_refused() -> None:
    """A value nested absurdly deep is refused rather than recursed into."""
    value: Any = "x"
    for _ in range(40):
        value = [value]
    with pytest.raises(EncodingError, match="nested deeper"):
        canonical(value)


def test_uuid_and_time_normalise() -> None:
    """UUIDs become lowercase strings; times become RFC 3339 UTC with microseconds."""
    uid = UUID("A0B1C2D3-0000-4000-8000-00000000000F")
    moment = datetime(2015, 3, 2, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    assert canonical([uid, moment]) == (
        b'["a0b1c2d3-0000-4000-8000-00000000000f","2015-03-02T10:00:00.000000Z"]'
    )
    assert format_time(moment) == "2015-03-02T10:00:00.000000Z"
    assert parse_time("2015-03-02T10:00:00.000000Z") == moment.astimezone(UTC)
    with pytest.raises(EncodingError):
        parse_time("2015-03-02 10:00")


def _entry(**data: Any) -> bytes:
    return encode_entry(
        index=7,
        prev="ab" * 32,
        type="proposal.tabled",
        subject={"kind": "proposal", "id": "x", "version": 1},
        time="2015-03-02T10:00:00.000000Z",
        actor={"id": "a", "role": "recorder", "org": "o"},
        data=data,
    )


def test_entry_known_answer() -> None:
    """An entry's bytes are exactly the sorted, compact form of its fields."""
    assert _entry(title="T") == (
        b'{"actor":{"id":"a","org":"o","role":"recorder"},"data":{"title":"T"},"index":7,'
        b'"prev":"' + b"ab" * 32 + b'","subject":{"id":"x","kind":"proposal","version":1},'
        b'"time":"2015-03-02T10:00:00.000000Z","type":"proposal.tabled"}'
    )
    assert parse_entry(_entry(title="T"))["data"] == {"title": "T"}


def test_entry_size_limit() -> None:
    """An entry over 65,535 bytes is refused with a hint to store the document outside."""
    with pytest.raises(EntryTooLargeError, match="SHA-256"):
        _entry(text="x" * MAX_ENTRY_BYTES)


@pytest.mark.parametrize(
    "damaged",
    [b'{"index": 1}', b"[]", b"not json", b'{"actor":{},"data":{},"index":1}'],
)
def test_parse_entry_refuses_non_canonical_or_incomplete(damaged: bytes) -> None:
    """Entries with whitespace, missing keys or no object at all are refused."""
    with pytest.raises(EncodingError):
        parse_entry(damaged)
