"""PostgreSQL store: eventsourcing's PostgreSQL recorder extended with the chained log.

Never enable eventsourcing's ``POSTGRES_ENABLE_DB_FUNCTIONS``: its insert function skips
the table lock below, and with it the guarantee that index order is commit order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import retry
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Literal

from ledger.chain import EventRow, LogHead, LogRow
from ledger.encoding import GENESIS_PREV
from ledger.errors import StorageError
from ledger.integrate import pack_edge, unpack_edge
from ledger.sequencer import (
    Head,
    Publisher,
    Sealed,
    grouped_side_rows,
    hand_over,
    refuse_revoked_writers,
    seal,
    writing_tokens,
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

__all__ = [
    "COPY_THRESHOLD",
    "PostgresLedgerFactory",
    "PostgresLedgerRecorder",
    "PostgresLogReader",
    "env_from_url",
]


def env_from_url(url: str) -> dict[str, str]:
    """eventsourcing's POSTGRES_* settings from a ``postgresql://`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise StorageError(f"database URL must start with postgresql:// (got {parts.scheme!r})")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
    }


# Batches of at least this many events are written with COPY (``_insert_by_copy``).
COPY_THRESHOLD = 64


def _head(row: DictRow | None) -> Head:
    """The head row read under the write lock, as the sequencer takes it."""
    if row is None:
        raise StorageError("the ledger_head row is missing: run `ledger migrate`")
    return Head(
        row["size"], bytes(row["head_hash"]), unpack_edge(bytes(row["edge"])), bytes(row["key_id"])
    )


# The ``subject.id`` of an entry, read from its bytes. A canonical entry's keys are sorted,
# so it ends ``"prev":"<64 hex>","subject":{"id":"<uuid>",…},"time":…,"type":…}``: the last
# ``"prev":"`` in it is its own (nothing after it holds one), and is found in its last 512
# bytes (the tail is under 320 bytes). NULL for other bytes. Only built-in immutable
# functions, so nothing an insider could redefine; about 20 µs an entry, against ~150 µs for
# an anchored regular expression.
_TAIL = "encode(substring(entry from greatest(length(entry) - 511, 1)), 'escape')"
_PREV = f'(length({_TAIL}) - strpos(reverse({_TAIL}), \'":"verp"\') - 6)'
ENTRY_SUBJECT = SQL(
    f'(CASE WHEN strpos(reverse({_TAIL}), \'":"verp"\') > 0 '
    f'AND substring({_TAIL} from {_PREV} + 72 for 19) = \'","subject":{{"id":"\' '
    f"THEN substring({_TAIL} from {_PREV} + 91 for 36) END)"
)


def _schema_statements(schema: str) -> list[Composed]:
    def table(name: str) -> Composed:
        return SQL("{}.{}").format(Identifier(schema), Identifier(name))

    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {t} ("
            "idx bigint PRIMARY KEY, "
            "event_id bigint NOT NULL UNIQUE, "
            "entry bytea NOT NULL, "
            "entry_hash bytea NOT NULL, "
            "leaf_hash bytea NOT NULL)"
        ).format(t=table(ENTRIES_TABLE)),
        # Leaf hashes alone, in index order (index-only scans): a proof's or a tile's 256
        # leaves come from a few index pages, not from 256 heap rows of whole entries.
        SQL(
            "CREATE INDEX IF NOT EXISTS ledger_entries_leaves ON {t} (idx) INCLUDE (leaf_hash)"
        ).format(t=table(ENTRIES_TABLE)),
        # A record's entries found from the hashed entry bytes themselves, not from the event
        # rows (an insider re-pointing an event row would hide an entry from the record's list).
        SQL("CREATE INDEX IF NOT EXISTS ledger_entries_subject ON {t} ({s}, idx)").format(
            t=table(ENTRIES_TABLE), s=ENTRY_SUBJECT
        ),
        SQL(
            "CREATE TABLE IF NOT EXISTS {t} ("
            "id int PRIMARY KEY CHECK (id = 1), "
            "size bigint NOT NULL, "
            "head_hash bytea NOT NULL, "
            "edge bytea NOT NULL, "
            "key_id bytea NOT NULL)"
        ).format(t=table(HEAD_TABLE)),
        SQL(
            "INSERT INTO {t} VALUES (1, 0, '\\x{zeros}'::bytea, ''::bytea, ''::bytea) "
            "ON CONFLICT DO NOTHING"
        ).format(t=table(HEAD_TABLE), zeros=SQL(GENESIS_PREV)),
        SQL(
            "CREATE TABLE IF NOT EXISTS {t} ("
            "level int NOT NULL, idx bigint NOT NULL, hash bytea NOT NULL, "
            "PRIMARY KEY (level, idx))"
        ).format(t=table(NODES_TABLE)),
        SQL(
            "CREATE TABLE IF NOT EXISTS {t} ("
            "size bigint PRIMARY KEY, root bytea NOT NULL, note text NOT NULL)"
        ).format(t=table(CHECKPOINTS_TABLE)),
        *(
            SQL(ddl.replace(f"EXISTS {name} (", "EXISTS {} (")).format(table(name))
            for ddl, name in zip(side_table_ddl("postgresql"), SIDE_TABLES, strict=True)
        ),
    ]


