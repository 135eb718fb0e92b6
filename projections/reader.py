"""ReadModels: every read-model query in one place, each taking ``as_of`` and ``min_index``.

``as_of`` is a log index, an RFC 3339 UTC timestamp (the state after the last entry at or
before it) or None (the latest applied entry). ``min_index`` asks for read-your-writes: the
call waits (bounded) until the views have applied that entry. Every answer says the index it
reflects: single answers carry ``as_of_index``; lists come wrapped as
``{"as_of_index": k, "items": [...]}``.

Lists page by keyset: pass ``limit`` and the answer also holds ``next_after``, the sort key
of its last item when more follow (None on the last page); pass that back as ``after``, with
the same index as ``as_of``, for the next page. Rows are versioned by log index, so pages
read at one index fit together exactly however many entries arrive in between.
:func:`encode_cursor` and :func:`decode_cursor` turn an index and a sort key into an opaque,
URL-safe, integrity-checked cursor and back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from ledger.errors import InvalidInputError
from projections import (
    consultations,
    meetings,
    organisations,
    process,
    proposals,
    publications,
    search,
)
from projections.runner import Runner

__all__ = [
    "CURSOR_MAX_LENGTH",
    "KEY_SHAPES",
    "SORT_KEYS",
    "AsOf",
    "CursorError",
    "ReadModels",
    "decode_cursor",
    "encode_cursor",
]

AsOf = int | str | None

Key = tuple[Any, ...]

# Cursors ------------------------------------------------------------------------------------

CURSOR_MAX_LENGTH = 2048
"""The longest cursor :func:`decode_cursor` reads (characters)."""

_CURSOR_VERSION = 1
_TAG_BYTES = 16
_MAX_TEXT = 1024  # characters of one text value in a sort key
_INT_RANGE = (-(2**63), 2**63 - 1)  # BIGINT
_URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


class CursorError(InvalidInputError):
    """A paging cursor that is malformed, altered, or was made for another query."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _tag(secret: bytes, scope: str, payload: bytes) -> bytes:
    message = b"open-policy-ledger/cursor\x00" + scope.encode() + b"\x00" + payload
    return hmac.new(secret, message, hashlib.sha256).digest()[:_TAG_BYTES]


