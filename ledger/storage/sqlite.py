"""SQLite store: eventsourcing's SQLite recorder extended with the chained log.

WAL journal with ``synchronous=FULL`` on every connection: a commit is on disk before
``insert_events`` returns, so a receipt is never handed out for an entry a power cut could
lose.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
)

from ledger.chain import EventRow, LogHead, LogRow
from ledger.encoding import GENESIS_PREV
from ledger.envelope import SequencedEntry, sequence_entries
from ledger.errors import StorageError
from ledger.storage.base import ENTRIES_TABLE, EVENTS_TABLE, HEAD_TABLE, UnloggedEvent

_MAX_INDEX = 2**63 - 1

__all__ = [
    "SQLiteLedgerFactory",
    "SQLiteLedgerRecorder",
    "SQLiteLogReader",
]

SCHEMA = [
    f"CREATE TABLE IF NOT EXISTS {ENTRIES_TABLE} ("
    "idx INTEGER PRIMARY KEY, "
    "event_id INTEGER NOT NULL UNIQUE, "
    "entry BLOB NOT NULL, "
    "entry_hash BLOB NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {HEAD_TABLE} ("
    "id INTEGER PRIMARY KEY CHECK (id = 1), "
    "size INTEGER NOT NULL, "
    "head_hash BLOB NOT NULL)",
    f"INSERT OR IGNORE INTO {HEAD_TABLE} VALUES (1, 0, X'{GENESIS_PREV}')",
]


class SQLiteLedgerConnectionPool(SQLiteConnectionPool):
    """Connections with ``synchronous=FULL`` (eventsourcing leaves SQLite's default)."""

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        connection.cursor().execute("PRAGMA synchronous=FULL")
        return connection


class SQLiteLedgerDatastore(SQLiteDatastore):
    def __init__(self, db_name: str, *, lock_timeout: int | None = None) -> None:
        super().__init__(db_name, lock_timeout=lock_timeout)
        self.pool = SQLiteLedgerConnectionPool(db_name=db_name, lock_timeout=lock_timeout)


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    """Inserts event rows and sequences their entries in one transaction."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = EVENTS_TABLE):
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *SCHEMA]

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> Sequence[int] | None:
        event_ids = super()._insert_events(c, stored_events)
        assert event_ids is not None
        # Sequence. The INSERT above took SQLite's single write lock (the transaction began
        # deferred, so its first write is what locks, on the newest snapshot); every other
        # writer, in this process or another, now waits until we commit or roll back. So
        # the head read here is the true head, and index order is commit order. The entries
        # and the new head commit with the event rows or not at all: a crash anywhere before
        # COMMIT leaves none of them, after COMMIT all of them.
        c.execute(f"SELECT size, head_hash FROM {HEAD_TABLE} WHERE id = 1")
        size, head_hash = c.fetchone()
        entries = sequence_entries(size, head_hash, stored_events, event_ids)
        c.executemany(
            f"INSERT INTO {ENTRIES_TABLE} (idx, event_id, entry, entry_hash) VALUES (?,?,?,?)",
            [(e.index, e.event_id, e.entry, e.entry_hash) for e in entries],
        )
        c.execute(
            f"UPDATE {HEAD_TABLE} SET size = ?, head_hash = ? WHERE id = 1",
            (size + len(entries), entries[-1].entry_hash),
        )
        _hand_over(kwargs, entries)
        return event_ids


def _hand_over(kwargs: dict[str, Any], entries: list[SequencedEntry]) -> None:
    """Give the sequenced entries to the caller that asked for them (for receipts)."""
    sink = kwargs.get("sequenced")
    if sink is not None:
        sink[:] = entries  # replace, so a retried transaction never leaves stale entries


class SQLiteLedgerFactory(SQLiteFactory):
    """eventsourcing factory that builds the ledger's datastore and recorder."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        db_name = str(self.env.get(self.SQLITE_DBNAME))
        lock_timeout = int(self.env.get(self.SQLITE_LOCK_TIMEOUT) or 30)
        self.datastore.close()
        self.datastore = SQLiteLedgerDatastore(db_name, lock_timeout=lock_timeout)

    def application_recorder(self) -> SQLiteLedgerRecorder:
        recorder = SQLiteLedgerRecorder(self.datastore)
        if self.env_create_table():
            recorder.create_table()
        return recorder


def _uuid_text(value: str | None) -> str | None:
    """SQLite keeps UUIDs as 32 hex digits; entries name them in the hyphenated form."""
    if value is None or len(value) != 32:
        return value
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


class SQLiteLogReader:
    """Reads the log straight from the SQLite file, read-only, in one snapshot."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise StorageError(f"no ledger database at {path}")
        try:
            self._conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("BEGIN")  # one snapshot for the whole read
            self._conn.execute(f"SELECT size FROM {HEAD_TABLE} LIMIT 1").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot read ledger database {path}: {exc}") from exc

    def head(self) -> LogHead | None:
        row = self._conn.execute(
            f"SELECT size, head_hash FROM {HEAD_TABLE} WHERE id = 1"
        ).fetchone()
        return None if row is None else LogHead(row[0], bytes(row[1]))

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[LogRow]:
        cursor = self._conn.execute(
            f"SELECT e.idx, e.entry, e.entry_hash, s.originator_id, s.originator_version, "
            f"s.topic, s.state FROM {ENTRIES_TABLE} e LEFT JOIN {EVENTS_TABLE} s "
            f"ON s.rowid = e.event_id WHERE e.idx >= ? AND e.idx < ? ORDER BY e.idx",
            (start, _MAX_INDEX if stop is None else stop),
        )
        while batch := cursor.fetchmany(2000):
            for idx, entry, stored_hash, oid, version, topic, state in batch:
                yield idx, entry, stored_hash, _uuid_text(oid), version, topic, state

    def extent(self) -> int:
        row = self._conn.execute(f"SELECT MAX(idx) FROM {ENTRIES_TABLE}").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def entries(self, start: int, stop: int) -> list[bytes]:
        rows = self._conn.execute(
            f"SELECT entry FROM {ENTRIES_TABLE} WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, stop),
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def first_unlogged_event(self) -> UnloggedEvent | None:
        row = self._conn.execute(
            f"SELECT s.rowid, s.originator_id, s.originator_version, s.topic, s.state "
            f"FROM {EVENTS_TABLE} s WHERE NOT EXISTS "
            f"(SELECT 1 FROM {ENTRIES_TABLE} e WHERE e.event_id = s.rowid) "
            f"ORDER BY s.rowid LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return row[0], EventRow(str(_uuid_text(row[1])), row[2], row[3], row[4])

    def close(self) -> None:
        self._conn.close()
