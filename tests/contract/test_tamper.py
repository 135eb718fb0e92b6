"""A database insider's single change is found by verify, at the right index, named right."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import orjson
import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import LedgerApplication
from ledger.chain import ChainReport, DamageKind
from ledger.encoding import GENESIS_PREV, canonical, encode_entry
from ledger.storage import open_reader
from ledger.verify import verify_log, verify_segmented
from tests.conftest import PG_URL, Store
from tests.helpers import OFFICIAL, record_sample

TABLES = ("ledger_events", "ledger_entries", "ledger_head", "ledger_nodes", "ledger_checkpoints")
MUTATIONS = ["edit_byte", "edit_event", "delete", "insert", "swap", "truncate"]


@contextmanager
def work_copy(base: Store, tmp: Path) -> Iterator[Store]:
    """A throwaway copy of the base store to damage."""
    if base.kind == "sqlite":
        data_dir = tmp / uuid.uuid4().hex
        data_dir.mkdir()
        settings = replace_settings(base, data_dir=data_dir)
        src = sqlite3.connect(base.settings.sqlite_path)
        dst = sqlite3.connect(settings.sqlite_path)
        src.backup(dst)
        src.close()
        dst.close()
        yield Store("sqlite", settings)
        return
    schema = f"w_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        for table in TABLES:
            conn.execute(
                f"CREATE TABLE {schema}.{table} (LIKE {base.schema}.{table} INCLUDING ALL)"
            )
            conn.execute(f"INSERT INTO {schema}.{table} SELECT * FROM {base.schema}.{table}")
    try:
        yield Store("postgresql", replace_settings(base, pg_schema=schema), schema)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def replace_settings(store: Store, **changes: object):  # type: ignore[no-untyped-def]
    return store.settings.model_copy(update=changes)


def entry_row(conn, store: Store, index: int) -> tuple[bytes, int]:  # type: ignore[no-untyped-def]
    row = conn.execute(
        store.q("SELECT entry, event_id FROM ledger_entries WHERE idx = ?"), (index,)
    ).fetchone()
    return bytes(row[0]), row[1]


def apply(store: Store, mutation: str, n: int, data: st.DataObject) -> tuple[int, DamageKind]:
    """Damage the store with one SQL change; return where and what verify must report."""
    conn = store.connect()
    q = store.q
    key = store.event_key
    try:
        if mutation == "edit_byte":
            i = data.draw(st.integers(0, n - 1), label="index")
            entry, _ = entry_row(conn, store, i)
            pos = data.draw(st.integers(0, len(entry) - 1), label="byte")
            flip = data.draw(st.integers(1, 255), label="xor")
            damaged = bytearray(entry)
            damaged[pos] ^= flip
            conn.execute(
                q("UPDATE ledger_entries SET entry = ? WHERE idx = ?"), (bytes(damaged), i)
            )
            return i, DamageKind.CHANGED_BYTES
        if mutation == "edit_event":
            i = data.draw(st.integers(0, n - 1), label="index")
            how = data.draw(st.sampled_from(["state", "topic", "version"]), label="how")
            _, event_id = entry_row(conn, store, i)
            if how == "state":
                state = conn.execute(
                    q(f"SELECT state FROM ledger_events WHERE {key} = ?"), (event_id,)
                ).fetchone()[0]
                envelope = orjson.loads(bytes(state))
                envelope["data"]["tampered"] = True
                conn.execute(
                    q(f"UPDATE ledger_events SET state = ? WHERE {key} = ?"),
                    (canonical(envelope), event_id),
                )
            elif how == "topic":
                conn.execute(
                    q(
                        f"UPDATE ledger_events SET topic = CASE WHEN topic = "
                        f"'meeting.held' THEN 'process.phase_started' ELSE 'meeting.held' "
                        f"END WHERE {key} = ?"
                    ),
                    (event_id,),
                )
            else:
                conn.execute(
                    q(
                        f"UPDATE ledger_events SET originator_version = "
                        f"originator_version + 1000 WHERE {key} = ?"
                    ),
                    (event_id,),
                )
            return i, DamageKind.EVENT_MISMATCH
        if mutation == "delete":
            i = data.draw(st.integers(0, n - 1), label="index")
            _, event_id = entry_row(conn, store, i)
            conn.execute(q("DELETE FROM ledger_entries WHERE idx = ?"), (i,))
            conn.execute(q(f"DELETE FROM ledger_events WHERE {key} = ?"), (event_id,))
            return (i, DamageKind.MISSING_ENTRY) if i < n - 1 else (i, DamageKind.TRUNCATED)
        if mutation == "insert":
            i = data.draw(st.integers(0, n), label="index")
            prev = (
                GENESIS_PREV
                if i == 0
                else hashlib.sha256(entry_row(conn, store, i - 1)[0]).hexdigest()
            )
            conn.execute(q("UPDATE ledger_entries SET idx = -(idx + 1) WHERE idx >= ?"), (i,))
            conn.execute("UPDATE ledger_entries SET idx = -idx WHERE idx < 0")
            forged_id = uuid.uuid4()
            actor = {"id": "insider", "org": "", "role": "admin"}
            payload = {"phase_id": "forged", "summary": "", "title": "Forged phase"}
            time = "2015-06-01T00:00:00.000000Z"
            state = canonical({"actor": actor, "data": payload, "time": time})
            oid = forged_id.hex if store.kind == "sqlite" else forged_id
            cur = conn.execute(
                q(
                    "INSERT INTO ledger_events (originator_id, originator_version, topic, state) "
                    "VALUES (?, 1, 'process.phase_started', ?)"
                    + ("" if store.kind == "sqlite" else " RETURNING notification_id")
                ),
                (oid, state),
            )
            event_id = cur.lastrowid if store.kind == "sqlite" else cur.fetchone()[0]
            forged = encode_entry(
                index=i,
                prev=prev,
                type="process.phase_started",
                subject={"kind": "process", "id": str(forged_id), "version": 1},
                time=time,
                actor=actor,
                data=payload,
            )
            conn.execute(
                q(
                    "INSERT INTO ledger_entries (idx, event_id, entry, entry_hash, leaf_hash) "
                    "VALUES (?, ?, ?, ?, ?)"
                ),
                (
                    i,
                    event_id,
                    forged,
                    hashlib.sha256(forged).digest(),
                    hashlib.sha256(b"\x00" + forged).digest(),
                ),
            )
            return i, DamageKind.INSERTED_ENTRY
        if mutation == "swap":
            i = data.draw(st.integers(0, n - 2), label="i")
            j = data.draw(st.integers(i + 1, n - 1), label="j")
            rows = {
                k: conn.execute(
                    q(
                        "SELECT entry, entry_hash, event_id, leaf_hash FROM ledger_entries "
                        "WHERE idx = ?"
                    ),
                    (k,),
                ).fetchone()
                for k in (i, j)
            }
            conn.execute(q("UPDATE ledger_entries SET event_id = -1 WHERE idx = ?"), (i,))
            for target, source in ((j, i), (i, j)):
                conn.execute(
                    q(
                        "UPDATE ledger_entries SET entry = ?, entry_hash = ?, event_id = ?, "
                        "leaf_hash = ? WHERE idx = ?"
                    ),
                    (*rows[source], target),
                )
            return i, DamageKind.REORDERED
        k = data.draw(st.integers(1, n), label="count")
        doomed = [
            r[0]
            for r in conn.execute(
                q("SELECT event_id FROM ledger_entries WHERE idx >= ?"), (n - k,)
            ).fetchall()
        ]
        conn.execute(q("DELETE FROM ledger_entries WHERE idx >= ?"), (n - k,))
        for event_id in doomed:
            conn.execute(q(f"DELETE FROM ledger_events WHERE {key} = ?"), (event_id,))
        return n - k, DamageKind.TRUNCATED
    finally:
        conn.close()


def verify_both_ways(store: Store) -> list[ChainReport]:
    """One streaming pass, and segments of 4 joined (the parallel path, on threads)."""
    reader = open_reader(store.settings)
    try:
        single = verify_log(reader)
        with ThreadPoolExecutor(2) as pool:
            segmented = verify_segmented(store.settings, reader, pool, span=4)
    finally:
        reader.close()
    return [single, segmented]


def test_any_single_sql_change_is_found_at_its_index(store: Store, tmp_path: Path) -> None:
    """Edit, event-row edit, delete, insert, swap or truncate: verify names index and kind."""
    app = LedgerApplication(store.settings)
    sample = record_sample(app, amendments=6)
    app.close()
    n = len(sample.receipts)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutation=st.sampled_from(MUTATIONS), data=st.data())
    def check(mutation: str, data: st.DataObject) -> None:
        with work_copy(store, tmp_path) as damaged:
            expected = apply(damaged, mutation, n, data)
            for report in verify_both_ways(damaged):
                assert report.damage is not None, f"{mutation} went unnoticed"
                assert (report.damage.index, report.damage.kind) == expected, str(report.damage)
                assert report.size == expected[0]

    check()


def test_each_mutation_kind_is_covered(store: Store, tmp_path: Path) -> None:
    """Every mutation kind at the first, a middle and the last index is detected."""
    app = LedgerApplication(store.settings)
    n = len(record_sample(app, amendments=2).receipts)
    app.close()

    class Fixed:
        """Stands in for hypothesis' data object with chosen draws."""

        def __init__(self, values: list[object]) -> None:
            self.values = values

        def draw(self, strategy: object, label: str = "") -> object:
            return self.values.pop(0)

    cases: list[tuple[str, list[object]]] = []
    for i in (0, n // 2, n - 1):
        cases += [
            ("edit_byte", [i, 5, 1]),
            ("edit_event", [i, "state"]),
            ("delete", [i]),
            ("insert", [i]),
            ("truncate", [n - i]),
        ]
        if i < n - 1:
            cases.append(("swap", [i, i + 1]))
    cases.append(("insert", [n]))
    for mutation, draws in cases:
        with work_copy(store, tmp_path) as damaged:
            expected = apply(damaged, mutation, n, Fixed(list(draws)))  # type: ignore[arg-type]
            for report in verify_both_ways(damaged):
                assert report.damage is not None, mutation
                assert (report.damage.index, report.damage.kind) == expected, (mutation, draws)


def test_stored_tree_and_checkpoint_changes_are_found(store: Store, tmp_path: Path) -> None:
    """A changed leaf hash, tree node or checkpoint row is named as what it is."""
    app = LedgerApplication(store.settings)
    sample = record_sample(app, amendments=1)
    for k in range(300 - len(sample.receipts)):
        app.add_strand(sample.process_id, strand_id=f"s{k}", title=f"Strand {k}", actor=OFFICIAL)
    app.close()
    cases = [
        (
            "UPDATE ledger_entries SET leaf_hash = entry_hash WHERE idx = 7",
            7,
            DamageKind.TREE_MISMATCH,
        ),
        (
            "UPDATE ledger_nodes SET hash = ? WHERE level = 1 AND idx = 0",
            255,
            DamageKind.TREE_MISMATCH,
        ),
        (
            "UPDATE ledger_checkpoints SET root = ? WHERE size = 300",
            300,
            DamageKind.CHECKPOINT_MISMATCH,
        ),
        ("DELETE FROM ledger_checkpoints WHERE size = 300", 299, DamageKind.CHECKPOINT_MISMATCH),
    ]
    for sql, index, kind in cases:
        with work_copy(store, tmp_path) as damaged:
            conn = damaged.connect()
            conn.execute(damaged.q(sql), (b"\x07" * 32,) if "?" in sql else ())
            conn.close()
            for report in verify_both_ways(damaged):
                assert report.damage is not None, sql
                assert (report.damage.index, report.damage.kind) == (index, kind), sql
