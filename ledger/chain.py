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

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from ledger.encoding import ENTRY_KEYS, GENESIS_PREV, canonical
from ledger.errors import EncodingError
from ledger.merkle import CompactRange

__all__ = [
    "ChainReport",
    "Damage",
    "DamageKind",
    "EventRow",
    "LogHead",
    "LogRow",
    "Segment",
    "join_segments",
    "parse_entry",
    "scan_segment",
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
    TREE_MISMATCH = "stored Merkle tree differs"
    CHECKPOINT_MISMATCH = "stored checkpoint differs"
    # Beside the log (ledger.verify_side, projections.check): what the service reads.
    READ_MODEL_MISMATCH = "read model differs from a rebuild"
    TOKEN_MISMATCH = "token row differs from its entry"  # noqa: S105 (a name)
    TOKEN_UNLOGGED = "token row with no entry"  # noqa: S105
    TOKEN_MISSING = "token entry with no row"  # noqa: S105
    REVOCATION_UNLOGGED = "revocation row with no entry"
    REVOCATION_MISSING = "revocation entry with no row"
    DOCUMENT_MISMATCH = "document bytes do not hash to their name"
    IDEMPOTENCY_MISMATCH = "idempotency row does not match its entry"
    EMBARGO_SALT_MISMATCH = "embargo salt does not open its commitment"
    ATTENDANCE_SALT_MISMATCH = "attendance salt does not open its commitment"
    IMPORT_MISMATCH = "import progress row does not match its entries"
    PERSON_KEY_MISSING = "personal data key destroyed without an erasure"
    WRITE_AFTER_REVOCATION = "written after its token's revocation"
    SEARCH_INDEX_MISMATCH = "search index does not match its text"
    UPLOAD_UNKEYED = "uploads row without the service's MAC"


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


# One entries row joined with the event row it covers, as the reader streams it:
# (index, entry, stored_hash, originator_id, originator_version, topic, state, stored_leaf);
# the event columns are None when no event row matches. Plain tuples: this is the hot loop.
LogRow = tuple[int, bytes, bytes, str | None, int | None, str | None, bytes | None, bytes]


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
    # The tile-level tree nodes recomputed from the entries, (level, index, hash), sorted.
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.damage is None


EventCheck = Callable[[dict[str, Any], EventRow | None], str | None]
EntrySplice = Callable[[bytes, int, str, str, int, str], bytes]


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


@dataclass(slots=True)
class Segment:
    """What scanning the rows from ``start`` found; segments join into one report."""

    start: int
    count: int  # rows verified intact from start
    stack: list[bytes]  # perfect-subtree roots of those rows' leaves, largest first
    entry_before: bytes  # hash of entry start - 1 as this scan read it (zeros at 0)
    last_hash: bytes  # hash of the last intact entry (entry_before when count is 0)
    last_prev: bytes  # hash of the entry before that one
    damage: Damage | None
    seconds: float
    nodes: list[tuple[int, int, bytes]]  # tile-level nodes completed inside the segment


def scan_segment(
    rows: Iterable[LogRow],
    *,
    start: int,
    prev: bytes,
    prev_prev: bytes,
    check_event: EventCheck,
    expected_entry: EntrySplice,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
) -> Segment:
    """Verify rows from index ``start`` (a multiple of a power of two ≥ their count).

    The fast path rebuilds each entry from its event row, index and the previous hash and
    compares bytes: equal bytes prove index, link, subject, type, actor, data, time and
    canonical form at once. Anything else falls to the slow path, which names the damage.
    """
    started = time.perf_counter()
    # The RFC 9162 tree grows as a stack of perfect-subtree roots (CompactRange), inlined
    # here because this loop runs once per entry of the whole log.
    stack: list[bytes] = []
    sha256 = hashlib.sha256
    leaf_prefix, node_prefix = b"\x00", b"\x01"
    entry_before = prev
    expected = start
    prev_hex = prev.hex()
    next_progress = start + progress_every
    damage = None
    nodes: list[tuple[int, int, bytes]] = []
    for index, entry, stored_hash, oid, version, topic, state, stored_leaf in rows:
        actual_hash = sha256(entry).digest()
        if not (
            index == expected
            and actual_hash == stored_hash
            and state is not None
            and entry == expected_entry(state, index, prev_hex, oid, version, topic)  # type: ignore[arg-type]
        ):
            damage = _diagnose(
                expected,
                index,
                entry,
                stored_hash,
                actual_hash,
                prev,
                prev_prev,
                None if oid is None else EventRow(oid, version, topic, state),  # type: ignore[arg-type]
                check_event,
            )
            if damage is not None:
                break
        node = sha256(leaf_prefix + entry).digest()
        if node != stored_leaf:
            damage = Damage(expected, DamageKind.TREE_MISMATCH, "stored leaf hash differs")
            break
        carry = expected - start
        height = 0
        while carry & 1:
            node = sha256(node_prefix + stack.pop() + node).digest()
            carry >>= 1
            height += 1
            if not height & 7:
                nodes.append((height >> 3, ((expected + 1) >> height) - 1, node))
        stack.append(node)
        prev_prev, prev = prev, actual_hash
        prev_hex = actual_hash.hex()
        expected += 1
        if progress is not None and expected >= next_progress:
            progress(expected)
            next_progress += progress_every
    if damage is not None and damage.index < expected:
        # An inserted entry is only recognised one row later: undo the foreign leaf.
        expected = damage.index
        stack = []  # a damaged log reports no root
        prev, prev_prev = prev_prev, b""
    return Segment(
        start,
        expected - start,
        stack,
        entry_before,
        prev,
        prev_prev,
        damage,
        time.perf_counter() - started,
        nodes,
    )


def join_segments(
    segments: Iterable[Segment], *, head: LogHead | None, started: float
) -> ChainReport:
    """Join consecutive segment scans into one report, then check the sealed head."""
    stack: list[bytes] = []
    nodes: list[tuple[int, int, bytes]] = []
    size = 0
    prev = prev_prev = bytes.fromhex(GENESIS_PREV)
    for segment in segments:
        if segment.start != size or segment.entry_before != prev:
            damage = Damage(size, DamageKind.BROKEN_LINK, "log changed while it was verified")
            return ChainReport(size, prev, None, time.perf_counter() - started, damage)
        if segment.damage is not None:
            damage = segment.damage
            at_end = damage.index == segment.start + segment.count
            return ChainReport(
                damage.index,
                segment.last_hash if at_end else None,
                None,
                time.perf_counter() - started,
                damage,
            )
        if segment.count:
            prev_prev, prev = segment.last_prev, segment.last_hash
        # The segment's roots are perfect subtrees, one per set bit of its count, largest
        # first; the segment starts at a multiple of its own power-of-two span, so each
        # joins the global range exactly as if its leaves had been appended one by one.
        heights = [
            h for h in range(segment.count.bit_length() - 1, -1, -1) if segment.count >> h & 1
        ]
        nodes.extend(segment.nodes)
        for height, root in zip(heights, segment.stack, strict=True):
            node = root
            carry = size >> height
            end = size + (1 << height)
            level = height
            while carry & 1:
                node = hashlib.sha256(b"\x01" + stack.pop() + node).digest()
                carry >>= 1
                level += 1
                if not level & 7:
                    nodes.append((level >> 3, (end >> level) - 1, node))
            stack.append(node)
            size = end
    sealed = _check_head(head, size, prev)
    if sealed is not None:
        intact = {size: prev, size - 1: prev_prev}.get(sealed.index)
        return ChainReport(sealed.index, intact, None, time.perf_counter() - started, sealed)
    root = CompactRange.from_stack(size, stack).root()
    return ChainReport(size, prev, root, time.perf_counter() - started, None, sorted(nodes))


def _check_head(head: LogHead | None, size: int, last: bytes) -> Damage | None:
    if head is None:
        return None
    if head.size > size:
        return Damage(
            size, DamageKind.TRUNCATED, f"the log was sealed at {head.size} entries; {size} remain"
        )
    if head.size < size:
        return Damage(
            head.size,
            DamageKind.INSERTED_ENTRY,
            f"the log was sealed at {head.size} entries; {size} are stored",
        )
    if size and head.head_hash != last:
        return Damage(size - 1, DamageKind.CHANGED_BYTES, "last entry is not the sealed head")
    return None


def verify_chain(
    rows: Iterable[LogRow],
    *,
    head: LogHead | None,
    check_event: EventCheck,
    expected_entry: EntrySplice,
    progress: Callable[[int], None] | None = None,
) -> ChainReport:
    """Verify links, leaves and event rows of the whole log in one streaming pass."""
    started = time.perf_counter()
    genesis = bytes.fromhex(GENESIS_PREV)
    segment = scan_segment(
        rows,
        start=0,
        prev=genesis,
        prev_prev=genesis,
        check_event=check_event,
        expected_entry=expected_entry,
        progress=progress,
    )
    report = join_segments([segment], head=head, started=started)
    if progress is not None:
        progress(report.size)
    return report


def _diagnose(
    expected: int,
    index: int,
    entry: bytes,
    stored_hash: bytes,
    actual_hash: bytes,
    prev: bytes,
    prev_prev: bytes,
    event: EventRow | None,
    check_event: EventCheck,
) -> Damage | None:
    """The slow path: say what is wrong with this row, in the documented order."""
    if index > expected:
        return Damage(expected, DamageKind.MISSING_ENTRY, f"next stored index is {index}")
    if actual_hash != stored_hash:
        return Damage(expected, DamageKind.CHANGED_BYTES, "entry bytes do not match their hash")
    try:
        fields = parse_entry(entry)
    except EncodingError as exc:
        return Damage(expected, DamageKind.CHANGED_BYTES, str(exc))
    claimed = fields["index"]
    if claimed != expected:
        if claimed == expected - 1 and fields["prev"] == prev_prev.hex():
            return Damage(
                expected - 1,
                DamageKind.INSERTED_ENTRY,
                f"entry {claimed} follows a foreign entry at index {claimed}",
            )
        return Damage(expected, DamageKind.REORDERED, f"entry {claimed} is stored at {expected}")
    if fields["prev"] != prev.hex():
        return Damage(expected, DamageKind.BROKEN_LINK, "prev is not the previous entry's hash")
    mismatch = check_event(fields, event)
    if mismatch is not None:
        return Damage(expected, DamageKind.EVENT_MISMATCH, mismatch)
    return None
