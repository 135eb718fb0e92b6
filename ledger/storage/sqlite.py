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
from uuid import UUID

from eventsourcing.persistence import OperationalError, StoredEvent
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
from ledger.errors import StorageError
from ledger.integrate import pack_edge, unpack_edge
from ledger.sequencer import (
    Head,
    Publisher,
    grouped_side_rows,
    hand_over,
    refuse_revoked_writers,
    seal,
)
from ledger.storage.base import (
    CHECKPOINTS_TABLE,
    ENTRIES_TABLE,
    EVENTS_TABLE,
    HEAD_TABLE,
    NODES_TABLE,
    REVOCATIONS_TABLE,
    SIDE_TABLES,
    UnloggedEvent,
    side_table_ddl,
)
from ledger.tokens import REVOKED

_MAX_INDEX = 2**63 - 1

__all__ = [
    "SQLiteLedgerConnectionPool",
    "SQLiteLedgerDatastore",
    "SQLiteLedgerFactory",
    "SQLiteLedgerRecorder",
    "SQLiteLogReader",
]

# The ``subject.id`` of an entry, read from its bytes (NULL for bytes that are not JSON).
ENTRY_SUBJECT = (
    "(CASE WHEN json_valid(CAST(entry AS TEXT)) "
    "THEN json_extract(CAST(entry AS TEXT), '$.subject.id') END)"
)

