"""``ledger verify`` for the read models: every view table equals a rebuild from the log.

The views are rebuilt into a scratch copy (a scratch SQLite file beside the store, with the
store's file attached read-only; on PostgreSQL a scratch schema), all on one connection in
one transaction, so the live tables are read in one snapshot, taken before the rebuild
starts. Each view is rebuilt up to its own tracking position in that snapshot, then its
tables are compared with the live ones by ``EXCEPT`` both ways, in the database (memory
stays flat); the first differing row by primary key is named with the entry it derives
from. The transaction is never committed: on PostgreSQL the scratch schema vanishes with
its rollback (also on an interrupt or a lost connection); on SQLite the scratch file is
deleted with its temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ledger.chain import DamageKind
from ledger.errors import StorageError
from ledger.settings import Settings
from ledger.storage import open_reader
from ledger.storage.base import HEAD_TABLE
from ledger.verify_side import BesideReport, Finding, Lag
from projections import all_views
from projections.base import GENERATED_COLUMNS, View
from projections.db import Db
from projections.runner import ENTRIES, TRACKING, Runner
from projections.search import _FTS_SQLITE, _PER_ENTRY, FTS

__all__ = ["SCRATCH_PREFIX", "check_read_models"]

CHECK_CACHE_ROWS = 20_000  # current rows the scratch rebuild keeps between batches

SCRATCH_PREFIX = ".verify-scratch-"
RUNNER = "runner"  # the "view" named for the runner's own entry index, pv_entries

Progress = Callable[[int, int], None]


class _ScratchDb(Db):
    """The scratch views' Db: every runner transaction is part of the one outer transaction
    (never committed), so the live tables stay in the snapshot it began with."""

    @contextmanager
    def transaction(self) -> Iterator[Db]:
        yield self


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Side:
    """Names and catalogue queries for one dialect: ``live`` and ``scratch`` qualifiers."""

    def __init__(self, db: Db, live: str, scratch: str) -> None:
        self.db = db
        self.live = live
        self.scratch = scratch

    def columns(self, schema: str, table: str) -> list[str]:
        if self.db.dialect == "sqlite":
            rows = self.db.all(f"PRAGMA {_q(schema)}.table_info({_q(table)})")
            return [str(r[1]) for r in rows]
        rows = self.db.all(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, table],
        )
        return [str(r[0]) for r in rows]

    def key(self, table: str) -> list[str]:
        """The scratch table's primary-key columns, in key order."""
        if self.db.dialect == "sqlite":
            rows = self.db.all(f"PRAGMA {_q(self.scratch)}.table_info({_q(table)})")
            return [str(r[1]) for r in sorted(rows, key=lambda r: r[5]) if r[5] > 0]
        rows = self.db.all(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = (?)::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)",
            [f"{_q(self.scratch)}.{_q(table)}"],
        )
        return [str(r[0]) for r in rows]


def _derived_from(columns: Sequence[str], row: Sequence[Any], table: str) -> int | None:
    """The index of the entry a row derives from: the one that made it true."""
    if table == FTS:
        return int(row[0]) // _PER_ENTRY
    names = list(columns)
    for name in ("valid_from", "idx", *(c for c in names if c.endswith("_index"))):
        if name in names and row[names.index(name)] is not None:
            return int(row[names.index(name)])
    return None


def _show(columns: Sequence[str], row: Sequence[Any], limit: int = 60) -> str:
    parts = []
    for name, value in zip(columns, row, strict=True):
        text = repr(value)
        parts.append(f"{name}={text if len(text) <= limit else text[:limit] + '…'}")
    return ", ".join(parts)


