"""docs/THREAT-MODEL.md, sections C and D, as a table of tests: one tampering, every detector.

The same small world is built once per store kind (SQLite and PostgreSQL) and copied for
each case:

* a log whose every checkpoint goes to a live witness (``create_witness_app`` behind uvicorn),
  which cosigns them as the log grows;
* an old backup taken at size ``BACKUP`` (8 entries);
* an auditor that audits the log at size ``AUDITED`` (11) and keeps its state file;
* the log then grows to ``GROWN`` (14), each checkpoint cosigned by the witness.

Then one tampering is applied the way the threat model's attacker would (an insider with SQL
and no key; for section D an operator who also holds the signing key), and every detector is
asked, with the outcome it must give:

``verify``
    ``ledger verify --json --key <log key>`` (the CLI, in process): ``OK`` or the damaged
    index and kind.
``audit``
    ``ledger.audit.audit`` from the kept state against the tampered store's HTTP API
    (``HttpSource`` → the log routes of ``api``, served by uvicorn): ``OK``, ``rollback``,
    ``fork``, ``root`` (RootMismatchError), ``entry@i`` (EntryError at index i) or
    ``source(<HTTP status>)`` (SourceError); and ``ledger audit <url>`` must agree (exit 0,
    or exit 1 with "FAILED … (state left unchanged)"). On failure the kept state file is
    byte-for-byte unchanged.
``bundle``
    ``ledger export --bundle`` from the tampered store, then the same audit against the
    bundle; ``export-refused`` when the exporter itself will not write it (it checks the
    entries against the signed root).
``witness``
    the tampered store's latest checkpoint submitted to the witness exactly as the log's
    client does (``submit_checkpoint``: ``old 0``; on 409 the witness's size, with a proof
    from the tampered tree): ``cosigned`` or the HTTP statuses of the refusals, e.g.
    ``409/400``. A witness that refuses keeps the size it had.

Positions are chosen on both sides of the auditor's kept size: ``-tail`` damages an entry the
auditor has not verified yet (index 12), ``-seen`` one it has (index 5). Cells where
the outcome differs from what docs/THREAT-MODEL.md claims are marked ``DOC:`` below.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI

from api.deps import Readers
from api.errors import install_problem_handlers
from api.routes import log as log_routes
from ledger.application import LedgerApplication
from ledger.audit import BundleSource, HttpSource, audit, write_bundle
from ledger.audit.errors import (
    AuditError,
    ConsistencyError,
    EntryError,
    RootMismatchError,
    SourceError,
)
from ledger.checkpoint import (
    CheckpointError,
    CosignatureSigner,
    CosignatureVerifier,
    add_signatures,
    verify_cosignatures,
)
from ledger.cli import main as ledger_cli
from ledger.encoding import GENESIS_PREV, canonical, encode_entry
from ledger.integrate import integrate, pack_edge
from ledger.keys import load_signer
from ledger.proofs import ProofBuilder, TileCache
from ledger.settings import WitnessConfig
from ledger.storage import open_reader
from ledger.storage.backup import restore, write_backup
from ledger.witness import WitnessError, WitnessState, create_witness_app, submit_checkpoint
from tests.conftest import BACKENDS, LOG_NAME, PG_URL, Store, make_store
from tests.helpers import OFFICIAL, record_sample

BACKUP, AUDITED, GROWN = 8, 11, 14
TAIL, OLD = 12, 5  # an index the auditor has not verified yet, and one it has

OK = "OK"


# --------------------------------------------------------------------------------------
# The matrix (docs/THREAT-MODEL.md, sections C and D)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One tampering and what each detector must say about it."""

    id: str
    tamper: str  # a key of TAMPERINGS
    at: int  # the index (or size) the tampering works at
    verify: str | tuple[int, str]  # OK, or (index, DamageKind value)
    audit: str  # over HTTP, from the kept state
    bundle: str  # export --bundle, then audit it from the kept state
    witness: str  # "cosigned", or the refusing statuses


