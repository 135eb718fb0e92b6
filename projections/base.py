"""What every read model is: tables in the views' database, fed one entry at a time.

Rows of a read model are versioned by log index: ``valid_from`` is the index of the entry
that made a row true, ``valid_to`` the index that replaced it (NULL while current). So the
state "as of index k" is the rows with ``valid_from <= k`` and no ``valid_to <= k`` — the
same rows a rebuild of entries 0..k would leave — and needs no replay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson

from projections.db import Db

__all__ = [
    "CURRENT",
    "GENERATED_COLUMNS",
    "MAX_CACHED_ROWS",
    "MAX_EVICTED",
    "Buffer",
    "Entry",
    "View",
    "Writes",
    "add_columns",
    "as_json",
    "clear_tables",
    "close_row",
    "current_field",
    "current_row",
    "from_json",
    "insert_row",
    "replace_row",
    "row_dict",
]

MAX_CACHED_ROWS = 200_000  # current rows a runner keeps in memory between batches
MAX_EVICTED = 2_000_000  # keys (hashes, ~60 bytes each) an evicting cache remembers
GENERATED_COLUMNS = frozenset({"tsv"})  # computed by the database: never copied or written

# Filter for rows in force at index ? (pass the index twice).
CURRENT = "valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"


class Entry:
    """A log entry as the read models see it (parsed once by the runner; a plain slotted
    object, because a rebuild makes millions of them)."""

    __slots__ = ("actor", "data", "index", "subject_id", "subject_version", "time", "type")

    index: int
    type: str
    subject_id: str
    subject_version: int
    time: str
    actor: dict[str, str]
    data: dict[str, Any]

    def __init__(
        self,
        index: int,
        type: str,
        subject_id: str,
        subject_version: int,
        time: str,
        actor: dict[str, str],
        data: dict[str, Any],
    ) -> None:
        self.index = index
        self.type = type
        self.subject_id = subject_id
        self.subject_version = subject_version
        self.time = time
        self.actor = actor
        self.data = data


class View(Protocol):
    """A read model: its name, its tables, and how one entry changes them.

    A view may also have (the runner looks for them):

    * ``topics``: a tuple of the entry type prefixes it reads; the runner then hands it
      only entries of those types (without it, every entry);
    * ``clear(db)``: empties it, in the reset's transaction (without it: DELETE, or on
      PostgreSQL TRUNCATE, of each of its ``tables``);
    * ``finish_batch(db, start, end)``: called in each batch's transaction, after the
      batch's rows are written (entries ``start`` to ``end``, exclusive).

    A view reads and writes only its own tables: so views can be rebuilt independently
    (and in parallel processes).
    """

    @property
    def name(self) -> str:
        """Its name, for tracking and ``ledger projections``."""

    @property
    def tables(self) -> Sequence[str]:
        """Its tables, emptied by a rebuild."""

    def create(self, db: Db) -> None:
        """Create its tables and indexes if they do not exist."""

    def apply(self, db: Db, entry: Entry) -> None:
        """Apply one entry (ignore types it does not read)."""


def add_columns(db: Db, table: str, columns: Mapping[str, str]) -> None:
    """Add ``columns`` (name → SQL type) that a table created by an older release lacks.

    Rows written before hold NULL there; a rebuild fills them in."""
    if db.dialect == "sqlite":
        have = {r[1] for r in db.all(f"PRAGMA table_info({table})")}
        for name, sql_type in columns.items():
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")
    else:
        for name, sql_type in columns.items():
            db.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {sql_type}")


def as_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def from_json(text: str | bytes | None) -> Any:
    return None if text is None else orjson.loads(text)


class Writes:
    """The rows one batch writes: closes (``valid_to`` of rows written before the batch)
    and inserts, by table, in the order the views made them."""

    __slots__ = ("closes", "inserts")

    def __init__(self) -> None:
        self.closes: dict[tuple[str, tuple[str, ...]], list[list[Any]]] = {}
        self.inserts: dict[str, list[dict[str, Any]]] = {}

    def write(self, db: Db) -> None:
        """Write them: one ``executemany`` per table and key columns for the closes, one
        ``insert_many`` per table and list of columns for the inserts."""
        for (table, keys), closes in self.closes.items():
            where = " AND ".join(f"{k} = ?" for k in keys)
            db.executemany(
                db.sql(f"UPDATE {table} SET valid_to = ? WHERE {where} AND valid_to IS NULL"),
                closes,
            )
        for table, dicts in self.inserts.items():
            # Rows made from scratch may lack columns that rows copied from a predecessor
            # have: one insert per column list (consecutive rows mostly share one).
            groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
            last: tuple[str, ...] = ()
            values: list[tuple[Any, ...]] = []
            for row in dicts:
                columns = tuple(row)
                if columns != last:
                    values = groups.setdefault(columns, [])
                    last = columns
                values.append(tuple(row.values()))
            for columns, rows in groups.items():
                db.insert_many(table, columns, rows)


class Buffer:
    """Write-behind for a runner: view rows are kept in memory and written at the end of
    each batch with one ``executemany`` (or ``COPY``) per table, so a batch costs a handful
    of round trips, not several per entry. Reads of rows written earlier are served from
    here (the row cache), across the consecutive batches of one runner."""

    def __init__(
        self,
        *,
        complete: bool = False,
        max_rows: int = MAX_CACHED_ROWS,
        max_evicted: int = MAX_EVICTED,
    ) -> None:
        self.max_rows = max_rows
        self.max_evicted = max_evicted
        # Current rows by (table, keys); kept across consecutive batches of one runner. When
        # ``complete`` (the views were empty when this cache began), a key it does not hold
        # has no current row, unless its row was evicted (``evicted`` holds the hashes of
        # those keys): only then is the database asked.
        self.current: dict[tuple[str, tuple[Any, ...]], dict[str, Any] | None] = {}
        self.complete = complete
        self.evicted: set[int] = set()
        self.pending: set[tuple[str, tuple[Any, ...]]] = set()  # current rows not yet written
        self.writes = Writes()

    @property
    def closes(self) -> dict[tuple[str, tuple[str, ...]], list[list[Any]]]:
        return self.writes.closes

    @property
    def inserts(self) -> dict[str, list[dict[str, Any]]]:
        return self.writes.inserts

    def take(self) -> Writes:
        """The batch's writes, detached: the next batch starts with none pending (its rows
        close these by UPDATE, never in place). Evicts the cache if it grew too large."""
        writes = self.writes
        self.writes = Writes()
        self.pending.clear()
        if len(self.current) > self.max_rows:
            self.evict()
        return writes

    def evict(self) -> None:
        """Drop the cached rows. A complete cache stays complete by remembering which keys
        it dropped (by hash: a collision only costs a query); past :data:`MAX_EVICTED` of
        them it stops being complete and asks the database about every key it lacks."""
        if self.complete:
            self.evicted.update(hash(key) for key, row in self.current.items() if row is not None)
            if len(self.evicted) > self.max_evicted:
                self.evicted.clear()
                self.complete = False
        self.current.clear()

    def flush(self, db: Db) -> None:
        """Write the batch's rows (inside the caller's transaction)."""
        self.take().write(db)


def clear_tables(db: Db, tables: Sequence[str]) -> None:
    """Empty ``tables`` inside the caller's transaction: DELETE on SQLite (which truncates a
    table without triggers at once), one TRUNCATE on PostgreSQL (no row-by-row delete, no
    dead rows left for VACUUM). Callers hold the views' tracking rows locked first."""
    if not tables:
        return
    if db.dialect == "sqlite":
        for table in tables:
            db.execute(f"DELETE FROM {table}")
    else:
        db.execute(f"TRUNCATE {', '.join(tables)}")


