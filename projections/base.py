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
    "Buffer",
    "Entry",
    "View",
    "add_columns",
    "as_json",
    "close_row",
    "current_row",
    "from_json",
    "insert_row",
    "replace_row",
    "row_dict",
]

MAX_CACHED_ROWS = 200_000  # current rows a runner keeps in memory between batches
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
    """A read model: its name, its tables, and how one entry changes them."""

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


class Buffer:
    """Write-behind for one batch: view rows are kept in memory and written at the end with
    one ``executemany`` per table, so a batch costs a handful of round trips, not several
    per entry. Reads of rows written in the batch are served from here."""

    def __init__(self, *, complete: bool = False) -> None:
        # Current rows by (table, keys); kept across consecutive batches of one runner. When
        # ``complete`` (the views were empty when this cache began and it never dropped a
        # row), a key it does not hold has no current row: no need to ask the database.
        self.current: dict[tuple[str, tuple[Any, ...]], dict[str, Any] | None] = {}
        self.complete = complete
        self.pending: set[tuple[str, tuple[Any, ...]]] = set()  # current rows not yet written
        self.closes: dict[tuple[str, tuple[str, ...]], list[list[Any]]] = {}
        self.inserts: dict[str, list[dict[str, Any]]] = {}

    def flush(self, db: Db) -> None:
        for (table, columns), rows in self.closes.items():
            where = " AND ".join(f"{c} = ?" for c in columns)
            db.executemany(
                db.sql(f"UPDATE {table} SET valid_to = ? WHERE {where} AND valid_to IS NULL"),
                rows,
            )
        for table, dicts in self.inserts.items():
            by_columns: dict[tuple[str, ...], list[list[Any]]] = {}
            for row in dicts:
                by_columns.setdefault(tuple(row), []).append(list(row.values()))
            for columns, values in by_columns.items():
                db.insert_many(table, columns, values)
        self.pending.clear()
        self.closes.clear()
        self.inserts.clear()
        if len(self.current) > MAX_CACHED_ROWS:
            self.current.clear()
            self.complete = False


def insert_row(db: Db, table: str, row: Mapping[str, Any]) -> None:
    """Insert a row (buffered inside a runner batch)."""
    if db.buffer is None:
        columns = list(row)
        db.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [row[c] for c in columns],
        )
    else:
        db.buffer.inserts.setdefault(table, []).append(dict(row))


def row_dict(cursor: Any, row: Sequence[Any]) -> dict[str, Any]:
    """A fetched row as {column: value}, without the columns the database computes."""
    names = [d[0] for d in cursor.description]
    return {n: v for n, v in zip(names, row, strict=True) if n not in GENERATED_COLUMNS}


def current_row(db: Db, table: str, keys: Mapping[str, Any]) -> dict[str, Any] | None:
    """The row in force now (``valid_to IS NULL``) for ``keys``, as a dict."""
    cache_key = (table, tuple(keys.items()))
    if db.buffer is not None and cache_key in db.buffer.current:
        found = db.buffer.current[cache_key]
        return None if found is None else dict(found)
    if db.buffer is not None and db.buffer.complete:
        return None
    where = " AND ".join(f"{k} = ?" for k in keys)
    cursor = db.execute(
        f"SELECT * FROM {table} WHERE {where} AND valid_to IS NULL", list(keys.values())
    )
    row = cursor.fetchone()
    result = None if row is None else row_dict(cursor, row)
    if db.buffer is not None:
        db.buffer.current[cache_key] = result
    return None if result is None else dict(result)


def close_row(db: Db, table: str, keys: Mapping[str, Any], index: int) -> None:
    """End the current row for ``keys`` at ``index`` without a successor."""
    buffer = db.buffer
    where = " AND ".join(f"{k} = ?" for k in keys)
    if buffer is None:
        db.execute(
            f"UPDATE {table} SET valid_to = ? WHERE {where} AND valid_to IS NULL",
            [index, *keys.values()],
        )
        return
    cache_key = (table, tuple(keys.items()))
    previous = current_row(db, table, keys)
    if cache_key in buffer.pending:
        buffer.current[cache_key]["valid_to"] = index
        buffer.pending.discard(cache_key)
    elif previous is not None:
        buffer.closes.setdefault((table, tuple(keys)), []).append([index, *keys.values()])
    buffer.current[cache_key] = None


def replace_row(
    db: Db, table: str, keys: Mapping[str, Any], index: int, changes: Mapping[str, Any]
) -> None:
    """Close the current row for ``keys`` at ``index`` and insert its successor."""
    buffer = db.buffer
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
    previous = current_row(db, table, keys)
    if cache_key in buffer.pending:
        # Written earlier in this batch: close that row in place, before it is inserted.
        buffer.current[cache_key]["valid_to"] = index
    elif previous is not None:
        buffer.closes.setdefault((table, tuple(keys)), []).append([index, *keys.values()])
    row = dict(previous or {})
    row.update(keys)
    row.update(changes)
    row["valid_from"] = index
    row["valid_to"] = None
    buffer.inserts.setdefault(table, []).append(row)
    buffer.current[cache_key] = row
    buffer.pending.add(cache_key)
