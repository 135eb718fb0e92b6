"""`ledger backup` and `ledger restore`: a consistent, store-independent copy of the ledger.

A backup is one gzip-compressed NDJSON file, written from one read snapshot of the store:

    {"format": "open-policy-ledger-backup/1", "origin": …, "size": N, "checkpoint": "…", …}
    {"table": "ledger_events", "columns": […], "rows": K}
    [row], [row], … (K rows: JSON arrays; bytes as {"b64": "…"})
    {"table": "ledger_entries", …}
    …
    {"end": true, "sha256": "<hex SHA-256 of every line above, as written>"}

It holds the log (event rows, entries, tree, checkpoints, head) and every side table that
cannot be recomputed (token hashes, revocations, idempotency keys, documents, salts of
commitments, wrapped personal-data keys, import progress) — not the read models, which
``ledger projections rebuild`` recomputes, and not sessions, which end with a restore. The
same file restores into an empty SQLite or PostgreSQL store: a backup is also how a ledger
moves from one machine's SQLite to PostgreSQL.

A restore writes everything in one transaction, then the caller verifies the log. A restored
store is the log as it was at the backup: anyone who audited a later checkpoint will see
the restored log as a rollback (or, once it grows again, a fork) — that is the point.

The file is created readable by its owner only (mode 0600, whatever the umask): it holds
embargoed documents, the salts of commitments and wrapped keys.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import orjson

from ledger.errors import InvalidInputError, StorageError
from ledger.settings import Settings
from ledger.storage import create_schema
from ledger.storage.base import (
    CHECKPOINTS_TABLE,
    DOCUMENT_UPLOADS_TABLE,
    ENTRIES_TABLE,
    EVENTS_TABLE,
    HEAD_TABLE,
    NODES_TABLE,
    SESSIONS_TABLE,
    SIDE_TABLES,
    UPLOAD_MACS_TABLE,
)

__all__ = ["BACKUP_FORMAT", "BackupSummary", "read_backup_header", "restore", "write_backup"]

BACKUP_FORMAT = "open-policy-ledger-backup/1"
_BATCH = 2000

# Every table a backup holds, in restore order, with its columns (events: store-neutral).
_EVENT_COLUMNS = ["notification_id", "originator_id", "originator_version", "topic", "state"]
_TABLES: list[tuple[str, list[str]]] = [
    (EVENTS_TABLE, _EVENT_COLUMNS),
    (ENTRIES_TABLE, ["idx", "event_id", "entry", "entry_hash", "leaf_hash"]),
    (NODES_TABLE, ["level", "idx", "hash"]),
    (CHECKPOINTS_TABLE, ["size", "root", "note"]),
    (HEAD_TABLE, ["id", "size", "head_hash", "edge", "key_id"]),
    *(
        (name, [column for column, _, _ in columns])
        for name, (columns, _) in SIDE_TABLES.items()
        if name != SESSIONS_TABLE
    ),
]
# Side tables added after the first backups were made: a backup may end before them (they
# restore empty). They come last in ``_TABLES``.
_ADDED_LATER = frozenset({DOCUMENT_UPLOADS_TABLE, UPLOAD_MACS_TABLE})
_ORDER = {
    EVENTS_TABLE: "notification_id",
    ENTRIES_TABLE: "idx",
    NODES_TABLE: "level, idx",
    CHECKPOINTS_TABLE: "size",
    HEAD_TABLE: "id",
}

Progress = Callable[[str, int], None]  # (table, rows so far)


@dataclass(frozen=True, slots=True)
class BackupSummary:
    origin: str
    size: int  # entries in the log
    checkpoint: str  # the latest signed checkpoint in the backup
    rows: dict[str, int]  # rows per table
    created: str
    source: str  # the kind of store it came from

    @property
    def bytes_hint(self) -> str:
        return ", ".join(f"{t.removeprefix('ledger_')} {n:,}" for t, n in self.rows.items() if n)


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"b64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, UUID):
        return str(value)
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise InvalidInputError("a backup value is an unknown object")
        return base64.b64decode(value["b64"], validate=True)
    return value


# connections ---------------------------------------------------------------------------------


class _Store:
    """A raw connection to the store, with the few dialect differences a copy meets."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pg = settings.database_url is not None
        self.schema = settings.pg_schema
        if self.pg:
            import psycopg

            try:
                self.conn: Any = psycopg.connect(
                    str(settings.database_url),
                    options=f"-c search_path={settings.pg_schema}",
                    connect_timeout=10,
                )
            except psycopg.Error as exc:
                raise StorageError(f"cannot open {settings.describe_store()}: {exc}") from exc
        else:
            path = settings.sqlite_path
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")

    def q(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.pg else sql

    def events_select(self) -> str:
        if self.pg:
            return (
                "SELECT notification_id, originator_id::text, originator_version, topic, state "
                f"FROM {EVENTS_TABLE} ORDER BY notification_id"
            )
        return (
            "SELECT rowid, originator_id, originator_version, topic, state "
            f"FROM {EVENTS_TABLE} ORDER BY rowid"
        )

    def events_insert(self) -> str:
        if self.pg:
            return (
                f"INSERT INTO {EVENTS_TABLE} (notification_id, originator_id, "
                "originator_version, topic, state) VALUES (%s, %s::uuid, %s, %s, %s)"
            )
        return (
            f"INSERT INTO {EVENTS_TABLE} (rowid, originator_id, originator_version, topic, "
            "state) VALUES (?, ?, ?, ?, ?)"
        )

    def originator_id(self, text: Any) -> str:
        try:
            uid = UUID(str(text))
        except ValueError:
            raise InvalidInputError(f"an event's originator id {text!r} is not a UUID") from None
        return str(uid) if self.pg else uid.hex

    @contextmanager
    def snapshot(self) -> Iterator[Any]:
        """One read snapshot: every table as of one moment, while writers carry on."""
        if self.pg:
            with self.conn.transaction():
                self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                with self.conn.cursor() as cur:
                    yield cur
        else:
            cur = self.conn.cursor()
            cur.execute("BEGIN")
            try:
                yield cur
            finally:
                cur.execute("ROLLBACK")

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        if self.pg:
            with self.conn.transaction(), self.conn.cursor() as cur:
                yield cur
        else:
            cur = self.conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def _rows(cur: Any, table: str, columns: list[str], store: _Store) -> Iterator[tuple[Any, ...]]:
    if table == EVENTS_TABLE:
        # The backup names events by their UUID in its usual form; SQLite stores its hex.
        cur.execute(store.events_select())
        while True:
            chunk = cur.fetchmany(_BATCH)
            if not chunk:
                return
            for row in chunk:
                yield (row[0], str(UUID(str(row[1]))), *row[2:])
    else:
        order = _ORDER.get(table, ", ".join(SIDE_TABLES[table][1]) if table in SIDE_TABLES else "1")
        cur.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")
    while True:
        chunk = cur.fetchmany(_BATCH)
        if not chunk:
            return
        yield from (tuple(row) for row in chunk)


def _tables_present(cur: Any, store: _Store) -> set[str]:
    if store.pg:
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (store.schema,),
        )
    else:
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row[0] for row in cur.fetchall()}