SCHEMA = [
    f"CREATE TABLE IF NOT EXISTS {ENTRIES_TABLE} ("
    "idx INTEGER PRIMARY KEY, "
    "event_id INTEGER NOT NULL UNIQUE, "
    "entry BLOB NOT NULL, "
    "entry_hash BLOB NOT NULL, "
    "leaf_hash BLOB NOT NULL)",
    # Leaf hashes alone, in index order: a proof's or a tile's 256 leaves read from a few
    # index pages, not from 256 rows that each carry a whole entry.
    f"CREATE INDEX IF NOT EXISTS ledger_entries_leaves ON {ENTRIES_TABLE} (idx, leaf_hash)",
    # A record's entries found from the hashed entry bytes themselves, not from the event
    # rows (an insider re-pointing an event row would hide an entry from the record's list).
    f"CREATE INDEX IF NOT EXISTS ledger_entries_subject ON {ENTRIES_TABLE} ({ENTRY_SUBJECT}, idx)",
    f"CREATE TABLE IF NOT EXISTS {HEAD_TABLE} ("
    "id INTEGER PRIMARY KEY CHECK (id = 1), "
    "size INTEGER NOT NULL, "
    "head_hash BLOB NOT NULL, "
    "edge BLOB NOT NULL, "
    "key_id BLOB NOT NULL)",
    f"INSERT OR IGNORE INTO {HEAD_TABLE} VALUES (1, 0, X'{GENESIS_PREV}', X'', X'')",
    f"CREATE TABLE IF NOT EXISTS {NODES_TABLE} ("
    "level INTEGER NOT NULL, "
    "idx INTEGER NOT NULL, "
    "hash BLOB NOT NULL, "
    "PRIMARY KEY (level, idx)) WITHOUT ROWID",
    f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS_TABLE} ("
    "size INTEGER PRIMARY KEY, "
    "root BLOB NOT NULL, "
    "note TEXT NOT NULL)",
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
        self.publisher: Publisher | None = None  # signs checkpoints; set by the application

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            *SCHEMA,
            *side_table_ddl("sqlite"),
        ]

    def create_table(self) -> None:
        """Create the tables under the write lock taken first (``BEGIN IMMEDIATE``).

        eventsourcing begins deferred: its first write (the head row's INSERT OR IGNORE)
        then upgrades a read snapshot, which SQLite refuses at once ("database is locked",
        no busy wait) if another process committed meanwhile: worker processes starting
        together (``ledger serve --workers 2``) failed at startup that way.
        """
        with self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    self._create_table(cursor)
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
            except sqlite3.OperationalError as exc:
                raise OperationalError(exc) from exc

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
        c.execute(f"SELECT size, head_hash, edge, key_id FROM {HEAD_TABLE} WHERE id = 1")
        size, head_hash, edge, key_id = c.fetchone()
        # Still under the lock: a writing token revoked by a committed transaction (or
        # earlier in this batch) writes nothing, so none of its entries follows its
        # revocation. Raising here rolls the whole transaction back.
        refuse_revoked_writers(kwargs, stored_events, lambda ids: _revoked(c, ids, min(event_ids)))
        sealed = seal(
            Head(size, head_hash, unpack_edge(edge), key_id),
            stored_events,
            event_ids,
            self.publisher,
        )
        entries = sealed.entries
        c.executemany(
            f"INSERT INTO {ENTRIES_TABLE} (idx, event_id, entry, entry_hash, leaf_hash) "
            "VALUES (?,?,?,?,?)",
            [
                (e.index, e.event_id, e.entry, e.entry_hash, leaf)
                for e, leaf in zip(entries, sealed.leaf_hashes, strict=True)
            ],
        )
        if sealed.tree.nodes:
            c.executemany(
                f"INSERT INTO {NODES_TABLE} (level, idx, hash) VALUES (?,?,?)", sealed.tree.nodes
            )
        c.execute(
            f"UPDATE {HEAD_TABLE} SET size = ?, head_hash = ?, edge = ?, key_id = ? WHERE id = 1",
            (sealed.tree.size, entries[-1].entry_hash, pack_edge(sealed.tree.edge), sealed.key_id),
        )
        if sealed.checkpoint is not None:
            # Publish: the primary key refuses a second checkpoint for a size, so a stored
            # checkpoint is never replaced, and under the write lock the new one extends it.
            c.execute(
                f"INSERT INTO {CHECKPOINTS_TABLE} (size, root, note) VALUES (?,?,?)",
                (sealed.tree.size, sealed.tree.root, sealed.checkpoint),
            )
        try:
            groups = grouped_side_rows(kwargs, sealed, SIDE_TABLES)
        except ValueError as exc:
            raise StorageError(str(exc)) from None
        for table, columns, rows in groups:
            c.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})",
                rows,
            )
        hand_over(kwargs, sealed)
        return event_ids

    def replace_checkpoint_note(self, size: int, old_note: str, new_note: str) -> bool:
        """Compare-and-swap the stored note of a checkpoint (to add cosignatures)."""
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"UPDATE {CHECKPOINTS_TABLE} SET note = ? WHERE size = ? AND note = ?",
                (new_note, size, old_note),
            )
            return bool(c.sqlite_cursor.rowcount == 1)


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


def _revoked(c: SQLiteCursor, token_ids: list[str], first_event: int) -> dict[str, int | None]:
    """Which of ``token_ids`` a committed transaction revoked (by its event row, or its
    revocation row): token id → the revocation entry's index, if it has one."""
    marks = ", ".join("?" * len(token_ids))
    c.execute(
        f"SELECT s.originator_id, e.idx FROM {EVENTS_TABLE} s LEFT JOIN {ENTRIES_TABLE} e "
        f"ON e.event_id = s.rowid WHERE s.topic = '{REVOKED}' AND s.rowid < ? "
        f"AND s.originator_id IN ({marks}) "
        f"UNION ALL SELECT token_id, idx FROM {REVOCATIONS_TABLE} WHERE token_id IN ({marks})",
        (first_event, *(t.replace("-", "") for t in token_ids), *token_ids),
    )
    found: dict[str, int | None] = {}
    for token_id, index in c.fetchall():
        found.setdefault(str(_uuid_text(str(token_id))), index)
    return found


def _uuid_text(value: str | None) -> str | None:
    """SQLite keeps UUIDs as 32 hex digits; entries name them in the hyphenated form."""
    if value is None or len(value) != 32:
        return value
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