def _compare(
    side: _Side, view: str, table: str, *, where: str = "", fts: bool = False
) -> Finding | None:
    """The first row by key in which the live table and the scratch rebuild differ."""
    db = side.db
    if fts:
        columns, key = ["rowid", "title", "body"], ["rowid"]
    else:
        columns = [c for c in side.columns(side.scratch, table) if c not in GENERATED_COLUMNS]
        have = set(side.columns(side.live, table))
        if not have:
            return Finding(
                DamageKind.READ_MODEL_MISMATCH, table, "-", "the table is gone", None, view
            )
        lacking = [c for c in columns if c not in have]
        if lacking:
            return Finding(
                DamageKind.READ_MODEL_MISMATCH,
                table,
                "-",
                f"the table lacks column(s) {', '.join(lacking)}",
                None,
                view,
            )
        key = side.key(table) or columns
    cols = ", ".join(_q(c) if c != "rowid" else c for c in columns)
    order = ", ".join(_q(c) if c != "rowid" else c for c in key)
    live = f"{_q(side.live)}.{_q(table)}"
    scratch = f"{_q(side.scratch)}.{_q(table)}"
    cond = f" WHERE {where}" if where else ""

    positions = [columns.index(k) for k in key]
    if db.dialect == "postgresql":
        # One hash full join on the key: each table is read once, no sort of whole tables
        # (only the differing rows are ordered).
        names = [_q(c) for c in columns]
        on = " AND ".join(f"l.{_q(k)} = s.{_q(k)}" for k in key)
        by = ", ".join(f"COALESCE(l.{_q(k)}, s.{_q(k)})" for k in key)
        found = db.one(
            f"SELECT {', '.join(f'l.{n}' for n in names)}, {', '.join(f's.{n}' for n in names)} "
            f"FROM (SELECT {cols} FROM {live}{cond}) l FULL JOIN "
            f"(SELECT {cols} FROM {scratch}{cond}) s ON {on} "
            f"WHERE ROW({', '.join(f'l.{n}' for n in names)}) IS DISTINCT FROM "
            f"ROW({', '.join(f's.{n}' for n in names)}) ORDER BY {by} LIMIT 1"
        )
        if found is None:
            return None
        left, right = found[: len(columns)], found[len(columns) :]
        extra = None if left[positions[0]] is None else left
        missing = None if right[positions[0]] is None else right
    else:

        def first(a: str, b: str) -> tuple[Any, ...] | None:
            return db.one(
                f"SELECT {cols} FROM {a}{cond} EXCEPT SELECT {cols} FROM {b}{cond} "
                f"ORDER BY {order} LIMIT 1"
            )

        extra, missing = first(live, scratch), first(scratch, live)
        if extra is None and missing is None:
            return None

    def key_of(row: tuple[Any, ...]) -> tuple[str, ...]:
        return tuple(repr(row[p]) for p in positions)

    if extra is not None and missing is not None and key_of(extra) == key_of(missing):
        changed = [
            f"{name} is {_short(a)} in the stored view, a rebuild gives {_short(b)}"
            for name, a, b in zip(columns, extra, missing, strict=True)
            if a != b
        ]
        row, detail = extra, "; ".join(changed)
    elif extra is not None and (
        missing is None or _sort_key(extra, positions) <= _sort_key(missing, positions)
    ):
        row, detail = extra, f"a row a rebuild does not make: {_show(columns, extra)}"
    else:
        assert missing is not None
        row, detail = missing, f"a row a rebuild makes is missing: {_show(columns, missing)}"
    keyed = ", ".join(f"{k}={row[p]!r}" for k, p in zip(key, positions, strict=True))
    return Finding(
        DamageKind.READ_MODEL_MISMATCH,
        table,
        keyed,
        detail,
        _derived_from(columns, row, table),
        view,
    )


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _sort_key(row: tuple[Any, ...], positions: list[int]) -> tuple[tuple[int, Any], ...]:
    """Key values in a comparable form (numbers before text, as the databases order)."""
    out = []
    for p in positions:
        value = row[p]
        out.append((0, value) if isinstance(value, int) else (1, str(value)))
    return tuple(out)


def _tables_of(view: View, dialect: str) -> list[tuple[str, bool]]:
    tables = [(t, False) for t in view.tables]
    if view.name == "search" and dialect == "sqlite":
        tables.append((FTS, True))
    return tables


def _lighten(db: Db, scratch: str) -> None:
    """PostgreSQL: make the scratch tables cheap to fill. They are never committed, so they
    need no write-ahead log; the indexes and computed columns that only serve queries (the
    full-text vector, which is not compared: it is computed from columns that are) go."""
    for (name,) in db.all(
        "SELECT indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ? AND NOT i.indisunique AND NOT i.indisprimary",
        [scratch],
    ):
        db.execute(f"DROP INDEX {name}")
    for table, column in db.all(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND is_generated = 'ALWAYS'",
        [scratch],
    ):
        db.execute(f"ALTER TABLE {_q(scratch)}.{_q(str(table))} DROP COLUMN {_q(str(column))}")
    for (table,) in db.all("SELECT tablename FROM pg_tables WHERE schemaname = ?", [scratch]):
        db.execute(f"ALTER TABLE {_q(scratch)}.{_q(str(table))} SET UNLOGGED")


_FTS_SHADOWS = {  # FTS5's own tables behind pv_search_fts, and their columns
    "data": "id, block",
    "idx": "segid, term, pgno",
    "content": "id, c0, c1",
    "docsize": "id, sz",
    "config": "k, v",
}
_FTS_COPY = "verify_fts_copy"