def _check_value(value: Any) -> bool:
    """True for the values a sort key may hold: BIGINT-sized ints, finite floats, short
    texts without NUL (bool and None are not sort-key values)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return _INT_RANGE[0] <= value <= _INT_RANGE[1]
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return len(value) <= _MAX_TEXT and "\x00" not in value
    return False


def encode_cursor(at: int, key: Sequence[Any], *, scope: str, secret: bytes) -> str:
    """An opaque, URL-safe cursor for the page after sort key ``key`` of the listing read at
    log index ``at``. ``scope`` names the listing (path and filters): the cursor is refused
    for any other. ``secret`` keys the integrity tag (HMAC-SHA-256, truncated to 128 bits).
    """
    if isinstance(at, bool) or not isinstance(at, int) or not -1 <= at <= _INT_RANGE[1]:
        raise ValueError(f"a cursor's index must be an int from -1, not {at!r}")
    values = list(key)
    if not all(_check_value(v) for v in values):
        raise ValueError(f"a cursor's sort key holds an unsupported value: {values!r}")
    payload = orjson.dumps([_CURSOR_VERSION, at, values])
    return _b64(_tag(secret, scope, payload) + payload)


def decode_cursor(
    cursor: str,
    *,
    scope: str,
    secret: bytes,
    shape: Sequence[type] | None = None,
) -> tuple[int, Key]:
    """The ``(index, sort key)`` in a cursor made by :func:`encode_cursor` for ``scope``.

    Raises :class:`CursorError` for anything else: not URL-safe base64 in its one canonical
    form, too long, a tag that does not match (altered, or made for another scope or with
    another secret), or content of the wrong form. ``shape``, when given, is the type of each
    value the sort key must hold (``int``, ``float`` or ``str``).
    """
    if not isinstance(cursor, str) or not 0 < len(cursor) <= CURSOR_MAX_LENGTH:
        raise CursorError("the cursor is empty or too long")
    if _URL_SAFE.fullmatch(cursor) is None or len(cursor) % 4 == 1:
        raise CursorError("the cursor is not URL-safe base64")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise CursorError("the cursor is not URL-safe base64") from None
    if _b64(raw) != cursor or len(raw) <= _TAG_BYTES:
        raise CursorError("the cursor is not one this service made")
    tag, payload = raw[:_TAG_BYTES], raw[_TAG_BYTES:]
    if not hmac.compare_digest(tag, _tag(secret, scope, payload)):
        raise CursorError("the cursor was altered, or belongs to another listing or other filters")
    try:
        content = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise CursorError("the cursor's content is malformed") from None
    if not (
        isinstance(content, list)
        and len(content) == 3
        and content[0] == _CURSOR_VERSION
        and type(content[0]) is int
        and type(content[1]) is int
        and -1 <= content[1] <= _INT_RANGE[1]
        and isinstance(content[2], list)
        and all(_check_value(v) for v in content[2])
    ):
        raise CursorError("the cursor's content is malformed")
    key = tuple(content[2])
    if shape is not None and (
        len(key) != len(shape) or any(type(v) is not t for v, t in zip(key, shape, strict=False))
    ):
        raise CursorError("the cursor's sort key does not fit this listing")
    return content[1], key


# Sort keys of listed items, matching the ORDER BY of the query that lists them.


def _proposal_key(item: dict[str, Any]) -> Key:
    return (item["tabled_index"], item["id"])


def _index_key(item: dict[str, Any]) -> Key:
    return (item["index"],)


def _version_key(item: dict[str, Any]) -> Key:
    return (item["text_version"],)


def _meeting_key(item: dict[str, Any]) -> Key:
    return (item["starts_at"], item["scheduled_index"], item["id"])


def _publication_key(item: dict[str, Any]) -> Key:
    return (item["published_index"], item["id"])


def _consultation_key(item: dict[str, Any]) -> Key:
    return (item["opened_index"], item["id"])


def _organisation_key(item: dict[str, Any]) -> Key:
    return (item["registered_index"], item["id"])


def _hit_key(item: dict[str, Any]) -> Key:
    return (item["rank"], item["index"], item["kind"], item["ref_id"], item["sub_id"])


def _amendment_key(item: dict[str, Any]) -> Key:
    return (item["proposed_index"], item["proposal_id"], item["amendment_id"])


def _all_versions_key(item: dict[str, Any]) -> Key:
    return (item["created_index"], item["proposal_id"], item["text_version"])


def _membership_key(item: dict[str, Any]) -> Key:
    return (item["since_index"], item["org_id"], item["process_id"], item["group"])


KEY_SHAPES: dict[str, tuple[type, ...]] = {
    "proposals": (int, str),
    "versions": (int,),
    "history": (int,),
    "meetings": (str, int, str),
    "publications": (int, str),
    "consultations": (int, str),
    "organisations": (int, str),
    "timeline": (int,),
    "search": (float, int, str, str, str),
    "amendments": (int, str, str),
    "all_versions": (int, str, int),
    "memberships": (int, str, str, str),
    "entries": (int,),
}
"""The types of each listing's sort key, for :func:`decode_cursor`'s ``shape``."""

SORT_KEYS: dict[str, Callable[[dict[str, Any]], Key]] = {
    "proposals": _proposal_key,
    "versions": _version_key,
    "history": _index_key,
    "meetings": _meeting_key,
    "publications": _publication_key,
    "consultations": _consultation_key,
    "organisations": _organisation_key,
    "timeline": _index_key,
    "search": _hit_key,
    "amendments": _amendment_key,
    "all_versions": _all_versions_key,
    "memberships": _membership_key,
    "entries": _index_key,
}
"""Each listing's sort key of an item: what ``after`` takes to list the items after it."""