CHANGED, EVENT, MISSING = "changed bytes", "event row differs from its entry", "missing entry"
INSERT, REORDER = "inserted entry", "reordered entries"
STALE = "stored checkpoint differs"  # the signed root is not the tree's
REFUSED = "export-refused"  # `ledger export --bundle` will not write it (exit 1)
FORK, ROLLBACK, HTTP_500 = "fork", "rollback", "source(500)"
COSIGNED = "cosigned"  # the kept checkpoint is still the one the witness cosigned

# fmt: off
MATRIX = [
    #   id                 tamper      at      verify           audit       bundle      witness
    # C. A database insider (SQL access, no signing key) -------------------------------
    Row("C1-edit-tail",    "edit",     TAIL,   (TAIL, CHANGED), "entry@13", REFUSED,    COSIGNED),
    # DOC: "audit detects: the recomputed root differs" -- not for an entry the auditor
    # has already verified: it keeps a compact range, the HTTP consistency proof is built
    # from the stored leaf hashes (untouched), and only entries past its size are read.
    # A fresh auditor does catch it: test_a_fresh_auditor_catches_what_the_kept_state_cannot.
    Row("C1-edit-seen",    "edit",     OLD,    (OLD, CHANGED),  OK,         REFUSED,    COSIGNED),
    Row("C2-event-row",    "event",    OLD,    (OLD, EVENT),    OK,         OK,         COSIGNED),
    # DOC: "the source ends early / root differs" -- the API answers the consistency proof
    # with HTTP 500 "Stored log damaged" (a leaf hash is missing from tile 0/0), named.
    Row("C3-delete-tail",  "delete",   TAIL,   (TAIL, MISSING), HTTP_500,   REFUSED,    COSIGNED),
    Row("C3-delete-seen",  "delete",   OLD,    (OLD, MISSING),  HTTP_500,   REFUSED,    COSIGNED),
    # DOC: "root differs" / "prev mismatch" -- over HTTP the consistency proof, checked
    # before any entry is read, already fails: "fork".
    Row("C4-insert-tail",  "insert",   TAIL,   (TAIL, INSERT),  FORK,       REFUSED,    COSIGNED),
    Row("C4-insert-seen",  "insert",   OLD,    (OLD, INSERT),   FORK,       REFUSED,    COSIGNED),
    Row("C5-swap-tail",    "swap",     TAIL,   (TAIL, REORDER), FORK,       REFUSED,    COSIGNED),
    Row("C5-swap-seen",    "swap",     OLD,    (OLD, REORDER),  FORK,       REFUSED,    COSIGNED),
    # The witness answers 409 with its size (14), then 400 (old size > checkpoint size).
    Row("C6-cut-below",    "truncate", 9,      OK,              ROLLBACK,   ROLLBACK,   "409/400"),
    # DOC: a cut that stays above the auditor's size is no rollback for it: only the
    # witness (which saw size 14) catches it.
    Row("C6-cut-above",    "truncate", TAIL,   OK,              OK,         OK,         "409/400"),
    Row("C7-rewrite-tail", "rewrite",  TAIL,   (GROWN, STALE),  FORK,       REFUSED,    COSIGNED),
    Row("C7-rewrite-seen", "rewrite",  OLD,    (GROWN, STALE),  FORK,       REFUSED,    COSIGNED),
    Row("C8-old-backup",   "restore",  BACKUP, OK,              ROLLBACK,   ROLLBACK,   "409/400"),
    # D. An operator with the signing key --------------------------------------------
    # Over a bundle (no proofs) the fork shows as entry 11's prev not matching the trusted
    # head ("... or the log before it was rewritten").
    Row("D1-resign-seen",  "resign",   OLD,    OK,              FORK,       "entry@11", "409/422"),
    # DOC ("Rewrite history no one has yet seen"): here the witness has seen it; the
    # auditor, whose size is below the rewrite, has not and passes it.
    Row("D1-resign-tail",  "resign",   TAIL,   OK,              OK,         OK,         "409/422"),
    # DOC: "audit detects: rollback" -- once the restored log has grown past the auditor's
    # size it is a fork, not a rollback (while it is smaller, a rollback: C8).
    Row("D3-carry-on",     "carry-on", BACKUP, OK,              FORK,       "entry@11", "409/422"),
]
# fmt: on


