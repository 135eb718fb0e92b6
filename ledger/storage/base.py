"""What every store provides to the rest of the ledger.

A store MUST, for every committed write transaction that inserts event rows, also commit in
that same transaction one entry per event row, with dense indexes continuing the log (no gap,
no reuse), each entry's ``prev`` the hash of the entry before, and the head row updated to
the new size and head hash. Writers MUST be serialised so that commit order equals index
order. A store MUST NOT acknowledge (return from ``insert_events``) before that commit is
durable. Readers see whole transactions only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from ledger.chain import EventRow, LogHead, LogRow

__all__ = ["LogReader", "UnloggedEvent"]

EVENTS_TABLE = "ledger_events"
ENTRIES_TABLE = "ledger_entries"
HEAD_TABLE = "ledger_head"

UnloggedEvent = tuple[int, EventRow]


class LogReader(Protocol):
    """Read-only access to the stored log, for verification, export and proofs."""

    def head(self) -> LogHead | None:
        """The sealed head, or None when the store has no head row."""

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[LogRow]:
        """Entries ``start <= index < stop`` joined with their event rows, in order, streamed."""

    def extent(self) -> int:
        """One past the highest stored index (0 when empty)."""

    def entries(self, start: int, stop: int) -> list[bytes]:
        """The verbatim bytes of entries ``start`` (inclusive) to ``stop`` (exclusive)."""

    def first_unlogged_event(self) -> UnloggedEvent | None:
        """An event row that no entry covers, if any."""

    def close(self) -> None:
        """Release the connection."""
