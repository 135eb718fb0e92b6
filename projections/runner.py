"""The runner: follows the log and keeps every read model current.

It reads entries by index (the log's own dense order, not eventsourcing's notification ids)
and applies a batch of them to the views' write-behind buffer, outside any transaction; then,
in one transaction, it checks that the views' tracking positions are still at the batch's
start, writes the buffered rows and moves the positions. A crash anywhere leaves each view
either before or after the whole batch: nothing is applied twice, nothing skipped. Several
runners may race (one per API process): the loser of a batch drops its rows and moves on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import orjson

from ledger.errors import LedgerError
from ledger.storage import LogReader
from projections.base import Buffer, Entry, View
from projections.db import Db

__all__ = ["Runner", "ViewTimeoutError"]

TRACKING = "pv_tracking"
ENTRIES = "pv_entries"


class ViewTimeoutError(LedgerError, TimeoutError):
    """The read models did not reach the asked-for log index in time."""


def _entry(raw: bytes) -> Entry:
    fields = orjson.loads(raw)
    subject = fields["subject"]
    return Entry(
        fields["index"],
        fields["type"],
        subject["id"],
        subject["version"],
        fields["time"],
        fields["actor"],
        fields["data"],
    )


class Runner:
    """Feeds ``views`` in ``db`` from the log that ``log`` reads."""

    def __init__(self, db: Db, log: LogReader, views: Sequence[View], *, batch: int = 5000):
        self.db = db
        self.log = log
        self.views = {view.name: view for view in views}
        self.batch = batch
        self._lock = threading.Lock()
        # Write-behind buffer and row cache, valid while this runner applies consecutive
        # batches (another runner applying in between makes it stale: then it is dropped).
        self._buffer: Buffer | None = None
        self._buffer_end = -1

    def setup(self) -> None:
        """Create tracking, the entry index and every view's tables (idempotent)."""
        with self.db.transaction() as db:
            if db.dialect == "postgresql":
                # CREATE … IF NOT EXISTS is not safe against itself running concurrently
                # (several API workers starting at once): serialise it.
                db.execute("SELECT pg_advisory_xact_lock(7461626)")
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {TRACKING} "
                "(view TEXT PRIMARY KEY, position BIGINT NOT NULL)"
            )
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {ENTRIES} "
                "(idx BIGINT PRIMARY KEY, time TEXT NOT NULL, type TEXT NOT NULL, "
                "subject_id TEXT NOT NULL)"
            )
            db.execute(f"CREATE INDEX IF NOT EXISTS {ENTRIES}_time ON {ENTRIES} (time)")
            for view in self.views.values():
                view.create(db)
                if db.one(f"SELECT position FROM {TRACKING} WHERE view = ?", [view.name]) is None:
                    db.execute(f"INSERT INTO {TRACKING} VALUES (?, 0)", [view.name])

    def positions(self) -> dict[str, int]:
        """Each view's position: the number of entries it has applied."""
        rows = self.db.all(f"SELECT view, position FROM {TRACKING}")
        return {name: int(pos) for name, pos in rows if name in self.views}

    def position(self) -> int:
        """Entries applied by every view (the index every answer can reflect, plus one)."""
        positions = self.positions()
        return min(positions.values()) if positions else 0

    def catch_up(
        self, *, stop: int | None = None, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Apply every committed entry not yet applied (up to ``stop``); return the position."""
        with self._lock:
            head = self.log.head()
            target = head.size if head is not None else 0
            if stop is not None:
                target = min(target, stop)
            while True:
                start = self.position()
                if start >= target:
                    return start
                end = min(start + self.batch, target)
                entries = [_entry(raw) for raw in self.log.entries(start, end)]
                self._apply_batch(start, end, entries)
                if progress is not None:
                    progress(end, target)

    def _apply_batch(self, start: int, end: int, entries: list[Entry]) -> None:
        try:
            self._apply_batch_once(start, end, entries)
        except BaseException:
            self._buffer = None  # the transaction rolled back: so must the row cache
            raise
        self._buffer_end = end

    def _apply_batch_once(self, start: int, end: int, entries: list[Entry]) -> None:
        # Apply optimistically, outside the transaction: every view write goes to the
        # buffer, so this holds no lock and several runners (or a parallel rebuild's
        # processes) compute at once. The transaction then re-reads the positions under the
        # write lock; if another runner has applied this batch meanwhile, ours is dropped.
        positions = self.positions()
        behind = [v for name, v in self.views.items() if positions.get(name, 0) == start]
        if not behind:
            self._buffer = None
            return
        consecutive = self._buffer is not None and self._buffer_end == start
        if not consecutive or len(behind) != len(self.views):
            self._buffer = Buffer(complete=start == 0)
        buffer = self._buffer
        assert buffer is not None
        self.db.buffer = buffer
        try:
            for entry in entries:
                for view in behind:
                    view.apply(self.db, entry)
        finally:
            self.db.buffer = None
        names = [view.name for view in behind]
        marks = ", ".join("?" * len(names))
        with self.db.transaction() as db:
            lock = "" if db.dialect == "sqlite" else " FOR UPDATE"
            now = dict(
                db.all(
                    f"SELECT view, position FROM {TRACKING} WHERE view IN ({marks}){lock}", names
                )
            )
            if any(now.get(name) != start for name in names):
                self._buffer = None  # someone else applied it: our rows are stale
                return
            db.executemany(
                f"INSERT INTO {ENTRIES} (idx, time, type, subject_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (idx) DO NOTHING",
                [(e.index, e.time, e.type, e.subject_id) for e in entries],
            )
            buffer.flush(db)
            for name in names:
                db.execute(f"UPDATE {TRACKING} SET position = ? WHERE view = ?", [end, name])

    def reset(self, names: Sequence[str] | None = None) -> list[str]:
        """Empty the named views (default: all) and set their positions to 0."""
        chosen = list(names) if names else list(self.views)
        unknown = [n for n in chosen if n not in self.views]
        if unknown:
            raise LedgerError(f"no such view: {', '.join(unknown)} (have {', '.join(self.views)})")
        with self._lock, self.db.transaction() as db:
            for name in chosen:
                for table in self.views[name].tables:
                    db.execute(f"DELETE FROM {table}")
                db.execute(f"UPDATE {TRACKING} SET position = 0 WHERE view = ?", [name])
        self._buffer = None
        return chosen

    def rebuild(
        self,
        names: Sequence[str] | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Empty the named views (default: all) and replay the log into them from index 0."""
        chosen = self.reset(names)
        # Views left out keep their position; catch_up feeds the rebuilt ones up to them.
        saved = self.views
        self.views = {n: saved[n] for n in chosen}
        try:
            return self.catch_up(progress=progress)
        finally:
            self.views = saved

    def wait_for(self, index: int, *, timeout: float = 5.0) -> int:
        """Read-your-writes: return once every view has applied entry ``index``."""
        deadline = time.monotonic() + timeout
        while True:
            position = self.catch_up()
            if position > index:
                return position
            if time.monotonic() >= deadline:
                raise ViewTimeoutError(
                    f"the read models reached index {position - 1}, not {index}, "
                    f"within {timeout:g} s; try again shortly"
                )
            time.sleep(0.02)

    def follow(self, stop: threading.Event, *, poll: float = 0.2) -> None:
        """Keep the views current until ``stop`` is set.

        On PostgreSQL the runner LISTENs on the channel the event recorder NOTIFYs on every
        insert, and polls as a fallback; on SQLite it polls.
        """
        listener = self.db.listener() if self.db.dialect == "postgresql" else None
        try:
            while not stop.is_set():
                self.catch_up()
                if listener is not None:
                    listener(poll)
                else:
                    stop.wait(poll)
        finally:
            if listener is not None:
                listener(None)

    def as_of_index(self, as_of: int | str | None) -> int:
        """The log index an answer reflects: an index, the last entry at or before a
        timestamp, or (None) the latest applied entry. -1 means "before anything"."""
        latest = self.position() - 1
        if as_of is None:
            return latest
        if isinstance(as_of, int):
            if as_of < -1:
                raise LedgerError(f"as_of index {as_of} is negative")
            return min(as_of, latest)
        found = self.db.one(f"SELECT MAX(idx) FROM {ENTRIES} WHERE time <= ?", [as_of])
        return -1 if found is None or found[0] is None else min(int(found[0]), latest)