# --------------------------------------------------------------------------------------
# Servers in threads (uvicorn on a socket bound here: no port race)
# --------------------------------------------------------------------------------------


class Served:
    """An ASGI app served by uvicorn in a daemon thread on 127.0.0.1."""

    def __init__(self, app: Any, lifespan: str = "on") -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan=lifespan, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()


class Switch:
    """An ASGI app that forwards to whichever app is plugged in: one server for every case."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    served = Served(app)
    try:
        yield served.url
    finally:
        served.stop()


@dataclass
class Witness:
    """A tlog-witness that follows our log, with its state directory."""

    url: str
    vkey: str
    state: Path

    def size(self) -> int:
        return WitnessState(self.state).size(LOG_NAME)

    def path(self) -> Path:
        return WitnessState(self.state).path(LOG_NAME)


# --------------------------------------------------------------------------------------
# The world before the tampering: built once per store kind, copied for each case
# --------------------------------------------------------------------------------------


@dataclass
class World:
    store: Store
    vkey: str  # the log's verifier key
    witness: Witness
    state: Path  # the auditor's kept state (size AUDITED)
    backup: Path  # the old backup (size BACKUP)
    process_id: str
    tmp: Path
    api: Switch  # plug the tampered store's log routes in here …
    api_url: str  # … and they are served here


def cli(store: Store, monkeypatch: pytest.MonkeyPatch, capsys: Any, *args: str) -> tuple[int, str]:
    """``ledger <args>`` in this process, configured by the store's environment."""
    for name in list(os.environ):
        if name.startswith("LEDGER_"):
            monkeypatch.delenv(name)
    for name, value in store.env().items():
        if name.startswith("LEDGER_"):
            monkeypatch.setenv(name, value)
    capsys.readouterr()
    status = ledger_cli(list(args))
    out = capsys.readouterr()
    return status, out.out + out.err


def grow(app: LedgerApplication, process_id: str, prefix: str, count: int) -> list[Any]:
    return [
        app.add_strand(
            process_id, strand_id=f"{prefix}{n}", title=f"Strand {prefix}{n}", actor=OFFICIAL
        )
        for n in range(count)
    ]


def build_world(store: Store, tmp: Path, witness: Witness, api: Switch, api_url: str) -> World:
    """Record, back up, audit at AUDITED, grow to GROWN; every checkpoint to the witness."""
    store.settings = store.settings.model_copy(
        update={"witnesses": [WitnessConfig(url=witness.url, key=witness.vkey)]}
    )
    app = LedgerApplication(store.settings)
    try:
        vkey = app.signer.verifier_key()
        sample = record_sample(app, amendments=0)
        assert len(sample.receipts) == BACKUP
        backup = tmp / "old.backup.gz"
        write_backup(store.settings, backup)
        grow(app, sample.process_id, "s", AUDITED - BACKUP)
        bundle = tmp / "audited.bundle"
        reader = open_reader(store.settings)
        try:
            size, _, note = reader.checkpoint()  # type: ignore[misc]
            write_bundle(
                bundle,
                public_key=vkey,
                checkpoint_note=note,
                entries=reader.entries(0, size),
                size=size,
            )
        finally:
            reader.close()
        state = tmp / "auditor.state"
        assert audit(BundleSource(bundle), vkey=vkey, state_path=state).new_size == AUDITED
        receipts = grow(app, sample.process_id, "t", GROWN - AUDITED)
    finally:
        app.close()
    # The witness cosigned the grown log, and is at its size.
    verify_cosignatures(receipts[-1].checkpoint, [CosignatureVerifier.from_vkey(witness.vkey)], 1)
    assert witness.size() == GROWN
    return World(store, vkey, witness, state, backup, sample.process_id, tmp, api, api_url)


LOG_TABLES = (
    "ledger_events",
    "ledger_entries",
    "ledger_head",
    "ledger_nodes",
    "ledger_checkpoints",
)