def _fts_damage(db: Db, live: str, scratch: str) -> Finding | None:
    """SQLite: the live full-text index is the index of its own text. Its text is compared
    with the rebuild's; its index is copied byte for byte into a scratch FTS5 table of the
    expected definition (the live file is read-only here) and FTS5's integrity-check
    re-tokenises the text against it: an index emptied while the text was put back (search
    finds nothing, the text compares equal), or built with another tokenizer, fails it."""
    try:
        db.execute(_FTS_SQLITE.replace(FTS, f"{_q(scratch)}.{_FTS_COPY}"))
        for shadow, columns in _FTS_SHADOWS.items():
            copy = f"{_q(scratch)}.{_FTS_COPY}_{shadow}"
            db.execute(f"DELETE FROM {copy}")
            db.execute(
                f"INSERT INTO {copy} ({columns}) SELECT {columns} FROM {_q(live)}.{FTS}_{shadow}"
            )
    except sqlite3.Error as exc:
        return Finding(DamageKind.SEARCH_INDEX_MISMATCH, FTS, "-",
                       f"its tables are not those of the expected FTS5 index: {exc}", None,
                       "search")  # fmt: skip
    try:
        db.execute(f"INSERT INTO {_q(scratch)}.{_FTS_COPY}({_FTS_COPY}) VALUES ('integrity-check')")
    except sqlite3.Error as exc:
        return Finding(
            DamageKind.SEARCH_INDEX_MISMATCH,
            FTS,
            "-",
            f"the full-text index is not the index of its text (FTS5 integrity-check: {exc}): "
            "searches do not find what the documents say",
            None,
            "search",
        )
    return None


def _generated(db: Db, schema: str) -> dict[tuple[str, str], str | None]:
    """PostgreSQL: (table, column) -> expression of each column named in GENERATED_COLUMNS
    (None: a plain column, its values written by anyone)."""
    rows = db.all(
        "SELECT c.relname, a.attname, CASE WHEN a.attgenerated = 's' "
        "THEN pg_get_expr(d.adbin, d.adrelid) END FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE n.nspname = ? AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind = 'r'",
        [schema],
    )
    return {(str(t), str(c)): e for t, c, e in rows if str(c) in GENERATED_COLUMNS}


def _generated_damage(
    expected: dict[tuple[str, str], str | None], found: dict[tuple[str, str], str | None],
    views: list[View],
) -> list[Finding]:  # fmt: skip
    """PostgreSQL: each computed column (the search vector) is still computed by the
    database with the expression a rebuild's table has: then its values are that
    expression's (it is not compared row by row). A column whose expression was dropped
    holds whatever was written into it."""
    owner = {t: v.name for v in views for t in v.tables}
    damage = []
    for (table, column), want in sorted(expected.items()):
        if table not in owner or want is None:
            continue
        got = found.get((table, column))
        if got == want:
            continue
        detail = (
            f"column {column} is gone" if (table, column) not in found
            else f"column {column} is no longer computed by the database: its values are "
            "whatever was written into it" if got is None
            else f"column {column} is computed by {got}, a rebuild's by {want}"
        )  # fmt: skip
        damage.append(Finding(DamageKind.SEARCH_INDEX_MISMATCH, table, f"column={column}",
                              detail + "; searches do not find what the documents say", None,
                              owner[table]))  # fmt: skip
    return damage


def _log_size(db: Db, live: str) -> int | None:
    """The log's size in the live snapshot."""
    row = db.one(f"SELECT size FROM {_q(live)}.{_q(HEAD_TABLE)} WHERE id = 1")
    return None if row is None else int(row[0])


def _live_positions(db: Db, live: str) -> dict[str, int] | None:
    """Each built view's tracking position in the live snapshot (None: never set up)."""
    side = _Side(db, live, live)
    if not side.columns(live, TRACKING):
        return None
    rows = db.all(f"SELECT view, position FROM {_q(live)}.{_q(TRACKING)}")
    return {str(name): int(pos) for name, pos in rows}


