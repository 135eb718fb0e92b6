"""Sequence, integrate, publish: what a store does inside the write transaction.

Given the head the store read under its write lock, ``seal`` gives the new event rows their
dense indexes and entry bytes (sequence), grows the Merkle tree (integrate) and signs a
checkpoint for the new size (publish). The store then writes all of it in the same
transaction; so a receipt's checkpoint always covers its entry, and a checkpoint is only
ever stored for a tree that extends the one before it (the lock makes the compare-and-swap).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import StoredEvent

from ledger.envelope import SequencedEntry, sequence_entries
from ledger.integrate import Integrated, integrate

__all__ = ["Head", "Publisher", "Sealed", "hand_over", "seal"]

# (tree size, root) → the signed checkpoint note for it.
Publisher = Callable[[int, bytes], str]


@dataclass(frozen=True, slots=True)
class Head:
    """The log's head as stored: size, hash of the last entry, right edge of the tree."""

    size: int
    head_hash: bytes
    edge: list[bytes]


@dataclass(frozen=True, slots=True)
class Sealed:
    """Everything one write transaction adds to the log."""

    entries: list[SequencedEntry]
    leaf_hashes: list[bytes]
    tree: Integrated
    checkpoint: str | None

    @property
    def head(self) -> Head:
        return Head(self.tree.size, self.entries[-1].entry_hash, self.tree.edge)


def seal(
    head: Head,
    stored_events: Sequence[StoredEvent],
    event_ids: Sequence[int],
    publisher: Publisher | None,
) -> Sealed:
    """Sequence the events onto ``head``, integrate their leaves, sign the new checkpoint."""
    entries = sequence_entries(head.size, head.head_hash, stored_events, event_ids)
    leaves = [hashlib.sha256(b"\x00" + e.entry).digest() for e in entries]
    tree = integrate(head.size, head.edge, leaves)
    checkpoint = publisher(tree.size, tree.root) if publisher is not None else None
    return Sealed(entries, leaves, tree, checkpoint)


def hand_over(kwargs: dict[str, Any], sealed: Sealed) -> None:
    """Give what was sealed to the caller that asked for it (``sequenced=[]``, for receipts)."""
    sink = kwargs.get("sequenced")
    if sink is not None:
        sink[:] = [sealed]  # replace, so a retried transaction never leaves stale results