def copy_store(base: Store, tmp: Path) -> Iterator[Store]:
    """A copy of ``base`` (on PostgreSQL its log tables, with their own sequence; the
    application creates the side tables it needs); a PostgreSQL copy is dropped after."""
    if base.kind == "sqlite":
        settings = base.settings.model_copy(update={"data_dir": tmp / "data"})
        settings.data_dir.mkdir()
        src = sqlite3.connect(base.settings.sqlite_path)
        dst = sqlite3.connect(settings.sqlite_path)
        with contextlib.closing(src), contextlib.closing(dst):
            src.backup(dst)
        yield Store("sqlite", settings)
        return
    schema, old = f"c_{uuid.uuid4().hex[:16]}", base.schema
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        serials = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND column_default LIKE 'nextval(%%' "
            "AND table_name = ANY(%s)",
            (old, list(LOG_TABLES)),
        ).fetchall()
        script = [f"CREATE SCHEMA {schema}"]
        for t in LOG_TABLES:
            script.append(f"CREATE TABLE {schema}.{t} (LIKE {old}.{t} INCLUDING ALL)")
            script.append(f"INSERT INTO {schema}.{t} SELECT * FROM {old}.{t}")
        for t, c in serials:  # LIKE keeps nextval() of the old schema's sequence
            seq = f"{schema}.{t}_{c}_seq"
            script += [
                f"CREATE SEQUENCE {seq} OWNED BY {schema}.{t}.{c}",
                f"SELECT setval('{seq}', (SELECT COALESCE(max({c}), 0) + 1 FROM "
                f"{schema}.{t}), false)",
                f"ALTER TABLE {schema}.{t} ALTER COLUMN {c} SET DEFAULT nextval('{seq}')",
            ]
        with conn.transaction():
            for statement in script:
                conn.execute(statement)
    try:
        yield Store("postgresql", base.settings.model_copy(update={"pg_schema": schema}), schema)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


# --------------------------------------------------------------------------------------
# The tamperings (raw SQL through Store.connect(): the insider's door)
# --------------------------------------------------------------------------------------


def _entry(conn: Any, store: Store, index: int) -> tuple[bytes, int]:
    row = conn.execute(
        store.q("SELECT entry, event_id FROM ledger_entries WHERE idx = ?"), (index,)
    ).fetchone()
    return bytes(row[0]), row[1]


def edit_entry(world: World, at: int, stack: contextlib.ExitStack) -> Store:
    """Backdate entry ``at``: its bytes only (still valid JSON, same index and prev)."""
    store = world.store
    with contextlib.closing(store.connect()) as conn:
        entry, _ = _entry(conn, store, at)
        edited = entry.replace(b'"time":"20', b'"time":"19', 1)
        assert edited != entry
        conn.execute(store.q("UPDATE ledger_entries SET entry = ? WHERE idx = ?"), (edited, at))
    return store


def edit_event(world: World, at: int, stack: contextlib.ExitStack) -> Store:
    """Change the event row behind entry ``at`` (what the aggregates load), not the entry."""
    store = world.store
    key = store.event_key
    with contextlib.closing(store.connect()) as conn:
        _, event_id = _entry(conn, store, at)
        state = conn.execute(
            store.q(f"SELECT state FROM ledger_events WHERE {key} = ?"), (event_id,)
        ).fetchone()[0]
        envelope = orjson.loads(bytes(state))
        envelope["data"]["title"] = "Something else"
        conn.execute(
            store.q(f"UPDATE ledger_events SET state = ? WHERE {key} = ?"),
            (canonical(envelope), event_id),
        )
    return store


def delete(world: World, at: int, stack: contextlib.ExitStack) -> Store:
    """Delete entry ``at`` and its event row."""
    store = world.store
    with contextlib.closing(store.connect()) as conn:
        _, event_id = _entry(conn, store, at)
        conn.execute(store.q("DELETE FROM ledger_entries WHERE idx = ?"), (at,))
        conn.execute(store.q(f"DELETE FROM ledger_events WHERE {store.event_key} = ?"), (event_id,))
    return store


