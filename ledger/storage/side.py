"""The tables beside the log: token hashes, revocations, idempotency keys, documents.

None of these is part of the verifiable log. Token hashes and revocations, and idempotency
keys, are written by the recorder in the same transaction as the entry they belong to
(``ledger.sequencer.SideRow``); this module only reads them. Documents are stored here by
their SHA-256 before the entry that records that hash is written, so a publication entry
never names bytes the ledger does not hold.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from ledger.errors import StorageError
from ledger.keys import side_key
from ledger.settings import Settings
from ledger.storage.base import (
    ATTENDANCE_SALTS_TABLE,
    DOCUMENT_UPLOADS_TABLE,
    DOCUMENTS_TABLE,
    EMBARGO_SALTS_TABLE,
    ENTRIES_TABLE,
    EVENTS_TABLE,
    IDEMPOTENCY_TABLE,
    IMPORTS_TABLE,
    PERSON_KEYS_TABLE,
    REVOCATIONS_TABLE,
    SESSIONS_TABLE,
    TOKENS_TABLE,
    UPLOAD_MACS_TABLE,
    VERIFICATIONS_TABLE,
)
from ledger.tokens import REVOKED, issuing_disagreement

__all__ = [
    "AttendanceSalt",
    "DamagedDocumentError",
    "Document",
    "EmbargoSalt",
    "IdempotentWrite",
    "ImportProgress",
    "Session",
    "SideStore",
    "StoredToken",
    "Verification",
]

_PLACEHOLDER = re.compile(r"\?")
_ISSUING_CACHE = 10_000
_DOCUMENT_CACHE_BYTES = 64 * 1024 * 1024


class DamagedDocumentError(StorageError):
    """A stored document's bytes do not hash to the SHA-256 it is stored (and recorded) by."""


@dataclass(frozen=True, slots=True)
class StoredToken:
    token_id: str
    salt: bytes
    hash: bytes
    principal: str
    org: str
    role: str
    issued_index: int
    revoked_index: int | None


@dataclass(frozen=True, slots=True)
class IdempotentWrite:
    fingerprint: str
    index: int
    tree_size: int


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """How far a named bulk import got: its first ``lines`` lines are recorded."""

    name: str
    lines: int
    prefix_sha256: str  # SHA-256 of those lines' bytes, to check the file did not change
    last_index: int  # the log index of the last entry recorded
    tree_size: int


@dataclass(frozen=True, slots=True)
class Verification:
    """One `ledger verify` run against this store."""

    finished: datetime
    size: int
    ok: bool
    damage: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Document:
    sha256: str
    media_type: str
    size: int
    content: bytes | None  # None when only the metadata was asked for


@dataclass(frozen=True, slots=True)
class EmbargoSalt:
    """The salt of an embargoed publication's commitment, and the document it commits to."""

    publication_id: str
    salt: bytes
    sha256: str
    index: int


@dataclass(frozen=True, slots=True)
class AttendanceSalt:
    """The salt of one attending organisation's commitment in a meeting's held entry."""

    meeting_id: str
    org_id: str
    salt: bytes
    commitment: str
    index: int


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in official's browser session (the cookie holds a secret; this, its HMAC)."""

    session_hash: str
    token_id: str
    csrf: str
    created: str
    expires: str


