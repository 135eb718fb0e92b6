"""Sequence, integrate, publish: what a store does inside the write transaction.

Given the head the store read under its write lock, ``seal`` gives the new event rows their
dense indexes and entry bytes (sequence), grows the Merkle tree (integrate) and signs a
checkpoint for the new size (publish). The store then writes all of it in the same
transaction; so a receipt's checkpoint always covers its entry, and a checkpoint is only
ever stored for a tree that extends the one before it (the lock makes the compare-and-swap).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from eventsourcing.persistence import StoredEvent

from ledger.envelope import SequencedEntry, sequence_entries
from ledger.errors import ConflictError
from ledger.integrate import Integrated, integrate

__all__ = [
    "KEY_ROTATED",
    "Head",
    "Publisher",
    "Sealed",
    "SideRow",
    "StaleKeyError",
    "hand_over",
    "seal",
    "side_rows",
]

KEY_ROTATED = "log.key_rotated"


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

    def last_inclusion(self) -> list[bytes]:
        """RFC 9162 inclusion proof of the batch's last entry in the new tree.

        When one leaf is appended to a tree of size m, its audit path in the tree of size
        m + 1 is exactly the old right edge, smallest subtree first: no read needed.
        """
        if len(self.entries) != 1:
            raise ValueError("only a single-entry batch has its proof in hand")
        return list(reversed(self.old_edge))

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


def hand_over(kwargs: dict[str, Any], sealed: Sealed) -> None:
    """Give what was sealed to the caller that asked for it (``sequenced=[]``, for receipts)."""
    sink = kwargs.get("sequenced")
    if sink is not None:
        sink[:] = [sealed]  # replace, so a retried transaction never leaves stale results