def insert(world: World, at: int, stack: contextlib.ExitStack) -> Store:
    """Insert a forged entry (and event row) at ``at``, shifting the rest up by one."""
    store = world.store
    q = store.q
    with contextlib.closing(store.connect()) as conn:
        prev = hashlib.sha256(_entry(conn, store, at - 1)[0]).hexdigest()
        conn.execute(q("UPDATE ledger_entries SET idx = -(idx + 1) WHERE idx >= ?"), (at,))
        conn.execute("UPDATE ledger_entries SET idx = -idx WHERE idx < 0")
        forged_id = uuid.uuid4()
        actor = {"id": "insider", "org": "", "role": "admin"}
        payload = {"phase_id": "forged", "summary": "", "title": "Forged phase"}
        when = "2015-06-01T00:00:00.000000Z"
        state = canonical({"actor": actor, "data": payload, "time": when})
        cur = conn.execute(
            q(
                "INSERT INTO ledger_events (originator_id, originator_version, topic, state) "
                "VALUES (?, 1, 'process.phase_started', ?)"
                + ("" if store.kind == "sqlite" else " RETURNING notification_id")
            ),
            (forged_id.hex if store.kind == "sqlite" else forged_id, state),
        )
        event_id = cur.lastrowid if store.kind == "sqlite" else cur.fetchone()[0]
        forged = encode_entry(
            index=at,
            prev=prev,
            type="process.phase_started",
            subject={"kind": "process", "id": str(forged_id), "version": 1},
            time=when,
            actor=actor,
            data=payload,
        )
        conn.execute(
            q(
                "INSERT INTO ledger_entries (idx, event_id, entry, entry_hash, leaf_hash) "
                "VALUES (?, ?, ?, ?, ?)"
            ),
            (
                at,
                event_id,
                forged,
                hashlib.sha256(forged).digest(),
                hashlib.sha256(b"\x00" + forged).digest(),
            ),
        )
    return store


def swap(world: World, at: int, stack: contextlib.ExitStack) -> Store:
    """Swap entries ``at`` and ``at + 1`` (rows, hashes and event links move together)."""
    store = world.store
    q = store.q
    with contextlib.closing(store.connect()) as conn:
        cols = "entry, entry_hash, event_id, leaf_hash"
        rows = {
            k: conn.execute(q(f"SELECT {cols} FROM ledger_entries WHERE idx = ?"), (k,)).fetchone()
            for k in (at, at + 1)
        }
        conn.execute(q("UPDATE ledger_entries SET event_id = -1 WHERE idx = ?"), (at,))
        for target, source in ((at + 1, at), (at, at + 1)):
            conn.execute(
                q(
                    "UPDATE ledger_entries SET entry = ?, entry_hash = ?, event_id = ?, "
                    "leaf_hash = ? WHERE idx = ?"
                ),
                (*rows[source], target),
            )
    return store


def _set_head(conn: Any, store: Store) -> None:
    """Make the head row (size, last hash, right edge) agree with the entries table."""
    rows = conn.execute("SELECT entry_hash, leaf_hash FROM ledger_entries ORDER BY idx").fetchall()
    tree = integrate(0, [], [bytes(r[1]) for r in rows])
    assert not tree.nodes, "the world is smaller than one tile: no stored nodes to redo"
    last = bytes(rows[-1][0]) if rows else bytes.fromhex(GENESIS_PREV)
    conn.execute(
        store.q("UPDATE ledger_head SET size = ?, head_hash = ?, edge = ? WHERE id = 1"),
        (tree.size, last, pack_edge(tree.edge)),
    )


def truncate(world: World, at: int, stack: contextlib.ExitStack) -> Store:
    """Cut the log to ``at`` entries, consistently: entries, event rows, tree, checkpoints, head."""
    store = world.store
    q = store.q
    with contextlib.closing(store.connect()) as conn:
        doomed = [
            r[0]
            for r in conn.execute(
                q("SELECT event_id FROM ledger_entries WHERE idx >= ?"), (at,)
            ).fetchall()
        ]
        conn.execute(q("DELETE FROM ledger_entries WHERE idx >= ?"), (at,))
        for event_id in doomed:
            conn.execute(q(f"DELETE FROM ledger_events WHERE {store.event_key} = ?"), (event_id,))
        conn.execute(q("DELETE FROM ledger_checkpoints WHERE size > ?"), (at,))
        _set_head(conn, store)
    return store