class SideStore:
    """Reads (and for documents, writes) the side tables; one connection per thread."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self._pg = settings.database_url is not None
        # Issuing entries of tokens seen, by (token id, index): entries never change.
        self._issuing: dict[tuple[str, int], bytes] = {}
        # Documents whose bytes were checked against their SHA-256, least recent first.
        self._documents: OrderedDict[str, Document] = OrderedDict()
        self._document_bytes = 0
        self._mac_key: bytes | None = None

    def mac(self, purpose: str, *parts: str) -> str:
        """HMAC-SHA256 (hex) of ``parts`` for ``purpose`` under the side-table key, which is
        kept outside the database (``ledger.keys.side_key``): a row written with SQL cannot
        carry a valid one. Without a signing or master key, a per-process random key (what
        it MACs does not outlive the process)."""
        if self._mac_key is None:
            key = side_key(self._settings)
            if key is None:
                logging.getLogger("ledger.security").warning(
                    "no signing or master key: sessions and uploaders are keyed with a "
                    "per-process random key and do not survive a restart"
                )
                key = secrets.token_bytes(32)
            self._mac_key = key
        message = orjson.dumps([purpose, *parts])
        return hmac.new(self._mac_key, message, hashlib.sha256).hexdigest()

    def _upload_mac(self, sha256: str, principal: str, org: str, token_id: str, media: str) -> str:
        return self.mac("document upload", sha256, principal, org, token_id, media)

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            if self._pg:
                import psycopg

                conn = psycopg.connect(
                    str(self._settings.database_url),
                    autocommit=True,
                    options=f"-c search_path={self._settings.pg_schema}",
                    connect_timeout=10,
                )
            else:
                path = self._settings.sqlite_path
                if not path.exists():
                    raise StorageError(f"no ledger database at {path}")
                conn = sqlite3.connect(
                    path, isolation_level=None, check_same_thread=False, timeout=30
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                # Deleted rows (erased people's wrapped keys) are overwritten, not left in
                # free pages.
                conn.execute("PRAGMA secure_delete=ON")
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(f"cannot open the ledger store: {exc}") from exc
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn

    def _one(self, statement: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        sql = _PLACEHOLDER.sub("%s", statement) if self._pg else statement
        try:
            row = self._conn().execute(sql, params).fetchone()
        except StorageError:
            raise
        except Exception as exc:
            self._drop()
            raise StorageError(f"the ledger store is unavailable: {exc}") from exc
        return None if row is None else tuple(row)

    def _drop(self) -> None:
        """Forget this thread's connection after an error (the next call reconnects)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
            with contextlib.suppress(Exception):  # it is already broken
                conn.close()

    # tokens ------------------------------------------------------------------------------

    def token(self, token_id: str) -> StoredToken | None:
        """The token ``token_id`` as the log vouches for it; None when there is no row, or
        when the row disagrees with its issuing entry (``token_disagreement`` says why).

        ``revoked_index`` comes from the log's revocation entry when there is one (a deleted
        revocation row revives nothing), else from the revocation row.
        """
        stored = self.token_row(token_id)
        if stored is None or self.token_disagreement(stored) is not None:
            return None
        return stored

    def token_row(self, token_id: str) -> StoredToken | None:
        """The token's row as stored, not yet checked against its issuing entry."""
        subject = token_id if self._pg else token_id.replace("-", "").lower()
        key = "notification_id" if self._pg else "rowid"
        if self._pg:
            try:
                subject = str(UUID(token_id))
            except ValueError:
                return None
        row = self._one(
            f"SELECT t.token_id, t.salt, t.hash, t.principal, t.org, t.role, t.idx, r.idx, "
            f"(SELECT COUNT(*) FROM {EVENTS_TABLE} s WHERE s.originator_id = ? "
            f"AND s.topic = '{REVOKED}'), "
            f"(SELECT MIN(e.idx) FROM {EVENTS_TABLE} s JOIN {ENTRIES_TABLE} e "
            f"ON e.event_id = s.{key} WHERE s.originator_id = ? AND s.topic = '{REVOKED}') "
            f"FROM {TOKENS_TABLE} t LEFT JOIN {REVOCATIONS_TABLE} r "
            f"ON r.token_id = t.token_id WHERE t.token_id = ?",
            (subject, subject, token_id),
        )
        if row is None:
            return None
        revoked = row[9] if row[9] is not None else row[7]
        if revoked is None and int(row[8]) > 0:
            revoked = -1  # a revocation event row whose entry is gone: still revoked
        return StoredToken(
            row[0], bytes(row[1]), bytes(row[2]), row[3], row[4], row[5], int(row[6]), revoked
        )

    def token_disagreement(self, stored: StoredToken) -> str | None:
        """Why ``stored`` (a token row) is not what its issuing entry says, or None.

        The entry is read once per token and index, then cached (entries never change)."""
        cache_key = (stored.token_id, stored.issued_index)
        with self._lock:
            entry = self._issuing.get(cache_key)
        if entry is None:
            found = self._one(
                f"SELECT entry FROM {ENTRIES_TABLE} WHERE idx = ?", (stored.issued_index,)
            )
            if found is None:
                return issuing_disagreement(
                    stored.token_id, stored.principal, stored.org, stored.role, None
                )
            entry = bytes(found[0])
            with self._lock:
                if len(self._issuing) >= _ISSUING_CACHE:
                    self._issuing.clear()
                self._issuing[cache_key] = entry
        return issuing_disagreement(
            stored.token_id, stored.principal, stored.org, stored.role, entry
        )

    def tokens(self) -> list[StoredToken]:
        """Every token row, by issuing index (revocations as ``token_row`` reads them)."""
        sql = f"SELECT token_id FROM {TOKENS_TABLE} ORDER BY idx"
        try:
            ids = [str(r[0]) for r in self._conn().execute(sql).fetchall()]
        except Exception as exc:
            self._drop()
            raise StorageError(f"the ledger store is unavailable: {exc}") from exc
        rows = (self.token_row(token_id) for token_id in ids)
        return [row for row in rows if row is not None]

    # idempotency -------------------------------------------------------------------------

    def idempotent(self, principal: str, key: str) -> IdempotentWrite | None:
        row = self._one(
            f"SELECT fingerprint, idx, tree_size FROM {IDEMPOTENCY_TABLE} "
            "WHERE principal = ? AND key = ?",
            (principal, key),
        )
        return None if row is None else IdempotentWrite(row[0], int(row[1]), int(row[2]))

    # documents ---------------------------------------------------------------------------

    def put_document(
        self,
        sha256: str,
        media_type: str,
        content: bytes,
        *,
        uploader: tuple[str, str, str] | None = None,
    ) -> bool:
        """Store ``content`` under its SHA-256 (the caller computed it); False if it was
        already there (content addressing: the same bytes are stored once).

        ``uploader`` (holder, organisation, token id) is remembered beside the document,
        once per holder: an uploader may read it before an embargo on it is released."""
        stored_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        conflict = "ON CONFLICT (sha256) DO NOTHING"
        sql = (
            f"INSERT INTO {DOCUMENTS_TABLE} (sha256, media_type, size, content, stored_at) "
            f"VALUES (?, ?, ?, ?, ?) {conflict}"
        )
        created = self._write(sql, (sha256, media_type, len(content), content, stored_at)) == 1
        if uploader is not None:
            principal, org, token_id = uploader
            self._write(
                f"INSERT INTO {DOCUMENT_UPLOADS_TABLE} (sha256, principal, org, token_id, "
                "media_type, uploaded_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (sha256, principal, org) DO NOTHING",
                (sha256, principal, org, token_id, media_type, stored_at),
            )
            if self.upload_media_type(sha256, principal, org) is None:
                # No row with a valid MAC (a first upload, or a row written with SQL or made
                # before MACs): this upload's own values, MACed. This holder holds the bytes.
                self._write(
                    f"UPDATE {DOCUMENT_UPLOADS_TABLE} SET token_id = ?, media_type = ? "
                    "WHERE sha256 = ? AND principal = ? AND org = ?",
                    (token_id, media_type, sha256, principal, org),
                )
                mac = self._upload_mac(sha256, principal, org, token_id, media_type)
                self._write(
                    f"INSERT INTO {UPLOAD_MACS_TABLE} (sha256, principal, org, mac) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (sha256, principal, org) "
                    "DO UPDATE SET mac = excluded.mac",
                    (sha256, principal, org, mac),
                )
        return created

    def document(self, sha256: str, *, content: bool = True) -> Document | None:
        columns = "sha256, media_type, size" + (", content" if content else "")
        row = self._one(f"SELECT {columns} FROM {DOCUMENTS_TABLE} WHERE sha256 = ?", (sha256,))
        if row is None:
            return None
        return Document(row[0], row[1], int(row[2]), bytes(row[3]) if content else None)

    def checked_document(self, sha256: str) -> Document | None:
        """The document named ``sha256``, its bytes checked to hash to that name.

        Checked once per process, then served from a bounded cache of checked bytes (an
        edit of the table afterwards changes nothing served); DamagedDocumentError when
        the stored bytes are not the ones their name commits to."""
        with self._lock:
            cached = self._documents.get(sha256)
            if cached is not None:
                self._documents.move_to_end(sha256)
                return cached
        found = self.document(sha256)
        if found is None or found.content is None:
            return None
        if hashlib.sha256(found.content).hexdigest() != sha256 or found.size != len(found.content):
            raise DamagedDocumentError(
                f"the stored bytes of document {sha256} do not hash to its SHA-256: the "
                "documents table was changed; it is not served"
            )
        if len(found.content) <= _DOCUMENT_CACHE_BYTES // 4:
            with self._lock:
                self._documents[sha256] = found
                self._document_bytes += len(found.content)
                while self._document_bytes > _DOCUMENT_CACHE_BYTES:
                    _, evicted = self._documents.popitem(last=False)
                    self._document_bytes -= len(evicted.content or b"")
        return found

    def upload_media_type(self, sha256: str, principal: str, org: str) -> str | None:
        """The media type ``principal`` of ``org`` uploaded ``sha256`` with; None if they
        never uploaded it, or if the uploads row does not carry this service's MAC (a row
        inserted or edited with SQL grants nothing)."""
        row = self._one(
            f"SELECT u.token_id, u.media_type, m.mac FROM {DOCUMENT_UPLOADS_TABLE} u "
            f"JOIN {UPLOAD_MACS_TABLE} m ON m.sha256 = u.sha256 AND m.principal = u.principal "
            "AND m.org = u.org WHERE u.sha256 = ? AND u.principal = ? AND u.org = ?",
            (sha256, principal, org),
        )
        if row is None:
            return None
        expected = self._upload_mac(sha256, principal, org, str(row[0]), str(row[1]))
        if not hmac.compare_digest(expected, str(row[2])):
            return None
        return str(row[1])

    def unmatched_uploads(self) -> list[tuple[str, str, str]]:
        """(sha256, holder, organisation) of every uploads row without this service's MAC
        (inserted or edited with SQL, or made before MACs): for ``ledger verify``. A store
        that has no uploads table yet (made before it, not yet migrated) has no such row."""
        if not self._has_table(DOCUMENT_UPLOADS_TABLE):
            return []
        sql = (
            f"SELECT u.sha256, u.principal, u.org, u.token_id, u.media_type, m.mac "
            f"FROM {DOCUMENT_UPLOADS_TABLE} u LEFT JOIN {UPLOAD_MACS_TABLE} m "
            "ON m.sha256 = u.sha256 AND m.principal = u.principal AND m.org = u.org "
            "ORDER BY u.sha256, u.principal, u.org"
        )
        try:
            rows = self._conn().execute(sql).fetchall()
        except Exception as exc:
            self._drop()
            raise StorageError(f"the ledger store is unavailable: {exc}") from exc
        return [
            (str(r[0]), str(r[1]), str(r[2]))
            for r in rows
            if r[5] is None
            or not hmac.compare_digest(
                self._upload_mac(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4])),
                str(r[5]),
            )
        ]

    def _has_table(self, table: str) -> bool:
        if self._pg:
            found = self._one("SELECT to_regclass(?)", (f"{self._settings.pg_schema}.{table}",))
            return found is not None and found[0] is not None
        return self._one("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)) is not None

    def embargoes_of(self, sha256: str) -> list[str]:
        """The ids of the embargoed publications whose commitment is to ``sha256`` (released
        or not: the caller asks the log which are still under embargo)."""
        sql = f"SELECT publication_id FROM {EMBARGO_SALTS_TABLE} WHERE sha256 = ?"
        if self._pg:
            sql = _PLACEHOLDER.sub("%s", sql)
        try:
            rows = self._conn().execute(sql, (sha256,)).fetchall()
        except Exception as exc:
            self._drop()
            raise StorageError(f"the ledger store is unavailable: {exc}") from exc
        return sorted(str(r[0]) for r in rows)

    # bulk imports ------------------------------------------------------------------------

    def import_progress(self, name: str) -> ImportProgress | None:
        """The last committed batch of the import called ``name``, if any."""
        row = self._one(
            f"SELECT name, lines, prefix_sha256, idx, tree_size FROM {IMPORTS_TABLE} "
            "WHERE name = ? ORDER BY lines DESC LIMIT 1",
            (name,),
        )
        if row is None:
            return None
        return ImportProgress(row[0], int(row[1]), row[2], int(row[3]), int(row[4]))

    # verification runs -------------------------------------------------------------------

    def record_verification(self, size: int, ok: bool, damage: str, seconds: float) -> None:
        """Remember a `ledger verify` result (monitoring reads the last one)."""
        finished = datetime.now(UTC).isoformat(timespec="microseconds")
        self._write(
            f"INSERT INTO {VERIFICATIONS_TABLE} (finished, size, ok, damage, seconds) "
            "VALUES (?, ?, ?, ?, ?)",
            (finished, size, 1 if ok else 0, damage, seconds),
        )

    def last_verification(self) -> Verification | None:
        row = self._one(
            f"SELECT finished, size, ok, damage, seconds FROM {VERIFICATIONS_TABLE} "
            "ORDER BY finished DESC LIMIT 1",
            (),
        )
        if row is None:
            return None
        return Verification(
            datetime.fromisoformat(row[0]), int(row[1]), bool(row[2]), row[3], float(row[4])
        )

    # salts of commitments --------------------------------------------------------------

    def embargo_salt(self, publication_id: str) -> EmbargoSalt | None:
        row = self._one(
            f"SELECT publication_id, salt, sha256, idx FROM {EMBARGO_SALTS_TABLE} "
            "WHERE publication_id = ?",
            (publication_id,),
        )
        return None if row is None else EmbargoSalt(row[0], bytes(row[1]), row[2], int(row[3]))

    def attendance_salt(self, meeting_id: str, org_id: str) -> AttendanceSalt | None:
        row = self._one(
            f"SELECT meeting_id, org_id, salt, commitment, idx FROM {ATTENDANCE_SALTS_TABLE} "
            "WHERE meeting_id = ? AND org_id = ?",
            (meeting_id, org_id),
        )
        if row is None:
            return None
        return AttendanceSalt(row[0], row[1], bytes(row[2]), row[3], int(row[4]))

    # sessions ----------------------------------------------------------------------------

    def _write(self, statement: str, params: tuple[Any, ...]) -> int:
        sql = _PLACEHOLDER.sub("%s", statement) if self._pg else statement
        try:
            cursor = self._conn().execute(sql, params)
        except Exception as exc:
            self._drop()
            raise StorageError(f"the ledger store is unavailable: {exc}") from exc
        return int(cursor.rowcount)

    def create_session(self, session: Session) -> None:
        self._write(
            f"INSERT INTO {SESSIONS_TABLE} (session_hash, token_id, csrf, created, expires) "
            "VALUES (?, ?, ?, ?, ?)",
            (session.session_hash, session.token_id, session.csrf, session.created,
             session.expires),
        )  # fmt: skip

    def session(self, session_hash: str, now: str) -> Session | None:
        """The live session with that hash (expired ones are not returned)."""
        row = self._one(
            f"SELECT session_hash, token_id, csrf, created, expires FROM {SESSIONS_TABLE} "
            "WHERE session_hash = ? AND expires > ?",
            (session_hash, now),
        )
        return None if row is None else Session(*row)

    def end_session(self, session_hash: str) -> bool:
        return (
            self._write(f"DELETE FROM {SESSIONS_TABLE} WHERE session_hash = ?", (session_hash,))
            == 1
        )

    def purge_sessions(self, now: str) -> int:
        """Forget expired sessions; how many."""
        return self._write(f"DELETE FROM {SESSIONS_TABLE} WHERE expires <= ?", (now,))

    # personal-data keys (a ledger.vault.KeyStore) ------------------------------------------

    def get_key(self, person_id: str, key_id: str) -> bytes | None:
        row = self._one(
            f"SELECT wrapped FROM {PERSON_KEYS_TABLE} WHERE person_id = ? AND key_id = ?",
            (person_id, key_id),
        )
        return None if row is None else bytes(row[0])

    def current_key(self, person_id: str) -> tuple[str, bytes] | None:
        row = self._one(
            f"SELECT key_id, wrapped FROM {PERSON_KEYS_TABLE} WHERE person_id = ? "
            "ORDER BY created DESC, key_id DESC LIMIT 1",
            (person_id,),
        )
        return None if row is None else (str(row[0]), bytes(row[1]))

    def current_keys(self, person_ids: list[str]) -> dict[str, tuple[str, bytes]]:
        """``current_key`` for many people in one query (those with no key are absent)."""
        found: dict[str, tuple[str, bytes]] = {}
        for start in range(0, len(person_ids), 500):
            chunk = person_ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            statement = (
                f"SELECT person_id, key_id, wrapped FROM {PERSON_KEYS_TABLE} "
                f"WHERE person_id IN ({marks}) ORDER BY created, key_id"
            )
            sql = _PLACEHOLDER.sub("%s", statement) if self._pg else statement
            try:
                rows = self._conn().execute(sql, tuple(chunk)).fetchall()
            except Exception as exc:
                self._drop()
                raise StorageError(f"the ledger store is unavailable: {exc}") from exc
            for person, key_id, wrapped in rows:  # the newest last: it wins
                found[str(person)] = (str(key_id), bytes(wrapped))
        return found

    @staticmethod
    def key_created() -> str:
        """The ``created`` value of a key made now (keys are ordered by it)."""
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def put_key(self, person_id: str, key_id: str, wrapped: bytes) -> None:
        created = self.key_created()
        self._write(
            f"INSERT INTO {PERSON_KEYS_TABLE} (person_id, key_id, wrapped, created) "
            "VALUES (?, ?, ?, ?)",
            (person_id, key_id, wrapped, created),
        )

    def delete_keys(self, person_id: str) -> int:
        """Delete every wrapped key of ``person_id``, and (best effort) the old copies of
        their rows the database still holds: SQLite overwrites deleted rows (secure_delete)
        and truncates its write-ahead log; PostgreSQL vacuums the table."""
        count = self._write(f"DELETE FROM {PERSON_KEYS_TABLE} WHERE person_id = ?", (person_id,))
        with contextlib.suppress(Exception):  # housekeeping: the keys are already gone
            if self._pg:
                self._conn().execute(f"VACUUM {PERSON_KEYS_TABLE}")
            else:
                self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return count

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
