"""The only producer of entry bytes (DESIGN §3).

Entries are UTF-8 JSON in the RFC 8785 (JCS) form for the subset we allow: objects with
string keys sorted by UTF-16 code units, no insignificant whitespace, strings, booleans,
null, arrays and integers within ±(2^53 - 1). Floats are refused: they have no single
decimal spelling another implementation would reproduce.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from ledger.errors import EncodingError, EntryTooLargeError

__all__ = [
    "ENTRY_KEYS",
    "GENESIS_PREV",
    "MAX_ENTRY_BYTES",
    "MAX_SAFE_INTEGER",
    "canonical",
    "canonicalize",
    "encode_entry",
    "entry_hash",
    "format_time",
    "parse_time",
]

MAX_SAFE_INTEGER = 2**53 - 1
MAX_ENTRY_BYTES = 65_535
GENESIS_PREV = "0" * 64
ENTRY_KEYS = frozenset({"index", "prev", "type", "subject", "time", "actor", "data"})
_MAX_DEPTH = 32


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def canonicalize(value: Any, _depth: int = 0) -> Any:
    """Return ``value`` as plain JSON types with object keys in canonical order.

    UUIDs become lowercase strings and aware datetimes RFC 3339 UTC strings; anything
    outside the allowed subset raises :class:`EncodingError`.
    """
    if _depth > _MAX_DEPTH:
        raise EncodingError(f"value nested deeper than {_MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise EncodingError(f"integer {value} is outside ±(2^53 - 1)")
        return value
    if isinstance(value, str):
        _check_text(value)
        return value
    if isinstance(value, float):
        raise EncodingError(f"floats are not allowed in entries (got {value!r})")
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodingError(f"object keys must be strings (got {key!r})")
            _check_text(key)
            items.append((key, canonicalize(item, _depth + 1)))
        items.sort(key=lambda pair: _utf16_key(pair[0]))
        return dict(items)
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [canonicalize(item, _depth + 1) for item in value]
    raise EncodingError(f"type {type(value).__name__} cannot be written in an entry")


def _check_text(text: str) -> None:
    if "\x00" in text:
        # Legal JSON, but never meaningful in a record, and PostgreSQL text cannot hold it.
        raise EncodingError("text contains a NUL character (U+0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodingError("text contains a lone surrogate, which is not valid UTF-8") from exc


def canonical(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON bytes."""
    if not _needs_rebuild(value, 0):
        # Plain JSON values whose keys sort the same by UTF-16 code units and by code
        # points (no key beyond the BMP): orjson's sorted output is already RFC 8785.
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # canonicalize() below names what is wrong
    return orjson.dumps(canonicalize(value))


def _needs_rebuild(value: Any, depth: int) -> bool:
    """True when ``value`` needs :func:`canonicalize` (conversions, astral keys, errors).

    Leaves (text, numbers, booleans, null) are checked in the container's loop, without a
    call each: this runs once for every entry the ledger writes."""
    kind = type(value)
    items: Any
    if kind is dict:
        for key in value:
            if type(key) is not str or "\x00" in key:
                return True
            if not key.isascii() and max(key) > "\uffff":
                return True
        items = value.values()
    elif kind is list:
        items = value
    elif kind is str:
        return "\x00" in value
    elif kind is bool or value is None:
        return False
    elif kind is int:
        return not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
    else:
        return True
    if depth > _MAX_DEPTH:
        return True
    for item in items:
        item_kind = type(item)
        if item_kind is str:
            if "\x00" in item:
                return True
        elif item_kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                return True
        elif item_kind is bool or item is None:
            continue
        elif _needs_rebuild(item, depth + 1):
            return True
    return False


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2015-03-02T10:00:00.000000Z``."""
    if moment.tzinfo is None:
        raise EncodingError("timestamps must be timezone-aware")
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    if utc.year < 1000:
        raise EncodingError("timestamps before the year 1000 are not supported")
    return utc.isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    """Parse a timestamp written by :func:`format_time`."""
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise EncodingError(f"not an RFC 3339 UTC timestamp: {text!r}") from exc


def encode_entry(
    *,
    index: int,
    prev: str,
    type: str,
    subject: Mapping[str, Any],
    time: str,
    actor: Mapping[str, Any],
    data: Mapping[str, Any],
) -> bytes:
    """Build the bytes of one log entry from its fields."""
    encoded = canonical(
        {
            "index": index,
            "prev": prev,
            "type": type,
            "subject": subject,
            "time": time,
            "actor": actor,
            "data": data,
        }
    )
    if len(encoded) > MAX_ENTRY_BYTES:
        raise EntryTooLargeError(
            f"entry would be {len(encoded)} bytes; the limit is {MAX_ENTRY_BYTES}. "
            "Store large documents outside the log and record their SHA-256."
        )
    return encoded


def entry_hash(entry: bytes) -> bytes:
    """SHA-256 of the entry bytes: the chain link value."""
    return hashlib.sha256(entry).digest()