def rewrite(world: World, at: int, stack: contextlib.ExitStack) -> Store:
    """Backdate entry ``at`` and recompute every hash after it (entries, event rows, head);
    the signed checkpoints are left as they were (no key)."""
    store = world.store
    q = store.q
    key = store.event_key
    with contextlib.closing(store.connect()) as conn:
        prev = hashlib.sha256(_entry(conn, store, at - 1)[0]).hexdigest()
        for index in range(at, GROWN):
            entry, event_id = _entry(conn, store, index)
            fields = orjson.loads(entry)
            if index == at:
                fields["time"] = fields["time"].replace("20", "19", 1)
            fields["prev"] = prev
            new = canonical(fields)
            prev = hashlib.sha256(new).hexdigest()
            conn.execute(
                q(
                    "UPDATE ledger_entries SET entry = ?, entry_hash = ?, leaf_hash = ? "
                    "WHERE idx = ?"
                ),
                (new, hashlib.sha256(new).digest(), hashlib.sha256(b"\x00" + new).digest(), index),
            )
            envelope = {k: fields[k] for k in ("actor", "data", "time")}
            conn.execute(
                q(f"UPDATE ledger_events SET state = ? WHERE {key} = ?"),
                (canonical(envelope), event_id),
            )
        _set_head(conn, store)
    return store


def _restored(world: World, stack: contextlib.ExitStack) -> Store:
    """A store of the same kind restored from the old backup, with the log's signing key
    and witness: what the service runs on after the restore."""
    made = make_store(world.store.kind, world.tmp / f"restored-{uuid.uuid4().hex[:8]}")
    empty = next(made)
    stack.callback(made.close)  # drops the PostgreSQL schema
    settings = empty.settings.model_copy(
        update={
            "signing_key_file": world.store.settings.signing_key_file,
            "witnesses": world.store.settings.witnesses,
        }
    )
    target = Store(empty.kind, settings, empty.schema)
    restore(target.settings, world.backup)
    return target


def restore_backup(world: World, at: int, stack: contextlib.ExitStack) -> Store:
    """Put the old backup (size ``at``) back in service."""
    target = _restored(world, stack)
    with contextlib.closing(target.connect()) as conn:
        assert conn.execute("SELECT size FROM ledger_head").fetchone()[0] == at
    return target


def _carry_on(world: World, store: Store, label: str) -> None:
    """The operator records new entries with the log's own key until the log is larger than
    anything published; the app submits each checkpoint to the witness as usual."""
    app = LedgerApplication(store.settings)
    try:
        with contextlib.closing(store.connect()) as conn:
            size = conn.execute("SELECT size FROM ledger_head").fetchone()[0]
        receipts = grow(app, world.process_id, label, GROWN + 1 - size)
    finally:
        app.close()
    # The witness that cosigned the real log did not cosign any of the rewritten ones.
    with pytest.raises(CheckpointError):
        verify_cosignatures(
            receipts[-1].checkpoint, [CosignatureVerifier.from_vkey(world.witness.vkey)], 1
        )


def resign(world: World, at: int, stack: contextlib.ExitStack) -> Store:
    """Operator: cut the log back to ``at`` entries, then record other entries, signed."""
    store = truncate(world, at, stack)
    _carry_on(world, store, "forged")
    return store


def restore_and_carry_on(world: World, at: int, stack: contextlib.ExitStack) -> Store:
    """Operator: restore the old backup, then carry on recording, signed."""
    target = restore_backup(world, at, stack)
    _carry_on(world, target, "after")
    return target


TAMPERINGS: dict[str, Callable[[World, int, contextlib.ExitStack], Store]] = {
    "edit": edit_entry,
    "event": edit_event,
    "delete": delete,
    "insert": insert,
    "swap": swap,
    "truncate": truncate,
    "rewrite": rewrite,
    "restore": restore_backup,
    "resign": resign,
    "carry-on": restore_and_carry_on,
}


# --------------------------------------------------------------------------------------
# The detectors
# --------------------------------------------------------------------------------------


