"""Group commit: commands decided at the same time are written in one transaction.

Each write transaction costs a lock, a durable commit (an fsync) and an Ed25519 signature
over the new checkpoint, whatever its size. Under concurrent load the first command to
arrive becomes the *leader*: it takes every command queued behind it (up to
``max_batch``) and writes them as one batch — one transaction, one checkpoint, each command
its own entry, index and inclusion proof. The others wait for the leader, then return. With
no contention a command is simply written alone, with no added wait.

Two commands on the same record never share a batch (the second was decided without the
first and would fail the whole batch on the version check); it waits for the next one. If a
batch fails, its commands are retried one by one, so one bad command cannot sink the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.sequencer import Sealed, SideRow

__all__ = ["Committed", "GroupCommitter"]

Put = Callable[[list[Any], list[SideRow]], Sealed]


@dataclass(frozen=True, slots=True)
class Committed:
    """One command's part of a committed batch: its entries start at ``offset``."""

    sealed: Sealed
    offset: int
    count: int


@dataclass(eq=False)
class _Pending:
    events: list[Any]
    rows: list[SideRow]
    subjects: frozenset[Any]
    wake: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    finished: bool = False
    result: Committed | None = None
    error: BaseException | None = None

    def outcome(self) -> Committed:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class GroupCommitter:
    """Batches concurrent ``commit`` calls into single ``put`` calls (leader/follower)."""

    def __init__(self, put: Put, *, max_batch: int = 128) -> None:
        self._put = put
        self.max_batch = max(1, max_batch)
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._busy = False
        self.batches = 0  # batches written (for tests and metrics)
        self.largest = 0  # the largest batch written

    def commit(self, events: Sequence[Any], rows: Sequence[SideRow] = ()) -> Committed:
        """Write ``events`` (one command's) with its side rows; their part of the batch."""
        me = _Pending(list(events), list(rows), frozenset(e.originator_id for e in events))
        with self._lock:
            self._queue.append(me)
            lead = not self._busy
            self._busy = True
        if lead:
            self._lead(me)
            return me.outcome()
        while True:
            me.wake.wait()
            me.wake.clear()
            if me.finished:
                return me.outcome()
            if me.lead:  # the last leader handed over to us
                me.lead = False
                self._lead(me)
                return me.outcome()

    def _take(self) -> list[_Pending]:
        """The next batch, oldest first, skipping commands on a record already in it."""
        batch: list[_Pending] = []
        subjects: set[Any] = set()
        rest: list[_Pending] = []
        for pending in self._queue:
            if len(batch) < self.max_batch and not (pending.subjects & subjects):
                batch.append(pending)
                subjects |= pending.subjects
            else:
                rest.append(pending)
        self._queue = rest
        return batch

    def _lead(self, me: _Pending) -> None:
        while True:
            with self._lock:
                batch = self._take()
            if batch:
                self._write(batch)
            with self._lock:
                if not self._queue:
                    self._busy = False
                    return
                if me.finished:
                    # Our own command is done: let the oldest waiter lead the rest.
                    successor = self._queue[0]
                    successor.lead = True
                    successor.wake.set()
                    return

    def _write(self, batch: list[_Pending]) -> None:
        try:
            if len(batch) == 1:
                self._write_one(batch[0])
                return
            events: list[Any] = []
            rows: list[SideRow] = []
            offsets: list[int] = []
            for pending in batch:
                offsets.append(len(events))
                rows += [
                    SideRow(row.position + len(events), row.table, row.values)
                    for row in pending.rows
                ]
                events += pending.events
            try:
                sealed = self._put(events, rows)
            except Exception:
                # One command may have lost a race or broken a rule the store enforces:
                # write them one by one so each gets its own answer.
                for pending in batch:
                    self._write_one(pending)
                return
            self.batches += 1
            self.largest = max(self.largest, len(batch))
            for pending, offset in zip(batch, offsets, strict=True):
                pending.result = Committed(sealed, offset, len(pending.events))
        finally:
            for pending in batch:
                pending.finished = True
                pending.wake.set()

    def _write_one(self, pending: _Pending) -> None:
        try:
            sealed = self._put(pending.events, pending.rows)
        except BaseException as exc:  # handed to the command's own thread to raise
            pending.error = exc
            return
        self.batches += 1
        self.largest = max(self.largest, 1)
        pending.result = Committed(sealed, 0, len(pending.events))
