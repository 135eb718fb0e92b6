"""Sequence, integrate, publish: what a store does inside the write transaction.

Given the head the store read under its write lock, ``seal`` gives the new event rows their
dense indexes and entry bytes (sequence), grows the Merkle tree (integrate) and signs a
checkpoint for the new size (publish). The store then writes all of it in the same
transaction; so a receipt's checkpoint always covers its entry, and a checkpoint is only
ever stored for a tree that extends the one before it (the lock makes the compare-and-swap).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from eventsourcing.persistence import StoredEvent

from ledger.envelope import SequencedEntry, sequence_entries
from ledger.errors import ConflictError
from ledger.integrate import Integrated, integrate
from ledger.merkle import hash_children, largest_power_of_two_smaller_than, root_from_leaf_hashes
from ledger.tokens import REVOKED, TokenRevokedError

__all__ = [
    "KEY_ROTATED",
    "TOKEN_CHECK",
    "Head",
    "Publisher",
    "Sealed",
    "SideRow",
    "StaleKeyError",
    "grouped_side_rows",
    "hand_over",
    "refuse_revoked_writers",
    "seal",
    "side_rows",
    "writing_tokens",
]

KEY_ROTATED = "log.key_rotated"
# Not a table: a SideRow with this "table" names the token (``values["token_id"]``) that
# wrote the entry at its position, re-checked under the write lock (``refuse_revoked_writers``).
TOKEN_CHECK = "token_check"  # noqa: S105 - a marker, not a secret


class Publisher(Protocol):
    """Signs the checkpoint for a tree (size, root) with the log key ``key_id``."""

    @property
    def key_id(self) -> bytes: ...

    def __call__(self, size: int, root: bytes) -> str: ...


class StaleKeyError(ConflictError):
    """This process signs with a key the log has rotated away from (or never used)."""


@dataclass(frozen=True, slots=True)
class Head:
    """The log's head as stored: size, hash of the last entry, right edge of the tree."""

    size: int
    head_hash: bytes
    edge: list[bytes]
    key_id: bytes = b""  # the log key that must sign the next checkpoint ("" before any)


@dataclass(frozen=True, slots=True)
class Sealed:
    """Everything one write transaction adds to the log."""

    entries: list[SequencedEntry]
    leaf_hashes: list[bytes]
    tree: Integrated
    checkpoint: str | None
    key_id: bytes  # the log key for the checkpoints after this batch
    old_edge: list[bytes]  # the tree's right edge before this batch

    def inclusion(self, position: int) -> list[bytes]:
        """RFC 9162 inclusion proof of the batch's entry ``position`` in the new tree.

        Computed from what the transaction already holds — the old right edge and the
        batch's leaves — with no read: every subtree an audit path needs is either one of
        the old edge's perfect subtrees, or lies (partly) inside the batch.
        """
        count = len(self.entries)
        if not 0 <= position < count:
            raise ValueError(f"position {position} is not in a batch of {count}")
        size = self.tree.size
        old = size - count
        known: dict[tuple[int, int], bytes] = {}
        start = 0
        for bit, root in zip(
            (b for b in reversed([1 << i for i in range(old.bit_length())]) if old & b),
            self.old_edge,
            strict=True,
        ):
            known[(start, start + bit)] = root
            start += bit
        leaves = self.leaf_hashes

        def subtree(lo: int, hi: int) -> bytes:
            found = known.get((lo, hi))
            if found is not None:
                return found
            if lo >= old:
                return root_from_leaf_hashes(leaves[lo - old : hi - old])
            if hi - lo == 1:
                raise AssertionError("an audit path never needs an old leaf")  # pragma: no cover
            k = largest_power_of_two_smaller_than(hi - lo)
            return hash_children(subtree(lo, lo + k), subtree(lo + k, hi))

        path: list[bytes] = []
        lo, hi, m = 0, size, old + position
        while hi - lo > 1:
            k = largest_power_of_two_smaller_than(hi - lo)
            if m < lo + k:
                path.append(subtree(lo + k, hi))
                hi = lo + k
            else:
                path.append(subtree(lo, lo + k))
                lo += k
        path.reverse()
        return path

    @property
    def head(self) -> Head:
        return Head(self.tree.size, self.entries[-1].entry_hash, self.tree.edge, self.key_id)