def insert_row(db: Db, table: str, row: Mapping[str, Any]) -> None:
    """Insert a row (buffered inside a runner batch)."""
    if db.buffer is None:
        columns = list(row)
        db.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [row[c] for c in columns],
        )
    else:
        db.buffer.writes.inserts.setdefault(table, []).append(dict(row))


def row_dict(cursor: Any, row: Sequence[Any]) -> dict[str, Any]:
    """A fetched row as {column: value}, without the columns the database computes."""
    names = [d[0] for d in cursor.description]
    return {n: v for n, v in zip(names, row, strict=True) if n not in GENERATED_COLUMNS}


def _cached(
    db: Db, buffer: Buffer, table: str, keys: Mapping[str, Any], cache_key: Any
) -> dict[str, Any] | None:
    """The current row for ``keys`` from the cache, or the database (then cached); the
    caller must not change the dict it gets."""
    current = buffer.current
    if cache_key in current:
        return current[cache_key]
    if buffer.complete and hash(cache_key) not in buffer.evicted:
        return None
    result = _select_current(db, table, keys)
    current[cache_key] = result
    return result


def _select_current(db: Db, table: str, keys: Mapping[str, Any]) -> dict[str, Any] | None:
    where = " AND ".join(f"{k} = ?" for k in keys)
    cursor = db.execute(
        f"SELECT * FROM {table} WHERE {where} AND valid_to IS NULL", list(keys.values())
    )
    row = cursor.fetchone()
    return None if row is None else row_dict(cursor, row)