def _revocations(
    curs: psycopg.Cursor[DictRow],
    own: Sequence[int],
    query: Composed | None = None,
    token_ids: list[str] | None = None,
) -> dict[str, int | None]:
    """The writing tokens a committed transaction revoked (by its event row, or its
    revocation row): token id → the revocation entry's index, if it has one. Runs
    ``query`` first if given; revocation events of this batch (``own``) do not count."""
    if query is not None:
        curs.execute(query, (token_ids, token_ids))
    mine = set(own)
    found: dict[str, int | None] = {}
    for row in curs.fetchall():
        if row["own"] is None or row["own"] not in mine:
            found.setdefault(str(row["token_id"]), row["idx"])
    return found


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    """Inserts event rows and sequences their entries in one transaction."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = EVENTS_TABLE):
        if datastore.enable_db_functions:
            raise StorageError(
                "POSTGRES_ENABLE_DB_FUNCTIONS must stay off: it drops the ordering lock"
            )
        super().__init__(datastore, events_table_name=events_table_name)
        self.sql_create_statements.extend(_schema_statements(datastore.schema))
        schema = Identifier(datastore.schema)
        self._select_head = SQL(
            "SELECT size, head_hash, edge, key_id FROM {s}.{t} WHERE id = 1"
        ).format(s=schema, t=Identifier(HEAD_TABLE))
        self._insert_entry = SQL(
            "INSERT INTO {s}.{t} (idx, event_id, entry, entry_hash, leaf_hash) "
            "VALUES (%s, %s, %s, %s, %s)"
        ).format(s=schema, t=Identifier(ENTRIES_TABLE))
        self._insert_node = SQL(
            "INSERT INTO {s}.{t} (level, idx, hash) VALUES (%s, %s, %s)"
        ).format(s=schema, t=Identifier(NODES_TABLE))
        self._insert_checkpoint = SQL(
            "INSERT INTO {s}.{t} (size, root, note) VALUES (%s, %s, %s)"
        ).format(s=schema, t=Identifier(CHECKPOINTS_TABLE))
        self._allocate_ids = SQL(
            "SELECT nextval({seq}::regclass) AS id FROM generate_series(1, %s) ORDER BY 1"
        ).format(seq=Literal(f"{datastore.schema}.{events_table_name}_notification_id_seq"))
        self._copy_events = SQL(
            "COPY {s}.{t} (originator_id, originator_version, topic, state, notification_id) "
            "FROM STDIN (FORMAT BINARY)"
        ).format(s=schema, t=Identifier(events_table_name))
        self._copy_entries = SQL(
            "COPY {s}.{t} (idx, event_id, entry, entry_hash, leaf_hash) FROM STDIN (FORMAT BINARY)"
        ).format(s=schema, t=Identifier(ENTRIES_TABLE))
        self.publisher: Publisher | None = None  # signs checkpoints; set by the application
        self._update_head = SQL(
            "UPDATE {s}.{t} SET size = %s, head_hash = %s, edge = %s, key_id = %s WHERE id = 1"
        ).format(s=schema, t=Identifier(HEAD_TABLE))
        self._select_revoked = SQL(
            "SELECT s.originator_id::text AS token_id, e.idx AS idx, s.notification_id AS own "
            "FROM {s}.{v} s LEFT JOIN {s}.{e} e ON e.event_id = s.notification_id "
            "WHERE s.topic = {topic} AND s.originator_id = ANY(%s::uuid[]) "
            "UNION ALL SELECT token_id, idx, NULL FROM {s}.{r} WHERE token_id = ANY(%s)"
        ).format(
            s=schema,
            v=Identifier(events_table_name),
            e=Identifier(ENTRIES_TABLE),
            r=Identifier(REVOCATIONS_TABLE),
            topic=Literal(REVOKED),
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert the event rows and seal their entries, tree and checkpoint: one transaction.

        This is eventsourcing's pipelined insert with sequencing added, and with one change:
        an error raised while sealing leaves the transaction by raising, so it rolls back.
        (eventsourcing 9.5.6 catches exceptions from its hooks *inside*
        ``conn.transaction()`` and re-raises them after the block, which would commit the
        event rows without their entries. A refused seal, a stale key say, writes nothing.)
        """
        if not stored_events:
            return []
        if len(stored_events) >= COPY_THRESHOLD:
            return self._insert_by_copy(stored_events, **kwargs)
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.pipeline() as pipeline,
            conn.cursor() as curs,
            conn.cursor() as head_cursor,
            conn.cursor() as check_cursor,
        ):
            # eventsourcing's: "LOCK TABLE ledger_events IN EXCLUSIVE MODE", NOTIFY, INSERT.
            self._insert_stored_events(curs, stored_events, **kwargs)
            # Queued behind the lock too (no round trip of its own): the writing tokens'
            # revocations, checked below before anything is sealed.
            writers = writing_tokens(kwargs)
            if writers:
                check_cursor.execute(self._select_revoked, (writers, writers))
            # Sequence. The head read is queued behind the lock, in the same round trip.
            # Every other writer, on any host, now waits for our COMMIT or ROLLBACK before
            # it can insert, so this is the latest committed head, and the dense index
            # (unlike notification_id, a sequence that may skip after a rollback) continues
            # it exactly. Entries, tree, head and checkpoint commit with the event rows or
            # not at all; a crash before COMMIT leaves nothing.
            head_cursor.execute(self._select_head, prepare=True)
            pipeline.sync()
            event_ids = self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
            assert event_ids is not None
            stored_head = _head(head_cursor.fetchone())
            # Still under the lock: a writing token revoked by a committed transaction (or
            # earlier in this batch) writes nothing; raising rolls the transaction back.
            refuse_revoked_writers(
                kwargs, stored_events, lambda _: _revocations(check_cursor, event_ids)
            )
            sealed = seal(stored_head, stored_events, event_ids, self.publisher)
            self._write_sealed(curs, sealed)
            self._write_side_rows(curs, sealed, kwargs)
        hand_over(kwargs, sealed)
        return event_ids

    def _insert_by_copy(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> list[int]:
        """A large batch (bulk import, a big group commit): the same transaction, with COPY.

        Same lock, same order, same rows as the pipelined insert above, but the event rows
        and entries are streamed with binary COPY (pipeline mode cannot COPY), which costs
        a fraction of per-row statements. The events' notification ids are taken from
        their sequence under the table lock, in order, so they stay increasing in commit
        order exactly as eventsourcing's own insert makes them.
        """
        count = len(stored_events)
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._lock_table(curs)
            self._notify_channel(curs)
            curs.execute(self._select_head, prepare=True)
            stored_head = _head(curs.fetchone())
            curs.execute(self._allocate_ids, (count,))
            event_ids = [row["id"] for row in curs.fetchall()]
            with curs.copy(self._copy_events) as copy:
                copy.set_types(["uuid", "int8", "text", "bytea", "int8"])
                for stored, event_id in zip(stored_events, event_ids, strict=True):
                    copy.write_row(
                        (
                            stored.originator_id,
                            stored.originator_version,
                            stored.topic,
                            stored.state,
                            event_id,
                        )
                    )
            refuse_revoked_writers(
                kwargs,
                stored_events,
                lambda ids: _revocations(curs, event_ids, self._select_revoked, ids),
            )
            sealed = seal(stored_head, stored_events, event_ids, self.publisher)
            self._write_sealed(curs, sealed, copy=True)
            self._write_side_rows(curs, sealed, kwargs, copy=True)
        hand_over(kwargs, sealed)
        return event_ids

    def _write_side_rows(
        self,
        curs: psycopg.Cursor[DictRow],
        sealed: Sealed,
        kwargs: dict[str, Any],
        *,
        copy: bool = False,
    ) -> None:
        try:
            groups = grouped_side_rows(kwargs, sealed, SIDE_TABLES)
        except ValueError as exc:
            raise StorageError(str(exc)) from None
        for table, columns, rows in groups:
            statement = SQL("INSERT INTO {}.{} ({}) VALUES ({})").format(
                Identifier(self.datastore.schema),
                Identifier(table),
                SQL(", ").join(Identifier(k) for k in columns),
                SQL(", ").join(SQL("%s") for _ in columns),
            )
            if copy and len(rows) >= COPY_THRESHOLD:
                command = SQL("COPY {}.{} ({}) FROM STDIN").format(
                    Identifier(self.datastore.schema),
                    Identifier(table),
                    SQL(", ").join(Identifier(k) for k in columns),
                )
                with curs.copy(command) as stream:
                    for row in rows:
                        stream.write_row(row)
            elif len(rows) == 1:
                curs.execute(statement, rows[0])
            else:
                curs.executemany(statement, rows)

    def _write_sealed(
        self, curs: psycopg.Cursor[DictRow], sealed: Sealed, *, copy: bool = False
    ) -> None:
        entries = sealed.entries
        if copy:
            with curs.copy(self._copy_entries) as stream:
                stream.set_types(["int8", "int8", "bytea", "bytea", "bytea"])
                for e, leaf in zip(entries, sealed.leaf_hashes, strict=True):
                    stream.write_row((e.index, e.event_id, e.entry, e.entry_hash, leaf))
        else:
            self._insert_entries(curs, sealed)
        self._write_tree(curs, sealed)

    def _insert_entries(self, curs: psycopg.Cursor[DictRow], sealed: Sealed) -> None:
        entries = sealed.entries
        curs.executemany(
            self._insert_entry,
            [
                (e.index, e.event_id, e.entry, e.entry_hash, leaf)
                for e, leaf in zip(entries, sealed.leaf_hashes, strict=True)
            ],
        )

    def _write_tree(self, curs: psycopg.Cursor[DictRow], sealed: Sealed) -> None:
        entries = sealed.entries
        if sealed.tree.nodes:
            curs.executemany(self._insert_node, sealed.tree.nodes)
        curs.execute(
            self._update_head,
            (
                sealed.tree.size,
                entries[-1].entry_hash,
                pack_edge(sealed.tree.edge),
                sealed.key_id,
            ),
        )
        if sealed.checkpoint is not None:
            # Publish: the primary key refuses a second checkpoint for a size, so a stored
            # checkpoint is never replaced, and under the lock the new one extends it.
            curs.execute(
                self._insert_checkpoint, (sealed.tree.size, sealed.tree.root, sealed.checkpoint)
            )

    def replace_checkpoint_note(self, size: int, old_note: str, new_note: str) -> bool:
        """Compare-and-swap the stored note of a checkpoint (to add cosignatures)."""
        statement = SQL("UPDATE {s}.{t} SET note = %s WHERE size = %s AND note = %s").format(
            s=Identifier(self.datastore.schema), t=Identifier(CHECKPOINTS_TABLE)
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (new_note, size, old_note))
            return curs.rowcount == 1


class PostgresLedgerFactory(PostgresFactory):
    """eventsourcing factory that builds the ledger's recorder."""

    application_recorder_class = PostgresLedgerRecorder

    def application_recorder(self) -> PostgresLedgerRecorder:
        recorder = PostgresLedgerRecorder(self.datastore)
        if self.env_create_table():
            recorder.create_table()
        return recorder


class PostgresLogReader:
    """Reads the log from PostgreSQL in one REPEATABLE READ snapshot, streaming."""

    def __init__(self, url: str, *, schema: str = "public", snapshot: bool = True) -> None:
        self._schema = schema
        try:
            self._conn = psycopg.connect(url, connect_timeout=5, autocommit=not snapshot)
            if snapshot:
                self._conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            self._conn.read_only = True
            self._conn.execute(self._sql("SELECT size FROM {h} LIMIT 1")).fetchone()
        except psycopg.Error as exc:
            raise StorageError(f"cannot read the ledger in PostgreSQL: {_first_line(exc)}") from exc

    @property
    def closed(self) -> bool:
        """The connection was lost (the server restarted, say): open a new reader."""
        return bool(self._conn.closed)

    def _sql(self, text: str) -> Composed:
        s = Identifier(self._schema)
        return SQL(text).format(
            h=SQL("{}.{}").format(s, Identifier(HEAD_TABLE)),
            e=SQL("{}.{}").format(s, Identifier(ENTRIES_TABLE)),
            v=SQL("{}.{}").format(s, Identifier(EVENTS_TABLE)),
            n=SQL("{}.{}").format(s, Identifier(NODES_TABLE)),
            c=SQL("{}.{}").format(s, Identifier(CHECKPOINTS_TABLE)),
        )

    def head(self) -> LogHead | None:
        row = self._conn.execute(
            self._sql("SELECT size, head_hash FROM {h} WHERE id = 1")
        ).fetchone()
        return None if row is None else LogHead(row[0], bytes(row[1]))

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[LogRow]:
        query = self._sql(
            "SELECT e.idx, e.entry, e.entry_hash, s.originator_id::text, s.originator_version, "
            "s.topic, s.state, e.leaf_hash FROM {e} e "
            "LEFT JOIN {v} s ON s.notification_id = e.event_id "
            "WHERE e.idx >= %s AND e.idx < %s ORDER BY e.idx"
        )
        with self._conn.cursor(name="ledger_rows") as cursor:
            cursor.itersize = 5000
            cursor.execute(query, (start, 2**63 - 1 if stop is None else stop))
            yield from cursor

    def tile(self, level: int, index: int, width: int) -> list[bytes]:
        first = index * 256
        if level == 0:
            rows = self._conn.execute(
                self._sql("SELECT leaf_hash FROM {e} WHERE idx >= %s AND idx < %s ORDER BY idx"),
                (first, first + width),
            ).fetchall()
        else:
            rows = self._conn.execute(
                self._sql(
                    "SELECT hash FROM {n} WHERE level = %s AND idx >= %s AND idx < %s ORDER BY idx"
                ),
                (level, first, first + width),
            ).fetchall()
        return [bytes(r[0]) for r in rows]

    def nodes(self, start_level: int = 1) -> Iterator[tuple[int, int, bytes]]:
        rows = self._conn.execute(
            self._sql("SELECT level, idx, hash FROM {n} WHERE level >= %s ORDER BY level, idx"),
            (start_level,),
        )
        for level, idx, node in rows:
            yield level, idx, bytes(node)

    def rotations(self) -> list[int]:
        rows = self._conn.execute(
            self._sql(
                "SELECT e.idx FROM {e} e JOIN {v} s ON s.notification_id = e.event_id "
                "WHERE s.topic = 'log.key_rotated' ORDER BY e.idx"
            )
        ).fetchall()
        return [int(r[0]) for r in rows]

    def checkpoint(self, size: int | None = None) -> tuple[int, bytes, str] | None:
        if size is None:
            row = self._conn.execute(
                self._sql("SELECT size, root, note FROM {c} ORDER BY size DESC LIMIT 1")
            ).fetchone()
        else:
            row = self._conn.execute(
                self._sql("SELECT size, root, note FROM {c} WHERE size = %s"), (size,)
            ).fetchone()
        return None if row is None else (row[0], bytes(row[1]), row[2])

    def extent(self) -> int:
        row = self._conn.execute(self._sql("SELECT MAX(idx) FROM {e}")).fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def entries(self, start: int, stop: int) -> list[bytes]:
        rows = self._conn.execute(
            self._sql("SELECT entry FROM {e} WHERE idx >= %s AND idx < %s ORDER BY idx"),
            (start, stop),
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def first_unlogged_event(self) -> UnloggedEvent | None:
        row = self._conn.execute(
            self._sql(
                "SELECT s.notification_id, s.originator_id::text, s.originator_version, s.topic, "
                "s.state FROM {v} s WHERE NOT EXISTS "
                "(SELECT 1 FROM {e} e WHERE e.event_id = s.notification_id) "
                "ORDER BY s.notification_id LIMIT 1"
            )
        ).fetchone()
        if row is None:
            return None
        return row[0], EventRow(row[1], row[2], row[3], bytes(row[4]))

    def subject_version(self, subject_id: str, at: int | None = None) -> int | None:
        try:
            uid = str(UUID(subject_id))
        except ValueError:
            return None
        row = self._conn.execute(
            self._sql(
                "SELECT MAX(s.originator_version) FROM {v} s JOIN {e} e "
                "ON e.event_id = s.notification_id WHERE s.originator_id = %s AND e.idx <= %s"
            ),
            (uid, 2**63 - 1 if at is None else at),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def subject_indexes(self, subject_id: str, stop: int, limit: int, after: int = -1) -> list[int]:
        try:
            uid = str(UUID(subject_id))
        except ValueError:
            return []
        rows = self._conn.execute(
            SQL(
                "SELECT idx FROM {e} WHERE {s} = %s AND idx > %s AND idx < %s ORDER BY idx LIMIT %s"
            ).format(
                e=SQL("{}.{}").format(Identifier(self._schema), Identifier(ENTRIES_TABLE)),
                s=ENTRY_SUBJECT,
            ),
            (uid, after, stop, limit),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def close(self) -> None:
        self._conn.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