# backup --------------------------------------------------------------------------------------


@contextmanager
def _private_file(path: Path) -> Iterator[IO[bytes]]:
    """``path`` opened for writing, created (or reset) to mode 0600 before a byte is in it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a leftover file keeps its mode through O_CREAT
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "wb") as handle:
        yield handle


def write_backup(
    settings: Settings, out: Path, *, progress: Progress | None = None
) -> BackupSummary:
    """Write a backup of the store to ``out`` (atomically: a temp file, then a rename)."""
    store = _Store(settings)
    tmp = out.with_name(out.name + ".partial")
    try:
        with store.snapshot() as cur:
            present = _tables_present(cur, store)
            if HEAD_TABLE not in present:
                raise StorageError(f"no ledger at {settings.describe_store()}")
            cur.execute(f"SELECT size FROM {HEAD_TABLE} WHERE id = 1")
            head = cur.fetchone()
            size = int(head[0]) if head else 0
            cur.execute(f"SELECT note FROM {CHECKPOINTS_TABLE} ORDER BY size DESC LIMIT 1")
            found = cur.fetchone()
            note = str(found[0]) if found else ""
            counts: dict[str, int] = {}
            for table, _ in _TABLES:
                if table in present:
                    cur.execute(f"SELECT count(*) FROM {table}")
                    counts[table] = int(cur.fetchone()[0])
                else:
                    counts[table] = 0
            summary = BackupSummary(
                origin=note.split("\n", 1)[0],
                size=size,
                checkpoint=note,
                rows=counts,
                created=datetime.now(UTC).isoformat(timespec="seconds"),
                source=settings.backend,
            )
            digest = hashlib.sha256()
            with (
                _private_file(tmp) as handle,
                gzip.GzipFile(filename="", mode="wb", compresslevel=3, fileobj=handle) as raw,
            ):
                stream: IO[bytes] = raw  # type: ignore[assignment]

                def line(value: Any) -> None:
                    data = orjson.dumps(value) + b"\n"
                    digest.update(data)
                    stream.write(data)

                line(
                    {
                        "format": BACKUP_FORMAT,
                        "origin": summary.origin,
                        "size": size,
                        "checkpoint": note,
                        "created": summary.created,
                        "source": summary.source,
                        "tables": counts,
                    }
                )
                for table, columns in _TABLES:
                    line({"table": table, "columns": columns, "rows": counts[table]})
                    if table not in present:
                        continue
                    written = 0
                    for row in _rows(cur, table, columns, store):
                        line([_encode(v) for v in row])
                        written += 1
                        if progress is not None and written % 10_000 == 0:
                            progress(table, written)
                    if written != counts[table]:  # pragma: no cover - the snapshot forbids it
                        raise StorageError(f"{table} changed while it was copied")
                stream.write(orjson.dumps({"end": True, "sha256": digest.hexdigest()}) + b"\n")
                raw.flush()
            with tmp.open("rb") as done:
                os.fsync(done.fileno())
            tmp.replace(out)
    except OSError as exc:
        raise StorageError(f"cannot write the backup {out}: {exc.strerror or exc}") from exc
    finally:
        store.close()
        tmp.unlink(missing_ok=True)
    return summary


# restore -------------------------------------------------------------------------------------


class _Reader:
    """Reads a backup line by line, checking the running SHA-256 against its end line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.stream = gzip.open(path, "rb")  # noqa: SIM115 - closed by close()
            self.stream.peek(1)
        except (OSError, EOFError, zlib.error) as exc:
            raise InvalidInputError(f"{path} is not a ledger backup (not gzip: {exc})") from None
        self.digest = hashlib.sha256()
        self.line_no = 0

    def next(self) -> Any:
        try:
            data = self.stream.readline()
        except (OSError, EOFError, zlib.error) as exc:
            raise InvalidInputError(f"{self.path} is damaged: {exc}") from None
        self.line_no += 1
        if not data.endswith(b"\n"):
            raise InvalidInputError(f"{self.path} ends early, at line {self.line_no}")
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidInputError(f"{self.path} line {self.line_no}: {exc}") from None
        if not (isinstance(value, dict) and value.get("end") is True):
            self.digest.update(data)
        return value

    def close(self) -> None:
        self.stream.close()


