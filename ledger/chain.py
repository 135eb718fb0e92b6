"""Chain links and the streaming chain verifier.

``verify_chain`` reads the log in index order, once, keeping O(log n) state, and names the
first index where the stored log stops being the log that was sequenced. The checks at each
position, in this order, decide the kind of damage reported:

1. the row's index skips ahead of the expected one        → missing entry
2. the bytes no longer hash to the hash stored beside them → changed bytes
3. the bytes are not a well-formed canonical entry        → changed bytes
4. the entry names another index:
   one lower, and it chains onto the entry two back        → the entry before it was inserted
   otherwise                                               → reordered entries
5. ``prev`` is not the hash of the previous entry         → broken link
6. the event row the aggregates load differs from it      → event row differs from its entry
After the last row, the recorded head (size and hash, written in the same transaction as
every append) catches a truncated tail or an entry appended outside the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from ledger.encoding import ENTRY_KEYS, GENESIS_PREV, canonical, entry_hash
from ledger.errors import EncodingError
from ledger.merkle import CompactRange, hash_leaf

__all__ = [
    "ChainReport",
    "Damage",
    "DamageKind",
    "EventRow",
    "LogHead",
    "LogRow",
    "parse_entry",
    "verify_chain",
]


class DamageKind(StrEnum):
    """What is wrong at the first bad index."""

    CHANGED_BYTES = "changed bytes"
    EVENT_MISMATCH = "event row differs from its entry"
    MISSING_ENTRY = "missing entry"
    INSERTED_ENTRY = "inserted entry"
    REORDERED = "reordered entries"
    BROKEN_LINK = "broken link"
    TRUNCATED = "truncated tail"
    UNLOGGED_EVENT = "event row with no entry"


@dataclass(frozen=True, slots=True)
class Damage:
    """The first place where the stored log is not the sequenced log."""

    index: int
    kind: DamageKind
    detail: str

    def __str__(self) -> str:
        return f"index {self.index}: {self.kind.value}: {self.detail}"


@dataclass(frozen=True, slots=True)
class EventRow:
    """One eventsourcing stored-event row, as the aggregates read it."""

    originator_id: str
    originator_version: int
    topic: str
    state: bytes


@dataclass(frozen=True, slots=True)
class LogRow:
    """One row of the entries table joined with the event row it covers."""

    index: int
    entry: bytes
    stored_hash: bytes
    event: EventRow | None


@dataclass(frozen=True, slots=True)
class LogHead:
    """Size and head hash recorded in the same transaction as every append."""

    size: int
    head_hash: bytes


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Outcome of one verification run."""

    size: int  # entries verified intact (all of them, or those before the damage)
    head_hash: bytes | None  # hash of the last intact entry, when known
    root: bytes | None  # RFC 9162 root of the whole log; None when damaged
    seconds: float
    damage: Damage | None

    @property
    def ok(self) -> bool:
        return self.damage is None


EventCheck = Callable[[dict[str, Any], EventRow | None], str | None]


def parse_entry(entry: bytes) -> dict[str, Any]:
    """Parse entry bytes, insisting on the canonical form and the required keys."""
    try:
        obj = orjson.loads(entry)
    except orjson.JSONDecodeError as exc:
        raise EncodingError(f"not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise EncodingError("an entry must be a JSON object")
    missing = ENTRY_KEYS - obj.keys()
    if missing:
        raise EncodingError(f"entry lacks {', '.join(sorted(missing))}")
    if not isinstance(obj["index"], int) or not isinstance(obj["prev"], str):
        raise EncodingError("index must be an integer and prev a string")
    if canonical(obj) != entry:
        raise EncodingError("entry bytes are not in canonical form")
    return obj


def verify_chain(
    rows: Iterable[LogRow],
    *,
    head: LogHead | None,
    check_event: EventCheck,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
) -> ChainReport:
    """Verify links, leaves and event rows of the whole log, streaming."""
    started = time.perf_counter()
    tree = CompactRange()
    expected = 0
    prev = bytes.fromhex(GENESIS_PREV)
    prev_prev = prev

    def report(damage: Damage | None) -> ChainReport:
        if damage is None:
            return ChainReport(expected, prev, tree.root(), time.perf_counter() - started, None)
        # Damage: only the entries before the damaged index count as verified.
        intact_head = {expected: prev, expected - 1: prev_prev}.get(damage.index)
        return ChainReport(
            damage.index, intact_head, None, time.perf_counter() - started, damage
        )

    for row in rows:
        if row.index > expected:
            return report(
                Damage(expected, DamageKind.MISSING_ENTRY, f"next stored index is {row.index}")
            )
        actual_hash = entry_hash(row.entry)
        if actual_hash != row.stored_hash:
            return report(
                Damage(expected, DamageKind.CHANGED_BYTES, "entry bytes do not match their hash")
            )
        try:
            entry = parse_entry(row.entry)
        except EncodingError as exc:
            return report(Damage(expected, DamageKind.CHANGED_BYTES, str(exc)))
        claimed = entry["index"]
        if claimed != expected:
            if claimed == expected - 1 and entry["prev"] == prev_prev.hex():
                return report(
                    Damage(
                        expected - 1,
                        DamageKind.INSERTED_ENTRY,
                        f"entry {claimed} follows a foreign entry at index {claimed}",
                    )
                )
            return report(
                Damage(expected, DamageKind.REORDERED, f"entry {claimed} is stored at {expected}")
            )
        if entry["prev"] != prev.hex():
            return report(
                Damage(expected, DamageKind.BROKEN_LINK, "prev is not the previous entry's hash")
            )
        mismatch = check_event(entry, row.event)
        if mismatch is not None:
            return report(Damage(expected, DamageKind.EVENT_MISMATCH, mismatch))
        tree.append(hash_leaf(row.entry))
        prev_prev, prev = prev, actual_hash
        expected += 1
        if progress is not None and expected % progress_every == 0:
            progress(expected)

    if head is not None:
        if head.size > expected:
            return report(
                Damage(
                    expected,
                    DamageKind.TRUNCATED,
                    f"the log was sealed at {head.size} entries; {expected} remain",
                )
            )
        if head.size < expected:
            return report(
                Damage(
                    head.size,
                    DamageKind.INSERTED_ENTRY,
                    f"the log was sealed at {head.size} entries; {expected} are stored",
                )
            )
        if expected and head.head_hash != prev:
            return report(
                Damage(expected - 1, DamageKind.CHANGED_BYTES, "last entry is not the sealed head")
            )
    if progress is not None:
        progress(expected)
    return report(None)
