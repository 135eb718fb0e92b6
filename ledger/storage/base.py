"""What every store provides to the rest of the ledger.

A store MUST, for every committed write transaction that inserts event rows, also commit in
that same transaction one entry per event row, with dense indexes continuing the log (no gap,
no reuse), each entry's ``prev`` the hash of the entry before, and the head row updated to
the new size and head hash. Writers MUST be serialised so that commit order equals index
order. A store MUST NOT acknowledge (return from ``insert_events``) before that commit is
durable. Readers see whole transactions only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from ledger.chain import EventRow, LogHead, LogRow

__all__ = [
    "ATTENDANCE_SALTS_TABLE",
    "DOCUMENTS_TABLE",
    "DOCUMENT_UPLOADS_TABLE",
    "EMBARGO_SALTS_TABLE",
    "IDEMPOTENCY_TABLE",
    "IMPORTS_TABLE",
    "PERSON_KEYS_TABLE",
    "REVOCATIONS_TABLE",
    "SESSIONS_TABLE",
    "SIDE_TABLES",
    "TOKENS_TABLE",
    "UPLOAD_MACS_TABLE",
    "VERIFICATIONS_TABLE",
    "LogReader",
    "UnloggedEvent",
    "side_table_ddl",
]

EVENTS_TABLE = "ledger_events"
ENTRIES_TABLE = "ledger_entries"
HEAD_TABLE = "ledger_head"
NODES_TABLE = "ledger_nodes"
CHECKPOINTS_TABLE = "ledger_checkpoints"

# Beside the log (not part of it, never verified against it): officials' token hashes and
# revocations, the idempotency keys of writes, and uploaded documents by SHA-256. Tokens,
# revocations and idempotency keys are written in the same transaction as their entry.
TOKENS_TABLE = "ledger_tokens"
REVOCATIONS_TABLE = "ledger_token_revocations"
IDEMPOTENCY_TABLE = "ledger_idempotency"
DOCUMENTS_TABLE = "ledger_documents"
SESSIONS_TABLE = "ledger_sessions"
# Salts of the commitments in entries (ledger.commitments), written with their entry: an
# embargoed publication's (with the hash of the document it commits to, until released) and
# one per attending organisation of a Chatham House or private meeting.
EMBARGO_SALTS_TABLE = "ledger_embargo_salts"
ATTENDANCE_SALTS_TABLE = "ledger_attendance_salts"
# Each person's data keys, wrapped under the master key (ledger.vault). Written when a
# person's data is first sealed (just before the entry's transaction: an orphan key for data
# never recorded reveals nothing); deleted on erasure, which makes their data unreadable.
PERSON_KEYS_TABLE = "ledger_person_keys"
# Bulk imports' progress: one row per committed batch, in the batch's transaction.
IMPORTS_TABLE = "ledger_imports"
# Results of `ledger verify` runs (for monitoring: the last one is a metric).
VERIFICATIONS_TABLE = "ledger_verifications"
# Who uploaded which document (an uploader may read it before an embargo on it is released).
# Added after format 1 of backups: a backup without it restores with it empty.
DOCUMENT_UPLOADS_TABLE = "ledger_document_uploads"
# An HMAC of each uploads row under a key kept outside the database (ledger.keys.side_key):
# a row inserted or edited with SQL carries no valid MAC and grants nothing.
UPLOAD_MACS_TABLE = "ledger_document_upload_macs"

# name -> (column, SQLite type, PostgreSQL type) ..., primary key columns
SIDE_TABLES: dict[str, tuple[tuple[tuple[str, str, str], ...], tuple[str, ...]]] = {
    TOKENS_TABLE: (
        (
            ("token_id", "TEXT", "text"),
            ("salt", "BLOB", "bytea"),
            ("hash", "BLOB", "bytea"),
            ("principal", "TEXT", "text"),
            ("org", "TEXT", "text"),
            ("role", "TEXT", "text"),
            ("idx", "INTEGER", "bigint"),
        ),
        ("token_id",),
    ),
    REVOCATIONS_TABLE: (
        (("token_id", "TEXT", "text"), ("idx", "INTEGER", "bigint")),
        ("token_id",),
    ),
    IDEMPOTENCY_TABLE: (
        (
            ("principal", "TEXT", "text"),
            ("key", "TEXT", "text"),
            ("fingerprint", "TEXT", "text"),
            ("idx", "INTEGER", "bigint"),
            ("tree_size", "INTEGER", "bigint"),
        ),
        ("principal", "key"),
    ),
    DOCUMENTS_TABLE: (
        (
            ("sha256", "TEXT", "text"),
            ("media_type", "TEXT", "text"),
            ("size", "INTEGER", "bigint"),
            ("content", "BLOB", "bytea"),
            ("stored_at", "TEXT", "text"),
        ),
        ("sha256",),
    ),
    SESSIONS_TABLE: (
        (
            ("session_hash", "TEXT", "text"),
            ("token_id", "TEXT", "text"),
            ("csrf", "TEXT", "text"),
            ("created", "TEXT", "text"),
            ("expires", "TEXT", "text"),
        ),
        ("session_hash",),
    ),
    EMBARGO_SALTS_TABLE: (
        (
            ("publication_id", "TEXT", "text"),
            ("salt", "BLOB", "bytea"),
            ("sha256", "TEXT", "text"),
            ("idx", "INTEGER", "bigint"),
        ),
        ("publication_id",),
    ),
    ATTENDANCE_SALTS_TABLE: (
        (
            ("meeting_id", "TEXT", "text"),
            ("org_id", "TEXT", "text"),
            ("salt", "BLOB", "bytea"),
            ("commitment", "TEXT", "text"),
            ("idx", "INTEGER", "bigint"),
        ),
        ("meeting_id", "org_id"),
    ),
    PERSON_KEYS_TABLE: (
        (
            ("person_id", "TEXT", "text"),
            ("key_id", "TEXT", "text"),
            ("wrapped", "BLOB", "bytea"),
            ("created", "TEXT", "text"),
        ),
        ("person_id", "key_id"),
    ),
    IMPORTS_TABLE: (
        (
            ("name", "TEXT", "text"),
            ("lines", "INTEGER", "bigint"),
            ("prefix_sha256", "TEXT", "text"),
            ("idx", "INTEGER", "bigint"),
            ("tree_size", "INTEGER", "bigint"),
        ),
        ("name", "lines"),
    ),
    VERIFICATIONS_TABLE: (
        (
            ("finished", "TEXT", "text"),
            ("size", "INTEGER", "bigint"),
            ("ok", "INTEGER", "integer"),
            ("damage", "TEXT", "text"),
            ("seconds", "REAL", "double precision"),
        ),
        ("finished",),
    ),
    DOCUMENT_UPLOADS_TABLE: (
        (
            ("sha256", "TEXT", "text"),
            ("principal", "TEXT", "text"),
            ("org", "TEXT", "text"),
            ("token_id", "TEXT", "text"),
            ("media_type", "TEXT", "text"),
            ("uploaded_at", "TEXT", "text"),
        ),
        ("sha256", "principal", "org"),
    ),
    UPLOAD_MACS_TABLE: (
        (
            ("sha256", "TEXT", "text"),
            ("principal", "TEXT", "text"),
            ("org", "TEXT", "text"),
            ("mac", "TEXT", "text"),
        ),
        ("sha256", "principal", "org"),
    ),
}


def side_table_ddl(dialect: str, qualify: Callable[[str], str] = str) -> list[str]:
    """CREATE TABLE statements for the side tables in ``dialect`` (sqlite or postgresql)."""
    statements = []
    for name, (columns, key) in SIDE_TABLES.items():
        cols = ", ".join(
            f"{col} {lite if dialect == 'sqlite' else pg} NOT NULL" for col, lite, pg in columns
        )
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {qualify(name)} ({cols}, PRIMARY KEY ({', '.join(key)}))"
        )
    return statements


UnloggedEvent = tuple[int, EventRow]


class LogReader(Protocol):
    """Read-only access to the stored log, for verification, export and proofs."""

    def head(self) -> LogHead | None:
        """The sealed head, or None when the store has no head row."""

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[LogRow]:
        """Entries ``start <= index < stop`` joined with their event rows, in order, streamed."""

    def extent(self) -> int:
        """One past the highest stored index (0 when empty)."""

    def entries(self, start: int, stop: int) -> list[bytes]:
        """The verbatim bytes of entries ``start`` (inclusive) to ``stop`` (exclusive)."""

    def tile(self, level: int, index: int, width: int) -> list[bytes]:
        """Stored tree hashes of tile ``level``/``index`` (tlog-tiles), the first ``width``."""

    def nodes(self, start_level: int = 1) -> Iterator[tuple[int, int, bytes]]:
        """Every stored node (level ≥ start_level, index, hash), by level then index."""

    def rotations(self) -> list[int]:
        """Indexes of the log's key-rotation entries, in order."""

    def checkpoint(self, size: int | None = None) -> tuple[int, bytes, str] | None:
        """(size, root, signed note) of the latest checkpoint, or of the one for ``size``."""

    def first_unlogged_event(self) -> UnloggedEvent | None:
        """An event row that no entry covers, if any."""

    def subject_version(self, subject_id: str, at: int | None = None) -> int | None:
        """The version of aggregate ``subject_id`` after entry ``at`` (latest if None);
        None when no entry up to there is about it."""

    def subject_indexes(self, subject_id: str, stop: int, limit: int, after: int = -1) -> list[int]:
        """Indexes ``after < index < stop`` of the entries about aggregate ``subject_id``, in
        order, at most ``limit``: found from the entry bytes themselves (an index of each
        entry's own subject), never from the event rows or a read model."""

    def close(self) -> None:
        """Release the connection."""