def current_row(db: Db, table: str, keys: Mapping[str, Any]) -> dict[str, Any] | None:
    """The row in force now (``valid_to IS NULL``) for ``keys``, as a dict."""
    buffer: Buffer | None = db.buffer
    if buffer is None:
        return _select_current(db, table, keys)
    found = _cached(db, buffer, table, keys, (table, tuple(keys.items())))
    return None if found is None else dict(found)


def current_field(db: Db, table: str, keys: Mapping[str, Any], column: str) -> Any:
    """One column of the row in force now for ``keys`` (None without such a row): as
    :func:`current_row`, without copying the row."""
    buffer: Buffer | None = db.buffer
    if buffer is None:
        found = _select_current(db, table, keys)
    else:
        found = _cached(db, buffer, table, keys, (table, tuple(keys.items())))
    return None if found is None else found[column]


def close_row(db: Db, table: str, keys: Mapping[str, Any], index: int) -> None:
    """End the current row for ``keys`` at ``index`` without a successor."""
    buffer: Buffer | None = db.buffer
    if buffer is None:
        where = " AND ".join(f"{k} = ?" for k in keys)
        db.execute(
            f"UPDATE {table} SET valid_to = ? WHERE {where} AND valid_to IS NULL",
            [index, *keys.values()],
        )
        return
    cache_key = (table, tuple(keys.items()))
    previous = _cached(db, buffer, table, keys, cache_key)
    if cache_key in buffer.pending:
        # Written earlier in this batch: close that row in place, before it is inserted.
        buffer.current[cache_key]["valid_to"] = index  # type: ignore[index]
        buffer.pending.discard(cache_key)
    elif previous is not None:
        buffer.writes.closes.setdefault((table, tuple(keys)), []).append([index, *keys.values()])
    buffer.current[cache_key] = None


def replace_row(
    db: Db, table: str, keys: Mapping[str, Any], index: int, changes: Mapping[str, Any]
) -> None:
    """Close the current row for ``keys`` at ``index`` and insert its successor."""
    buffer: Buffer | None = db.buffer
    if buffer is None:
        row = current_row(db, table, keys) or {}
        where = " AND ".join(f"{k} = ?" for k in keys)
        db.execute(
            f"UPDATE {table} SET valid_to = ? WHERE {where} AND valid_to IS NULL",
            [index, *keys.values()],
        )
        row.update(keys)
        row.update(changes)
        row["valid_from"] = index
        row["valid_to"] = None
        insert_row(db, table, row)
        return
    cache_key = (table, tuple(keys.items()))
    previous = _cached(db, buffer, table, keys, cache_key)
    if previous is None:
        row = dict(keys)
    else:
        if cache_key in buffer.pending:
            # Written earlier in this batch: close that row in place, before it is inserted.
            previous["valid_to"] = index
        else:
            buffer.writes.closes.setdefault((table, tuple(keys)), []).append(
                [index, *keys.values()]
            )
        row = dict(previous)
        row.update(keys)
    row.update(changes)
    row["valid_from"] = index
    row["valid_to"] = None
    buffer.writes.inserts.setdefault(table, []).append(row)
    buffer.current[cache_key] = row
    buffer.pending.add(cache_key)
