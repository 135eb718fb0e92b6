"""The runner: follows the log and keeps every read model current.

It reads entries by index (the log's own dense order, not eventsourcing's notification ids)
and applies a batch of them to the views' write-behind buffer, outside any transaction; then,
in one transaction, it checks that the views' tracking positions are still at the batch's
start, writes the buffered rows and moves the positions. A crash anywhere leaves each view
either before or after the whole batch: nothing is applied twice, nothing skipped. Several
runners may race (one per API process): the loser of a batch drops its rows and moves on.
A rebuild may split the views across processes (``rebuild(workers=2)``): the same race,
between runners of disjoint views.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

import orjson

from ledger.errors import LedgerError
from ledger.settings import Settings
from ledger.storage import LogReader
from projections import all_views
from projections.base import MAX_CACHED_ROWS, Buffer, Entry, View, clear_tables
from projections.db import Db

__all__ = ["Runner", "ViewTimeoutError"]

_log = logging.getLogger("ledger.projections")

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


def _reads(view: View, entry_type: str) -> bool:
    """Whether ``view`` reads entries of ``entry_type``: a view may name the type prefixes
    it reads (``topics``); one that does not is given every entry."""
    topics: tuple[str, ...] | None = getattr(view, "topics", None)
    return topics is None or entry_type.startswith(topics)


def _index_entries(db: Db, entries: Sequence[Entry]) -> None:
    """Add the batch's entries to the entry index (time, type, subject of every index).

    The index is dense from 0 (every batch adds all its entries, and positions only move
    by batches from 0), so only entries past its end are new: a rebuild, which replays
    entries indexed long ago, writes nothing here. A runner for other views racing this one
    may add the same entries: those are skipped (ON CONFLICT), never doubled."""
    found = db.one(f"SELECT MAX(idx) FROM {ENTRIES}")
    last = -1 if found is None or found[0] is None else int(found[0])
    new = [e for e in entries if e.index > last]
    if not new:
        return
    if db.dialect == "sqlite":
        db.executemany(
            f"INSERT INTO {ENTRIES} (idx, time, type, subject_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (idx) DO NOTHING",
            [(e.index, e.time, e.type, e.subject_id) for e in new],
        )
        return
    # PostgreSQL: one statement over arrays, not one pipelined statement per entry.
    db.execute(
        f"INSERT INTO {ENTRIES} (idx, time, type, subject_id) "
        "SELECT * FROM unnest((?)::bigint[], (?)::text[], (?)::text[], (?)::text[]) "
        "ON CONFLICT (idx) DO NOTHING",
        [
            [e.index for e in new],
            [e.time for e in new],
            [e.type for e in new],
            [e.subject_id for e in new],
        ],
    )


PARALLEL_MIN_ENTRIES = 20_000
"""The smallest log a rebuild splits across processes (starting one costs a fraction of a
second)."""

# Relative cost of replaying each view, to balance the groups of a parallel rebuild.
_WEIGHTS = {"proposals": 4.0, "search": 3.0}


def _catch_up_in_worker(settings: Settings, names: list[str], batch: int) -> int:
    """A rebuild's worker process: catch the named (standard) views up, from its own
    connections; return their position."""
    from ledger.storage import open_reader
    from projections.db import connect_views

    db = connect_views(settings)
    log = open_reader(settings, snapshot=False)
    try:
        views = [view for view in all_views() if view.name in names]
        return Runner(db, log, views, batch=batch).catch_up()
    finally:
        db.close()
        log.close()


class Runner:
    """Feeds ``views`` in ``db`` from the log that ``log`` reads."""

    def __init__(
        self,
        db: Db,
        log: LogReader,
        views: Sequence[View],
        *,
        batch: int = 5000,
        settings: Settings | None = None,
        cache_rows: int = MAX_CACHED_ROWS,
    ):
        self.db = db
        self.log = log
        self.views = {view.name: view for view in views}
        self.batch = batch
        # Where db and log live: lets ``rebuild`` replay some views in a second process.
        self.settings = settings
        self._lock = threading.Lock()
        # Write-behind buffer and row cache, valid while this runner applies consecutive
        # batches (another runner applying in between makes it stale: then it is dropped).
        self._buffer: Buffer | None = None
        self._buffer_end = -1
        self._buffer_views: frozenset[str] = frozenset()
        # Rows kept between batches: many for a rebuild, few for a long-running follower
        # (whose memory must stay flat), with a tenth as many evicted keys remembered.
        self.cache_rows = cache_rows

    def setup(self, *, lock: bool = True) -> None:
        """Create tracking, the entry index and every view's tables (idempotent).

        ``lock`` False: the tables are a private scratch copy (``projections.check``)."""
        with self.db.transaction() as db:
            if db.dialect == "postgresql" and lock:
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
        # The cache serves only the views it was built for (it is complete for their tables
        # alone), and only for the batch after the one it last saw.
        names_behind = frozenset(view.name for view in behind)
        consecutive = (
            self._buffer is not None
            and self._buffer_end == start
            and self._buffer_views == names_behind
        )
        if not consecutive:
            self._buffer = Buffer(
                complete=start == 0,
                max_rows=self.cache_rows,
                max_evicted=max(10 * self.cache_rows, 1000),
            )
            self._buffer_views = names_behind
        buffer = self._buffer
        assert buffer is not None
        self.db.buffer = buffer
        routes: dict[str, list[View]] = {}  # entry type -> the views that read it
        db = self.db
        try:
            for entry in entries:
                chosen = routes.get(entry.type)
                if chosen is None:
                    chosen = routes[entry.type] = [v for v in behind if _reads(v, entry.type)]
                for view in chosen:
                    view.apply(db, entry)
        finally:
            self.db.buffer = None
        names = [view.name for view in behind]
        marks = ", ".join("?" * len(names))
        with self.db.transaction() as db:
            if db.dialect == "postgresql":
                # Views are derived data: a server crash may lose the last batches committed
                # (never part of one: views and tracking roll back together, and the runner
                # applies them again), so their commits need not wait for the WAL flush, as
                # with SQLite's synchronous=NORMAL. The log's own commits still wait.
                db.execute("SET LOCAL synchronous_commit = off")
            lock = "" if db.dialect == "sqlite" else " FOR UPDATE"
            now = dict(
                db.all(
                    f"SELECT view, position FROM {TRACKING} WHERE view IN ({marks}){lock}", names
                )
            )
            if any(now.get(name) != start for name in names):
                self._buffer = None  # someone else applied it: our rows are stale
                return
            _index_entries(db, entries)
            buffer.flush(db)
            for view in behind:
                finish = getattr(view, "finish_batch", None)
                if finish is not None:
                    finish(db, start, end)
            for name in names:
                db.execute(f"UPDATE {TRACKING} SET position = ? WHERE view = ?", [end, name])

    def reset(self, names: Sequence[str] | None = None) -> list[str]:
        """Empty the named views (default: all) and set their positions to 0."""
        chosen = list(names) if names else list(self.views)
        unknown = [n for n in chosen if n not in self.views]
        if unknown:
            raise LedgerError(f"no such view: {', '.join(unknown)} (have {', '.join(self.views)})")
        with self._lock, self.db.transaction() as db:
            if db.dialect == "postgresql":
                # Lock the tracking rows first, as every batch does, then empty the tables.
                marks = ", ".join("?" * len(chosen))
                db.execute(
                    f"SELECT position FROM {TRACKING} WHERE view IN ({marks}) FOR UPDATE", chosen
                )
            for name in chosen:
                view = self.views[name]
                clear = getattr(view, "clear", None)
                if clear is not None:
                    clear(db)
                else:
                    clear_tables(db, view.tables)
                db.execute(f"UPDATE {TRACKING} SET position = 0 WHERE view = ?", [name])
        self._buffer = None
        return chosen

    def rebuild(
        self,
        names: Sequence[str] | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
        workers: int = 1,
    ) -> int:
        """Empty the named views (default: all) and replay the log into them from index 0.

        With ``workers`` > 1, ``settings`` (see the constructor) and a log of at least
        :data:`PARALLEL_MIN_ENTRIES` entries, that many processes replay disjoint groups of
        the views at once (see :meth:`plan`): views are independent (each reads and writes
        only its own tables), each keeps its own tracking row, and each batch of each view
        commits alone, exactly as when runners race; so the rows are those of a one-process
        rebuild, and a crash anywhere leaves every view at a batch boundary, for the next
        ``catch_up`` to continue. It pays only where CPUs are idle."""
        chosen = self.reset(names)
        # Views left out keep their position; catch_up feeds the rebuilt ones up to them.
        saved = self.views
        self.views = {n: saved[n] for n in chosen}
        try:
            groups = self.plan(workers)
            if len(groups) > 1:
                self._rebuild_in_parallel(groups, progress)
            return self.catch_up(progress=progress)
        finally:
            self.views = saved
            self._buffer = None  # built for the rebuilt views alone

    def plan(self, workers: int) -> list[list[str]]:
        """How ``rebuild`` would split the views for ``workers`` processes: one group of
        view names per process (a single group: no split), balanced by the views' usual
        cost. It splits only with ``settings``, a log of :data:`PARALLEL_MIN_ENTRIES`
        entries or more, and views a worker process can make anew (the standard ones)."""
        names = list(self.views)
        if workers < 2 or self.settings is None or len(names) < 2:
            return [names]
        head = self.log.head()
        if head is None or head.size < PARALLEL_MIN_ENTRIES:
            return [names]
        standard = {view.name: type(view) for view in all_views()}
        if any(standard.get(name) is not type(view) for name, view in self.views.items()):
            return [names]  # a worker process can only make the standard views anew
        groups: list[list[str]] = [[] for _ in range(min(workers, len(names)))]
        loads = [0.0] * len(groups)
        for name in sorted(names, key=lambda n: (-_WEIGHTS.get(n, 1.0), n)):
            lightest = loads.index(min(loads))
            groups[lightest].append(name)
            loads[lightest] += _WEIGHTS.get(name, 1.0)
        return [g for g in groups if g]

    def _rebuild_in_parallel(
        self, groups: list[list[str]], progress: Callable[[int, int], None] | None
    ) -> None:
        """Catch the first group up here and every other group in a process of its own."""
        assert self.settings is not None
        context = multiprocessing.get_context("spawn")  # no fork of open connections
        with ProcessPoolExecutor(max_workers=len(groups) - 1, mp_context=context) as pool:
            others = [
                pool.submit(_catch_up_in_worker, self.settings, group, self.batch)
                for group in groups[1:]
            ]
            saved = self.views
            self.views = {n: saved[n] for n in groups[0]}
            try:
                self.catch_up(progress=progress)
            finally:
                self.views = saved
                self._buffer = None
            for other in others:
                try:
                    other.result()
                except Exception:  # its views are where it stopped: catch_up finishes them
                    _log.warning(
                        "a rebuild worker failed; continuing in this process", exc_info=True
                    )

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