def _header(reader: _Reader) -> BackupSummary:
    header = reader.next()
    if not isinstance(header, dict) or header.get("format") != BACKUP_FORMAT:
        raise InvalidInputError(f"{reader.path} is not a {BACKUP_FORMAT} file")
    try:
        return BackupSummary(
            origin=str(header["origin"]),
            size=int(header["size"]),
            checkpoint=str(header["checkpoint"]),
            rows={str(k): int(v) for k, v in dict(header["tables"]).items()},
            created=str(header["created"]),
            source=str(header["source"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"{reader.path} has a malformed header: {exc}") from None


def read_backup_header(path: Path) -> BackupSummary:
    """What a backup holds, from its first line (without reading the rest)."""
    reader = _Reader(path)
    try:
        return _header(reader)
    finally:
        reader.close()


def _is_empty(cur: Any, store: _Store) -> bool:
    present = _tables_present(cur, store)
    for table, _ in _TABLES:
        if table in present and table != HEAD_TABLE:
            cur.execute(f"SELECT 1 FROM {table} LIMIT 1")
            if cur.fetchone() is not None:
                return False
    if HEAD_TABLE in present:
        cur.execute(f"SELECT size FROM {HEAD_TABLE} WHERE id = 1")
        row = cur.fetchone()
        if row is not None and int(row[0]) != 0:
            return False
    return True


def restore(settings: Settings, path: Path, *, progress: Progress | None = None) -> BackupSummary:
    """Restore a backup into the (empty) store of ``settings``, all in one transaction.

    Refuses a store that holds anything: a restore never overwrites or merges into a log.
    The caller should create the schema first (``ledger migrate``) and verify afterwards.
    """
    reader = _Reader(path)
    summary = _header(reader)
    create_schema(settings)
    store = _Store(settings)
    try:
        with store.transaction() as cur:
            if not _is_empty(cur, store):
                raise InvalidInputError(
                    f"{settings.describe_store()} already holds a ledger; a backup is "
                    "restored only into an empty store (it never overwrites or merges)"
                )
            cur.execute(f"DELETE FROM {HEAD_TABLE}")
            early_end: Any = None
            for position, (table, columns) in enumerate(_TABLES):
                marker = reader.next()
                if (
                    isinstance(marker, dict)
                    and marker.get("end") is True
                    and all(name in _ADDED_LATER for name, _ in _TABLES[position:])
                ):
                    early_end = marker  # an older backup: these tables did not exist yet
                    break
                if (
                    not isinstance(marker, dict)
                    or marker.get("table") != table
                    or marker.get("columns") != columns
                ):
                    raise InvalidInputError(
                        f"{path} line {reader.line_no}: expected the table {table} with the "
                        f"columns {columns}"
                    )
                count = int(marker["rows"])
                insert = (
                    store.events_insert()
                    if table == EVENTS_TABLE
                    else store.q(
                        f"INSERT INTO {table} ({', '.join(columns)}) "
                        f"VALUES ({', '.join('?' for _ in columns)})"
                    )
                )
                chunk: list[list[Any]] = []
                for done in range(count):
                    row = reader.next()
                    if not isinstance(row, list) or len(row) != len(columns):
                        raise InvalidInputError(
                            f"{path} line {reader.line_no}: a {table} row must have "
                            f"{len(columns)} values"
                        )
                    values = [_decode(v) for v in row]
                    if table == EVENTS_TABLE:
                        values[1] = store.originator_id(values[1])
                    chunk.append(values)
                    if len(chunk) >= _BATCH:
                        cur.executemany(insert, chunk)
                        chunk = []
                        if progress is not None:
                            progress(table, done + 1)
                if chunk:
                    cur.executemany(insert, chunk)
            end = early_end if early_end is not None else reader.next()
            if not isinstance(end, dict) or end.get("end") is not True:
                raise InvalidInputError(f"{path} line {reader.line_no}: expected the end line")
            if end.get("sha256") != reader.digest.hexdigest():
                raise InvalidInputError(f"{path} is damaged: its SHA-256 does not match")
            if store.pg:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{EVENTS_TABLE}', 'notification_id'),"
                    f" GREATEST((SELECT max(notification_id) FROM {EVENTS_TABLE}), 1))"
                )
    except Exception as exc:
        if isinstance(exc, InvalidInputError | StorageError):
            raise
        raise StorageError(f"the restore failed and wrote nothing: {exc}") from exc
    finally:
        reader.close()
        store.close()
    return summary