def _check(
    db: Db,
    live: str,
    scratch: str,
    settings: Settings,
    views: list[View],
    progress: Progress | None,
) -> BesideReport:
    report = BesideReport()
    positions = _live_positions(db, live)  # the first read: it fixes the live snapshot
    if positions is None:
        report.not_built = [view.name for view in views]
        return report
    side = _Side(db, live, scratch)
    built: list[View] = []
    for view in views:
        tables = [t for t, fts in _tables_of(view, db.dialect) if not fts]
        if view.name not in positions or not all(side.columns(live, t) for t in tables):
            report.not_built.append(view.name)
        else:
            built.append(view)
    if not built:
        return report
    size = _log_size(db, live)
    for view in built:
        if size is not None and positions[view.name] < size:
            report.lagging.append(Lag(view.name, positions[view.name], size))
    log = open_reader(settings, snapshot=False)
    # A bounded row cache keeps the check's memory flat whatever the log's size (a rebuild
    # keeps up to MAX_CACHED_ROWS, whose footprint grows with the log up to that many).
    runner = Runner(db, log, built, cache_rows=CHECK_CACHE_ROWS)
    try:
        runner.setup(lock=False)
        if db.dialect == "postgresql":
            for damage in _generated_damage(_generated(db, scratch), _generated(db, live), built):
                report.add(damage)
            _lighten(db, scratch)
        total = max(positions[v.name] for v in built)
        for target in sorted({positions[v.name] for v in built}):
            runner.views = {v.name: v for v in built if positions[v.name] >= target}
            runner.catch_up(
                stop=target,
                progress=None if progress is None else (lambda done, _: progress(done, total)),
            )
            reached = runner.position()
            for view in built:
                if positions[view.name] != target:
                    continue
                if reached < target:
                    report.add(
                        Finding(
                            DamageKind.READ_MODEL_MISMATCH,
                            TRACKING,
                            f"view={view.name!r}",
                            f"the view says it applied {target} entries; the log has {reached}",
                            reached,
                            view.name,
                        )
                    )
                    continue
                for table, fts in _tables_of(view, db.dialect):
                    finding = _compare(side, view.name, table, fts=fts)
                    report.checked.append(table)
                    if finding is not None:
                        report.add(finding)
        # The runner's entry index (time, type, subject of each index), as far as the
        # furthest view.
        finding = _compare(side, RUNNER, ENTRIES, where=f"idx < {int(total)}")
        report.checked.append(ENTRIES)
        if finding is not None:
            report.add(finding)
        if db.dialect == "sqlite" and any(v.name == "search" for v in built):
            # Last: a failed integrity-check is the last statement of the transaction.
            finding = _fts_damage(db, live, scratch)
            if finding is not None:
                report.add(finding)
    finally:
        runner.views = {}
        log.close()
    return report


def _driver_errors() -> tuple[type[Exception], ...]:
    import psycopg

    return (sqlite3.Error, psycopg.Error)


def check_read_models(
    settings: Settings,
    *,
    views: list[View] | None = None,
    progress: Progress | None = None,
) -> BesideReport:
    """Compare every built read model with a rebuild from the log; the store is unchanged."""
    started = time.perf_counter()
    chosen = views if views is not None else all_views()
    try:
        if settings.database_url:
            report = _check_postgresql(settings, chosen, progress)
        else:
            report = _check_sqlite(settings, chosen, progress)
    except StorageError:
        raise
    except _driver_errors() as exc:
        raise StorageError(f"cannot compare the read models: {exc}") from exc
    report.seconds = time.perf_counter() - started
    return report


def _check_sqlite(settings: Settings, views: list[View], progress: Progress | None) -> BesideReport:
    path = settings.sqlite_path
    # Beside the store (same disk, same size class); in the system's temporary directory
    # when the store's directory is read-only (a copy on read-only media, say).
    near = path.parent if os.access(path.parent, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=near) as scratch_dir:
        conn = sqlite3.connect(
            f"file:{quote(str(Path(scratch_dir) / 'views.sqlite'))}",
            isolation_level=None,
            check_same_thread=False,
            uri=True,
        )
        try:
            # Scratch data: no journal, no syncs; the store's file is attached read-only.
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA cache_size=-65536")
            conn.execute("ATTACH DATABASE ? AS live", (f"file:{quote(str(path))}?mode=ro",))
            # One transaction for everything: the live file is read in one snapshot (from
            # the first read of its tracking), while the scratch tables fill up.
            conn.execute("BEGIN")
            try:
                return _check(_ScratchDb(conn, "sqlite"), "live", "main", settings, views,
                              progress)  # fmt: skip
            finally:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
        finally:
            conn.close()


def _check_postgresql(
    settings: Settings, views: list[View], progress: Progress | None
) -> BesideReport:
    import psycopg

    scratch = f"ledger_verify_{uuid.uuid4().hex[:12]}"
    conn = psycopg.connect(
        str(settings.database_url),
        autocommit=True,
        options=f"-c search_path={scratch}",
        connect_timeout=10,
    )
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        # Never committed: the scratch schema and everything in it go with the rollback.
        with conn.transaction() as tx:
            conn.execute("SET LOCAL synchronous_commit = off")
            conn.execute("SET LOCAL work_mem = '64MB'")  # the comparisons' hash joins
            positions_first = _ScratchDb(conn, "postgresql")
            # The snapshot is taken by the first query that reads data: the live tracking.
            _live_positions(positions_first, settings.pg_schema)
            conn.execute(f"CREATE SCHEMA {_q(scratch)}")
            report = _check(positions_first, settings.pg_schema, scratch, settings, views, progress)
            raise psycopg.Rollback(tx)
    finally:
        conn.close()
    return report