class SQLiteLogReader:
    """Reads the log straight from the SQLite file, read-only.

    With ``snapshot`` (for verification and export) every read sees one consistent state;
    without it (for serving proofs and entries) each read sees the latest commit.
    """

    def __init__(self, path: Path, *, snapshot: bool = True) -> None:
        if not path.is_file():
            raise StorageError(f"no ledger database at {path}")
        try:
            self._conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            if snapshot:
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
            f"s.topic, s.state, e.leaf_hash FROM {ENTRIES_TABLE} e LEFT JOIN {EVENTS_TABLE} s "
            f"ON s.rowid = e.event_id WHERE e.idx >= ? AND e.idx < ? ORDER BY e.idx",
            (start, _MAX_INDEX if stop is None else stop),
        )
        while batch := cursor.fetchmany(2000):
            for idx, entry, stored_hash, oid, version, topic, state, leaf in batch:
                yield idx, entry, stored_hash, _uuid_text(oid), version, topic, state, leaf

    def tile(self, level: int, index: int, width: int) -> list[bytes]:
        first = index * 256
        if level == 0:
            rows = self._conn.execute(
                f"SELECT leaf_hash FROM {ENTRIES_TABLE} WHERE idx >= ? AND idx < ? ORDER BY idx",
                (first, first + width),
            ).fetchall()
        else:
            rows = self._conn.execute(
                f"SELECT hash FROM {NODES_TABLE} WHERE level = ? AND idx >= ? AND idx < ? "
                "ORDER BY idx",
                (level, first, first + width),
            ).fetchall()
        return [bytes(r[0]) for r in rows]

    def nodes(self, start_level: int = 1) -> Iterator[tuple[int, int, bytes]]:
        cursor = self._conn.execute(
            f"SELECT level, idx, hash FROM {NODES_TABLE} WHERE level >= ? ORDER BY level, idx",
            (start_level,),
        )
        for level, idx, node in cursor:
            yield level, idx, bytes(node)

    def rotations(self) -> list[int]:
        rows = self._conn.execute(
            f"SELECT e.idx FROM {ENTRIES_TABLE} e JOIN {EVENTS_TABLE} s ON s.rowid = e.event_id "
            "WHERE s.topic = 'log.key_rotated' ORDER BY e.idx"
        ).fetchall()
        return [int(r[0]) for r in rows]

    def checkpoint(self, size: int | None = None) -> tuple[int, bytes, str] | None:
        if size is None:
            row = self._conn.execute(
                f"SELECT size, root, note FROM {CHECKPOINTS_TABLE} ORDER BY size DESC LIMIT 1"
            ).fetchone()
        else:
            row = self._conn.execute(
                f"SELECT size, root, note FROM {CHECKPOINTS_TABLE} WHERE size = ?", (size,)
            ).fetchone()
        return None if row is None else (row[0], bytes(row[1]), row[2])

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

    def subject_version(self, subject_id: str, at: int | None = None) -> int | None:
        row = self._conn.execute(
            f"SELECT MAX(s.originator_version) FROM {EVENTS_TABLE} s JOIN {ENTRIES_TABLE} e "
            "ON e.event_id = s.rowid WHERE s.originator_id = ? AND e.idx <= ?",
            (subject_id.replace("-", "").lower(), _MAX_INDEX if at is None else at),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def subject_indexes(self, subject_id: str, stop: int, limit: int, after: int = -1) -> list[int]:
        try:
            uid = str(UUID(subject_id))
        except ValueError:
            return []
        rows = self._conn.execute(
            f"SELECT idx FROM {ENTRIES_TABLE} WHERE {ENTRY_SUBJECT} = ? AND idx > ? AND idx < ? "
            "ORDER BY idx LIMIT ?",
            (uid, after, stop, limit),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def close(self) -> None:
        self._conn.close()