Fetch = Callable[[int | None], list[dict[str, Any]]]


class ReadModels:
    """Queries over a runner's views."""

    def __init__(self, runner: Runner, *, wait_timeout: float = 5.0) -> None:
        self.runner = runner
        self.db = runner.db
        self.wait_timeout = wait_timeout

    def at(self, as_of: AsOf = None, min_index: int | None = None) -> int:
        """The log index an answer reflects (after waiting for ``min_index`` if asked)."""
        if min_index is not None:
            self.runner.wait_for(min_index, timeout=self.wait_timeout)
        return self.runner.as_of_index(as_of)

    @staticmethod
    def _listing(at: int, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"as_of_index": at, "items": items}

    @staticmethod
    def _page(
        at: int, fetch: Fetch, limit: int | None, key: Callable[[dict[str, Any]], Key]
    ) -> dict[str, Any]:
        """Every item (``limit`` None), or a page of at most ``limit`` items (one more is
        fetched to learn whether another page follows) and ``next_after``."""
        if limit is None:
            return {"as_of_index": at, "items": fetch(None)}
        limit = max(1, limit)
        items = fetch(limit + 1)
        more = len(items) > limit
        del items[limit:]
        return {
            "as_of_index": at,
            "items": items,
            "next_after": list(key(items[-1])) if more else None,
        }

    # proposals ------------------------------------------------------------------------

    def proposal(
        self, pid: str, as_of: AsOf = None, min_index: int | None = None
    ) -> dict[str, Any] | None:
        return proposals.get_proposal(self.db, pid, self.at(as_of, min_index))

    def proposals(
        self,
        as_of: AsOf = None,
        *,
        strand_id: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        at = self.at(as_of)
        return self._page(
            at,
            lambda n: proposals.list_proposals(
                self.db, at, strand_id=strand_id, status=status, limit=n, after=after
            ),
            limit,
            _proposal_key,
        )

    def version(self, pid: str, number: int, as_of: AsOf = None) -> dict[str, Any] | None:
        return proposals.version(self.db, pid, number, self.at(as_of))

    def versions(
        self,
        pid: str,
        as_of: AsOf = None,
        *,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        at = self.at(as_of)
        return self._page(
            at,
            lambda n: proposals.versions(self.db, pid, at, limit=n, after=after),
            limit,
            _version_key,
        )

    def compare(self, pid: str, old: int, new: int, as_of: AsOf = None) -> dict[str, Any] | None:
        return proposals.compare(self.db, pid, old, new, self.at(as_of))

    def history(
        self,
        pid: str,
        as_of: AsOf = None,
        *,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        at = self.at(as_of)
        return self._page(
            at,
            lambda n: proposals.history(self.db, pid, at, limit=n, after=after),
            limit,
            _index_key,
        )

    def amendments(
        self,
        as_of: AsOf = None,
        *,
        proposal_id: str | None = None,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        """Every amendment to every proposal (or to ``proposal_id``), in proposing order."""
        at = self.at(as_of)
        return self._page(
            at,
            lambda n: proposals.list_amendments(
                self.db, at, proposal_id=proposal_id, limit=n, after=after
            ),
            limit,
            _amendment_key,
        )

    def all_versions(
        self, as_of: AsOf = None, *, limit: int | None = None, after: Sequence[Any] | None = None
    ) -> dict[str, Any]:
        """Every text version of every proposal, in log order."""
        at = self.at(as_of)
        return self._page(
            at,
            lambda n: proposals.list_versions(self.db, at, limit=n, after=after),
            limit,
            _all_versions_key,
        )

    # registers --------------------------------------------------------------------------

    def meeting(self, meeting_id: str, as_of: AsOf = None) -> dict[str, Any] | None:
        return meetings.get_meeting(self.db, meeting_id, self.at(as_of))

    def meetings(
        self,
        as_of: AsOf = None,
        *,
        strand_id: str | None = None,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        at = self.at(as_of)
        return self._page(
            at,
            lambda n: meetings.list_meetings(
                self.db, at, strand_id=strand_id, limit=n, after=after
            ),
            limit,
            _meeting_key,
        )

    def publication(self, publication_id: str, as_of: AsOf = None) -> dict[str, Any] | None:
        return publications.get_publication(self.db, publication_id, self.at(as_of))

    def publications(
        self,
        as_of: AsOf = None,
        *,
        proposal_id: str | None = None,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        at = self.at(as_of)
        return self._page(
            at,
            lambda n: publications.list_publications(
                self.db, at, proposal_id=proposal_id, limit=n, after=after
            ),
            limit,
            _publication_key,
        )

    def consultation(self, consultation_id: str, as_of: AsOf = None) -> dict[str, Any] | None:
        return consultations.get_consultation(self.db, consultation_id, self.at(as_of))

    def consultations(
        self, as_of: AsOf = None, *, limit: int | None = None, after: Sequence[Any] | None = None
    ) -> dict[str, Any]:
        at = self.at(as_of)
        return self._page(
            at,
            lambda n: consultations.list_consultations(self.db, at, limit=n, after=after),
            limit,
            _consultation_key,
        )

    def organisation(self, org_id: str, as_of: AsOf = None) -> dict[str, Any] | None:
        return organisations.get_organisation(self.db, org_id, self.at(as_of))

    def organisations(
        self,
        as_of: AsOf = None,
        *,
        org_kind: str | None = None,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        at = self.at(as_of)
        return self._page(
            at,
            lambda n: organisations.list_organisations(
                self.db, at, org_kind=org_kind, limit=n, after=after
            ),
            limit,
            _organisation_key,
        )

    def memberships(
        self, as_of: AsOf = None, *, limit: int | None = None, after: Sequence[Any] | None = None
    ) -> dict[str, Any]:
        """Every membership in force, in the order they began."""
        at = self.at(as_of)
        return self._page(
            at,
            lambda n: organisations.list_memberships(self.db, at, limit=n, after=after),
            limit,
            _membership_key,
        )

    def process(self, process_id: str, as_of: AsOf = None) -> dict[str, Any] | None:
        return process.get_process(self.db, process_id, self.at(as_of))

    def timeline(
        self, as_of: AsOf = None, *, limit: int = 50, after: Sequence[Any] | None = None
    ) -> dict[str, Any]:
        """The latest entries, newest first: a page of at most ``limit`` (up to
        :data:`projections.process.TIMELINE_MAX`), before the entry ``after`` when given."""
        at = self.at(as_of)
        limit = max(1, min(limit, process.TIMELINE_MAX))
        before = None if after is None else int(after[0])
        items = process.timeline(self.db, at, limit=limit, before=before)
        more = len(items) == limit and bool(
            process.timeline(self.db, at, limit=1, before=items[-1]["index"])
        )
        return {
            "as_of_index": at,
            "items": items,
            "next_after": list(_index_key(items[-1])) if more else None,
        }

    def entries(
        self, as_of: AsOf = None, *, limit: int | None = None, after: Sequence[Any] | None = None
    ) -> dict[str, Any]:
        """Every entry summarised, oldest first (the timeline in log order)."""
        at = self.at(as_of)
        start = None if after is None else int(after[0])

        def fetch(n: int | None) -> list[dict[str, Any]]:
            limit = max(0, at + 1) if n is None else n  # None: all (at most at + 1 entries)
            return process.entry_summaries(self.db, at, after=start, limit=limit)

        return self._page(at, fetch, limit, _index_key)

    def search(
        self,
        query: str,
        as_of: AsOf = None,
        *,
        limit: int = 20,
        after: Sequence[Any] | None = None,
        kinds: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Hits, best first: a page of at most ``limit`` (see :func:`projections.search.search`
        for how pages behave on each store), of the given ``kinds`` when given."""
        at = self.at(as_of)
        return self._page(
            at,
            lambda n: search.search(self.db, query, at, kinds=kinds, limit=n or limit, after=after),
            limit,
            _hit_key,
        )