def seal(
    head: Head,
    stored_events: Sequence[StoredEvent],
    event_ids: Sequence[int],
    publisher: Publisher | None,
) -> Sealed:
    """Sequence the events onto ``head``, integrate their leaves, sign the new checkpoint."""
    key_id = head.key_id
    if publisher is not None and key_id and key_id != publisher.key_id:
        raise StaleKeyError(
            f"this process signs with log key {publisher.key_id.hex()}, but the log's key is "
            f"{key_id.hex()} (rotated); restart it with the current key"
        )
    entries = sequence_entries(head.size, head.head_hash, stored_events, event_ids)
    leaves = [hashlib.sha256(b"\x00" + e.entry).digest() for e in entries]
    tree = integrate(head.size, head.edge, leaves)
    checkpoint = publisher(tree.size, tree.root) if publisher is not None else None
    if publisher is not None:
        key_id = publisher.key_id
    for stored in stored_events:
        if stored.topic == KEY_ROTATED:
            # Published under the old key (just above); later checkpoints need the new one.
            new_key = orjson.loads(stored.state)["data"]["new_key"]
            key_id = bytes.fromhex(new_key.split("+", 2)[1])
    return Sealed(entries, leaves, tree, checkpoint, key_id, list(head.edge))


@dataclass(frozen=True, slots=True)
class SideRow:
    """A row for a side table, written in the same transaction as the batch's entries.

    ``position`` names the entry (0 = the batch's first) whose index fills an ``idx`` value
    left None; a ``tree_size`` left None gets the size of the tree the batch commits.
    """

    position: int
    table: str
    values: dict[str, Any]

    def resolved(self, sealed: Sealed) -> dict[str, Any]:
        values = dict(self.values)
        if "idx" in values and values["idx"] is None:
            values["idx"] = sealed.entries[self.position].index
        if "tree_size" in values and values["tree_size"] is None:
            values["tree_size"] = sealed.tree.size
        return values


def side_rows(kwargs: dict[str, Any]) -> list[SideRow]:
    rows: list[SideRow] = kwargs.get("side_rows") or []
    return rows


def grouped_side_rows(
    kwargs: dict[str, Any], sealed: Sealed, tables: Collection[str]
) -> list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]:
    """The side rows resolved and grouped by (table, columns), for one ``executemany`` each.

    Raises ValueError for a table not in ``tables``."""
    groups: dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]] = {}
    for side in side_rows(kwargs):
        if side.table == TOKEN_CHECK:
            continue
        if side.table not in tables:
            raise ValueError(f"no side table {side.table!r}")
        values = side.resolved(sealed)
        groups.setdefault((side.table, tuple(values)), []).append(tuple(values.values()))
    return [(table, columns, rows) for (table, columns), rows in groups.items()]


def writing_tokens(kwargs: dict[str, Any]) -> list[str]:
    """The ids of the tokens whose writes are in the batch (``TOKEN_CHECK`` rows), sorted."""
    return sorted({str(r.values["token_id"]) for r in side_rows(kwargs) if r.table == TOKEN_CHECK})


def refuse_revoked_writers(
    kwargs: dict[str, Any],
    stored_events: Sequence[StoredEvent],
    revoked: Callable[[list[str]], dict[str, int | None]],
) -> None:
    """Raise TokenRevokedError if a writing token of the batch is revoked by now.

    Called under the store's write lock, before sealing. ``revoked(token_ids)`` answers
    which of them were revoked by a transaction committed before this one (token id → the
    revocation's index, if known); a revocation earlier in this very batch counts too. A
    token revoking itself is not refused (its revocation is its own write).
    """
    checks = [(r.position, str(r.values["token_id"])) for r in side_rows(kwargs)
              if r.table == TOKEN_CHECK]  # fmt: skip
    if not checks:
        return
    committed = revoked(writing_tokens(kwargs))
    for position, token_id in checks:
        if token_id in committed:
            raise TokenRevokedError(token_id, committed[token_id])
        for earlier in stored_events[:position]:
            if earlier.topic == REVOKED and str(earlier.originator_id) == token_id:
                raise TokenRevokedError(token_id)


def hand_over(kwargs: dict[str, Any], sealed: Sealed) -> None:
    """Give what was sealed to the caller that asked for it (``sequenced=[]``, for receipts)."""
    sink = kwargs.get("sequenced")
    if sink is not None:
        sink[:] = [sealed]  # replace, so a retried transaction never leaves stale results
