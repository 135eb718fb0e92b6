"""Reads the tables beside the log in the log reader's own snapshot, for ``ledger verify``.

Side rows are written in the same transaction as their entry, so reading both in one
snapshot never sees a row whose entry is not yet visible (or the reverse): any such row is
damage, not a race. Everything streams: rows in chunks, documents one at a time (on
PostgreSQL their SHA-256 is computed by the server).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

from ledger.storage.base import (
    CHECKPOINTS_TABLE,
    DOCUMENTS_TABLE,
    ENTRIES_TABLE,
    EVENTS_TABLE,
    LogReader,
)

__all__ = ["BesideReader"]

_CHUNK = 1000


class BesideReader:
    """Side-table rows and the entries they name, in the snapshot of ``reader``."""

    def __init__(self, reader: LogReader) -> None:
        from ledger.storage.postgres import PostgresLogReader
        from ledger.storage.sqlite import SQLiteLogReader

        if isinstance(reader, PostgresLogReader):
            self._pg = True
            self._schema: str = reader._schema
        elif isinstance(reader, SQLiteLogReader):
            self._pg = False
            self._schema = "main"
        else:
            raise TypeError(f"no side tables for a {type(reader).__name__}")
        self._conn: Any = reader._conn
        self._columns: dict[str, list[str]] = {}

    def _t(self, table: str) -> str:
        # Names are this package's constants and the configured schema (an identifier).
        return f'"{self._schema}"."{table}"' if self._pg else table

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self._pg else statement

    def columns(self, table: str) -> list[str]:
        """The table's columns ([] when the store has no such table: made before it)."""
        if table not in self._columns:
            if self._pg:
                rows = self._conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                    (self._schema, table),
                ).fetchall()
                self._columns[table] = [str(r[0]) for r in rows]
            else:
                rows = self._conn.execute(f"PRAGMA table_info({table})").fetchall()
                self._columns[table] = [str(r[1]) for r in rows]
        return self._columns[table]

    def rows(
        self, table: str, columns: Sequence[str], order: Sequence[str]
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Every row of ``table`` (those columns), ordered, in chunks (keyset pagination)."""
        if not self.columns(table):
            return
        cols = ", ".join(columns)
        keys = ", ".join(order)
        positions = [list(columns).index(k) for k in order]
        after: tuple[Any, ...] | None = None
        while True:
            where = ""
            params: tuple[Any, ...] = ()
            if after is not None:
                where = f"WHERE ({keys}) > ({', '.join('?' * len(order))}) "
                params = after
            chunk = self._conn.execute(
                self._sql(f"SELECT {cols} FROM {self._t(table)} {where}ORDER BY {keys} LIMIT ?"),
                (*params, _CHUNK),
            ).fetchall()
            if not chunk:
                return
            found = [tuple(r) for r in chunk]
            yield found
            after = tuple(found[-1][p] for p in positions)

    def lookup(
        self, table: str, columns: Sequence[str], key: str, values: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        """Rows of ``table`` whose ``key`` is one of ``values``."""
        if not values or not self.columns(table):
            return []
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(values), _CHUNK):
            chunk = list(values[start : start + _CHUNK])
            marks = ", ".join("?" * len(chunk))
            rows = self._conn.execute(
                self._sql(
                    f"SELECT {', '.join(columns)} FROM {self._t(table)} WHERE {key} IN ({marks})"
                ),
                tuple(chunk),
            ).fetchall()
            found += [tuple(r) for r in rows]
        return found

    def entries_at(self, indexes: Sequence[int]) -> dict[int, bytes]:
        """The stored bytes of the entries at ``indexes`` (absent ones are left out)."""
        rows = self.lookup(ENTRIES_TABLE, ("idx", "entry"), "idx", sorted(set(indexes)))
        return {int(idx): bytes(entry) for idx, entry in rows}

    def entries_of_types(
        self, types: Sequence[str], *, containing: bytes | None = None
    ) -> Iterator[list[tuple[int, bytes]]]:
        """(index, bytes) of every entry whose event row has one of ``types`` (and whose
        bytes contain ``containing``), by index, in chunks. (``ledger verify`` has checked
        each event row's topic against its entry.)"""
        key = "notification_id" if self._pg else "rowid"
        marks = ", ".join("?" * len(types))
        having: tuple[Any, ...] = ()
        filtered = ""
        if containing is not None:
            filtered = (
                "AND position(? IN e.entry) > 0 " if self._pg else "AND instr(e.entry, ?) > 0 "
            )
            having = (containing,)
        # One query, streamed (a server-side cursor on PostgreSQL): the event rows have no
        # index by topic, so paging by index would scan them once per page.
        query = self._sql(
            f"SELECT e.idx, e.entry FROM {self._t(ENTRIES_TABLE)} e "
            f"JOIN {self._t(EVENTS_TABLE)} s ON s.{key} = e.event_id "
            f"WHERE s.topic IN ({marks}) {filtered}ORDER BY e.idx"
        )
        params = (*types, *having)
        if self._pg:
            with self._conn.cursor(name="ledger_beside") as cursor:
                cursor.itersize = _CHUNK
                cursor.execute(query, params)
                while rows := cursor.fetchmany(_CHUNK):
                    yield [(int(idx), bytes(entry)) for idx, entry in rows]
            return
        cursor = self._conn.execute(query, params)
        while rows := cursor.fetchmany(_CHUNK):
            yield [(int(idx), bytes(entry)) for idx, entry in rows]

    def documents(self) -> Iterator[tuple[str, int, str, int]]:
        """(name, recorded size, SHA-256 of the stored bytes, their length) of every stored
        document, one at a time."""
        if not self.columns(DOCUMENTS_TABLE):
            return
        after = ""
        table = self._t(DOCUMENTS_TABLE)
        while True:
            if self._pg:
                rows = self._conn.execute(
                    f"SELECT sha256, size, encode(sha256(content), 'hex'), length(content) "
                    f"FROM {table} WHERE sha256 > %s ORDER BY sha256 LIMIT %s",
                    (after, _CHUNK),
                ).fetchall()
                if not rows:
                    return
                for name, size, digest, length in rows:
                    yield str(name), int(size), str(digest), int(length)
                after = str(rows[-1][0])
                continue
            names = self._conn.execute(
                f"SELECT sha256 FROM {table} WHERE sha256 > ? ORDER BY sha256 LIMIT ?",
                (after, _CHUNK),
            ).fetchall()
            if not names:
                return
            for (name,) in names:  # one document's bytes in memory at a time
                size, content = self._conn.execute(
                    f"SELECT size, content FROM {table} WHERE sha256 = ?", (name,)
                ).fetchone()
                data = bytes(content)
                yield str(name), int(size), hashlib.sha256(data).hexdigest(), len(data)
            after = str(names[-1][0])

    def document(self, sha256: str) -> bytes | None:
        """A stored document's bytes."""
        if not self.columns(DOCUMENTS_TABLE):
            return None
        row = self._conn.execute(
            self._sql(f"SELECT content FROM {self._t(DOCUMENTS_TABLE)} WHERE sha256 = ?"),
            (sha256,),
        ).fetchone()
        return None if row is None else bytes(row[0])

    def sealing_sizes(self, indexes: Sequence[int]) -> dict[int, int]:
        """``sealing_size`` of each of ``indexes`` (one round trip on PostgreSQL)."""
        wanted = sorted(set(indexes))
        if not self._pg:
            found = {i: self.sealing_size(i) for i in wanted}
            return {i: size for i, size in found.items() if size is not None}
        rows = self._conn.execute(
            f"SELECT i, (SELECT MIN(size) FROM {self._t(CHECKPOINTS_TABLE)} WHERE size > i) "
            "FROM unnest(%s::bigint[]) AS i",
            (wanted,),
        ).fetchall()
        return {int(i): int(size) for i, size in rows if size is not None}

    def batch_starts(self, indexes: Sequence[int]) -> dict[int, int]:
        """For each of ``indexes``: the size of the last checkpoint at or before it, i.e. the
        index of the first entry of the transaction that committed it (0 if none)."""
        found: dict[int, int] = {}
        for index in sorted(set(indexes)):
            row = self._conn.execute(
                self._sql(f"SELECT MAX(size) FROM {self._t(CHECKPOINTS_TABLE)} WHERE size <= ?"),
                (index,),
            ).fetchone()
            found[index] = 0 if row is None or row[0] is None else int(row[0])
        return found

    def sealing_size(self, index: int) -> int | None:
        """The size of the first checkpoint past ``index``: the tree of the transaction that
        committed that entry (every write transaction stores one)."""
        row = self._conn.execute(
            self._sql(f"SELECT MIN(size) FROM {self._t(CHECKPOINTS_TABLE)} WHERE size > ?"),
            (index,),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def entries_starting_with(
        self, prefixes: Sequence[bytes], after: int
    ) -> Iterator[list[tuple[int, bytes]]]:
        """(index, bytes) of every entry past ``after`` whose bytes begin with one of
        ``prefixes``, by index, in chunks: one streaming pass, filtered in the database by a
        comparison of each entry's first bytes (the same cost however many prefixes)."""
        if not prefixes:
            return
        by_length: dict[int, list[bytes]] = {}
        for prefix in prefixes:
            by_length.setdefault(len(prefix), []).append(prefix)
        cut = "substring(e.entry from 1 for {n})" if self._pg else "substr(e.entry, 1, {n})"
        where = " OR ".join(
            f"{cut.format(n=int(n))} IN ({', '.join('?' * len(group))})"
            for n, group in sorted(by_length.items())
        )
        wanted = [p for _, group in sorted(by_length.items()) for p in group]
        while True:
            rows = self._conn.execute(
                self._sql(
                    f"SELECT e.idx, e.entry FROM {self._t(ENTRIES_TABLE)} e "
                    f"WHERE e.idx > ? AND ({where}) ORDER BY e.idx LIMIT ?"
                ),
                (after, *wanted, _CHUNK),
            ).fetchall()
            if not rows:
                return
            chunk = [(int(idx), bytes(entry)) for idx, entry in rows]
            yield chunk
            after = chunk[-1][0]