def verify_outcome(
    store: Store, vkey: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> str | tuple[int, str]:
    """``ledger verify --json --key``: OK, or (index, kind)."""
    status, output = cli(store, monkeypatch, capsys, "verify", "--json", "--key", vkey)
    report = orjson.loads(output.splitlines()[0])
    assert (status == 0) == report["ok"], output
    if report["ok"]:
        return OK
    return report["damage"]["index"], report["damage"]["kind"]


def audit_outcome(source: Any, world: World) -> str:
    """Audit ``source`` from (a copy of) the kept state; the state is unchanged on failure."""
    state = world.tmp / f"state-{uuid.uuid4().hex[:8]}"
    shutil.copyfile(world.state, state)
    kept = state.read_bytes()
    try:
        result = audit(source, vkey=world.vkey, state_path=state)
    except AuditError as exc:
        assert state.read_bytes() == kept, "a failed audit changed the kept state"
        return _audit_kind(exc)
    assert result.old_size == AUDITED
    return OK


def _audit_kind(exc: AuditError) -> str:
    text = str(exc)
    if isinstance(exc, ConsistencyError):
        return next((k for k in ("rollback", "fork", "origin") if text.startswith(k)), text)
    if isinstance(exc, EntryError):
        return f"entry@{exc.index}"
    if isinstance(exc, RootMismatchError):
        return "root"
    if isinstance(exc, SourceError):
        status = re.search(r"HTTP (\d+)", text)
        return f"source({status[1] if status else text})"
    return f"{type(exc).__name__}: {text}"


def log_api(store: Store, vkey: str) -> FastAPI:
    """The log's public read routes (``api.routes.log``, exactly as ``create_app`` mounts
    them: /checkpoint, /entries, /proof/...) over the store, without the rest of the
    service (read models, writes, pages), which would only slow each case down."""
    app = FastAPI()
    app.state.settings = store.settings
    app.state.verifier_key = vkey
    app.state.tile_cache = TileCache()
    app.state.readers = Readers(store.settings)
    install_problem_handlers(app)
    app.include_router(log_routes.router)
    return app


def http_audit(
    store: Store, world: World, monkeypatch: pytest.MonkeyPatch, capsys: Any, app: Any = None
) -> str:
    """The auditor against the tampered store's HTTP API: ``audit(HttpSource)`` for the kind
    of failure, and ``ledger audit <url>`` (in process) for what the command says."""
    world.api.app = app or log_api(store, world.vkey)
    try:
        outcome = audit_outcome(HttpSource(world.api_url), world)
        state = world.tmp / f"cli-state-{uuid.uuid4().hex[:8]}"
        shutil.copyfile(world.state, state)
        kept = state.read_bytes()
        args = ("audit", world.api_url, "--key", world.vkey, "--state", str(state))
        status, output = cli(store, monkeypatch, capsys, *args)
    finally:
        if app is None:
            world.api.app.state.readers.close()
        world.api.app = None
    if outcome == OK:
        assert status == 0, output
        assert f"grew from {AUDITED} to" in output, output
    else:
        assert status == 1, output
        assert "ledger audit: FAILED: " in output, output
        if outcome == HTTP_500:  # the service says why, and the auditor passes it on
            assert "the database was changed; run `ledger verify`" in output, output
        assert output.rstrip().endswith("(state left unchanged)"), output
        assert state.read_bytes() == kept
    return outcome


def bundle_audit(store: Store, world: World, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> str:
    """``ledger export --bundle`` from the tampered store, then audit the bundle."""
    bundle = world.tmp / f"tampered-{uuid.uuid4().hex[:8]}.bundle"
    status, output = cli(store, monkeypatch, capsys, "export", "--bundle", str(bundle))
    if status != 0:
        assert "does not export cleanly" in output, output
        assert not bundle.exists()
        return REFUSED
    return audit_outcome(BundleSource(bundle), world)


def witness_outcome(store: Store, world: World) -> str:
    """Submit the store's latest checkpoint as the log's client does: ``old 0``, then, told
    the witness's size (409), once more from that size with a proof from this store's tree.
    "cosigned" (the cosignature verified), or the statuses of the refusals."""
    reader = open_reader(store.settings)
    try:
        size, _, note = reader.checkpoint()  # type: ignore[misc]
        before = world.witness.size()
        statuses: list[str] = []
        old = 0
        for _ in range(2):
            proof = ProofBuilder(reader).consistency(old, size) if 0 < old <= size else []
            try:
                answer = submit_checkpoint(world.witness.url, note, old, proof)
            except WitnessError as exc:
                statuses.append(str(exc.status))
                break
            if isinstance(answer, int):
                statuses.append("409")
                old = answer
                continue
            verifier = CosignatureVerifier.from_vkey(world.witness.vkey)
            verify_cosignatures(add_signatures(note, answer), [verifier], 1)
            return "cosigned"
    finally:
        reader.close()
    assert world.witness.size() == before, "a refusing witness moved"
    return "/".join(statuses)


# --------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------


@dataclass
class Base:
    world: World
    witness_record: bytes  # the witness's state file once it cosigned GROWN


@pytest.fixture(scope="module", params=BACKENDS)
def base(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Base]:
    """The world, built once per store kind, with its witness serving for the whole module."""
    tmp = tmp_path_factory.mktemp(request.param)
    for store in make_store(request.param, tmp):
        log_signer = load_signer(store.settings)
        assert log_signer is not None
        signer = CosignatureSigner.generate("witness.test")
        app = create_witness_app(
            signer=signer, logs={LOG_NAME: log_signer.verifier_key()}, state_dir=tmp / "witness"
        )
        api = Switch()
        api_server = Served(api, lifespan="off")
        try:
            with serving(app) as url:
                witness = Witness(url, signer.verifier_key(), tmp / "witness")
                world = build_world(store, tmp, witness, api, api_server.url)
                yield Base(world, witness.path().read_bytes())
        finally:
            api_server.stop()


@pytest.fixture
def world(base: Base, tmp_path: Path) -> Iterator[World]:
    """A private copy of the world: its store, the auditor's state; the witness reset."""
    shared = base.world
    shared.witness.path().write_bytes(base.witness_record)
    state = tmp_path / "auditor.state"
    shutil.copyfile(shared.state, state)
    for store in copy_store(shared.store, tmp_path):
        yield World(
            store,
            shared.vkey,
            shared.witness,
            state,
            shared.backup,
            shared.process_id,
            tmp_path,
            shared.api,
            shared.api_url,
        )


@pytest.mark.parametrize("row", MATRIX, ids=[row.id for row in MATRIX])
def test_tamper_matrix(
    row: Row, world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One tampering; every detector says what the matrix row says."""
    with contextlib.ExitStack() as stack:
        tampered = TAMPERINGS[row.tamper](world, row.at, stack)
        observed = Row(
            row.id,
            row.tamper,
            row.at,
            verify=verify_outcome(tampered, world.vkey, monkeypatch, capsys),
            audit=http_audit(tampered, world, monkeypatch, capsys),
            bundle=bundle_audit(tampered, world, monkeypatch, capsys),
            witness=witness_outcome(tampered, world),
        )
    assert observed == row


def test_a_fresh_auditor_catches_what_the_kept_state_cannot(world: World, tmp_path: Path) -> None:
    """C1 in the audited prefix: the kept state passes it (see MATRIX), a new auditor not."""
    edit_entry(world, OLD, contextlib.ExitStack())
    world.api.app = log_api(world.store, world.vkey)
    try:
        with pytest.raises(EntryError) as caught:
            audit(HttpSource(world.api_url), vkey=world.vkey, state_path=tmp_path / "fresh.state")
    finally:
        world.api.app.state.readers.close()
        world.api.app = None
    assert caught.value.index == OLD + 1
    assert not (tmp_path / "fresh.state").exists()


def test_the_whole_service_answers_a_deleted_entry_with_a_500(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The matrix serves only the log routes; ``create_app`` itself answers the same (C3)."""
    from api.app import create_app

    delete(world, TAIL, contextlib.ExitStack())
    app = create_app(world.store.settings)
    with serving(app):  # runs its lifespan (read models, the write side); we use the Switch
        assert http_audit(world.store, world, monkeypatch, capsys, app) == HTTP_500
