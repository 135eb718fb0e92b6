"""``ledger verify`` checks everything the service reads, not only the log (both stores).

Each test records a process (the demo, officials' tokens, a revocation, an idempotent
write, stored documents, an embargo and a Chatham House meeting), lets the live read models
catch up, then makes one change an insider could make with SQL and runs the real CLI: the
change is found with its own damage kind, naming the table (and view) and row, exit 1,
while the log itself still verifies. An untouched store passes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.demo import record_demo
from ledger.keys import create_master_key_file
from ledger.storage import open_reader
from ledger.storage.side import SideStore
from projections import all_views
from projections.check import SCRATCH_PREFIX, check_read_models
from projections.db import connect_views
from projections.proposals import ProposalsView
from projections.runner import Runner
from tests.conftest import PG_URL, Store
from tests.contract.test_rebuild_speed_equivalence import contents

ROOT = Path(__file__).resolve().parents[2]
ADMIN = Actor("a.admin", "admin", "")
CLERK = Actor("c.clerk", "recorder", "")


@dataclass
class Recorded:
    """What the fixture recorded, for the attacks to aim at."""

    store: Store
    token_id: str  # a recorder's token, in use
    revoked_id: str  # a token that was revoked
    holder: Actor  # the in-use token's holder as the log names them
    document: str  # sha256 of a stored (published) document
    embargoed: str  # publication id of an embargoed publication
    confidential: str  # a Chatham House meeting held
    org_ids: list[str]

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self.store.connect()
        try:
            cursor = conn.execute(self.store.q(statement), params)
            return [tuple(r) for r in cursor.fetchall()] if cursor.description else []
        finally:
            conn.close()

    def one(self, statement: str, params: tuple[Any, ...] = ()) -> Any:
        return self.sql(statement, params)[0][0]


def build_views(store: Store) -> None:
    """What a serving process does: set the read models up and catch them up."""
    db = connect_views(store.settings)
    log = open_reader(store.settings, snapshot=False)
    try:
        runner = Runner(db, log, all_views())
        runner.setup()
        runner.catch_up()
    finally:
        db.close()
        log.close()


def verify(store: Store, *args: str) -> tuple[int, dict[str, Any], str]:
    """Run ``ledger verify --json`` on the store; (exit status, JSON, stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "verify", "--json", *args],
        cwd=ROOT,
        env=store.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def record(store: Store) -> Recorded:
    app = LedgerApplication(store.settings)
    side = SideStore(store.settings)
    try:
        record_demo(app)
        orgs = [
            app.register_organisation(name=name, org_kind="civil_society", actor=ADMIN).subject_id
            for name in ("Fictional Data Trust", "Imaginary Councils Forum", "Example Group")
        ]
        process = app.start_process(title="Beside", summary="Verify beside", actor=ADMIN)
        process_id = process.subject_id
        receipt, _ = app.issue_token(principal="r.tester", org=orgs[0], role="recorder",
                                     actor=ADMIN)  # fmt: skip
        token_id = receipt.subject_id
        revoked, _ = app.issue_token(principal="q.former", org=orgs[1], role="recorder",
                                     actor=ADMIN)  # fmt: skip
        app.revoke_token(revoked.subject_id, reason="left the team", actor=ADMIN)
        holder = Actor("r.tester", "recorder", orgs[0])
        # An idempotent write by the token's holder (as the HTTP API makes it).
        with app.idempotent(token_id, "key-1", "f" * 64):
            app.register_organisation(name="Keyed Organisation", org_kind="academic",
                                      actor=holder)  # fmt: skip
        # A published document, stored by its hash; an embargoed one; a confidential meeting.
        content = b"Minutes of an imaginary meeting.\n"
        document = hashlib.sha256(content).hexdigest()
        side.put_document(document, "text/plain", content)
        app.publish(process_id=process_id, pub_kind="minutes", title="Minutes", sha256=document,
                    size=len(content), media_type="text/plain", actor=ADMIN)  # fmt: skip
        secret = b"Draft report under embargo.\n"
        side.put_document(hashlib.sha256(secret).hexdigest(), "text/plain", secret)
        embargoed = app.embargo_publication(
            process_id=process_id, pub_kind="report", title="Report", document=secret,
            release_at="2030-01-01T00:00:00Z", actor=ADMIN,
        ).subject_id  # fmt: skip
        meeting = app.schedule_meeting(
            process_id=process_id, title="Closed round table", starts_at="2015-02-01T10:00:00Z",
            disclosure="chatham_house", convenor_org=orgs[0], actor=ADMIN,
        ).subject_id  # fmt: skip
        app.record_meeting_held(meeting, attending_orgs=orgs, held_at="2015-02-01T10:00:00Z",
                                actor=ADMIN)  # fmt: skip
    finally:
        side.close()
        app.close()
    return Recorded(store, token_id, revoked.subject_id, holder, document, embargoed, meeting,
                    orgs)  # fmt: skip


@pytest.fixture
def recorded(store: Store) -> Recorded:
    """A store with everything recorded and its live read models caught up."""
    found = record(store)
    build_views(store)
    return found


def scratch_left(store: Store) -> list[str]:
    """Scratch copies a verify left behind (there must be none)."""
    if store.kind == "sqlite":
        return [
            p.name for p in store.settings.data_dir.iterdir() if p.name.startswith(SCRATCH_PREFIX)
        ]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'ledger\\_verify\\_%'"
        ).fetchall()
    return [str(r[0]) for r in rows]


def test_an_untouched_store_verifies_before_and_after_the_views_caught_up(store: Store) -> None:
    found = record(store)
    status, report, _ = verify(found.store)
    assert status == 0, report
    assert report["ok"]
    assert report["log_ok"]
    assert report["beside"]["ok"]
    assert set(report["beside"]["not_built"]) == {v.name for v in all_views()}
    assert "ledger_tokens" in report["beside"]["checked"]

    build_views(store)
    db = connect_views(store.settings)
    before = contents(db)
    status, report, _ = verify(found.store)
    assert status == 0, report
    assert report["beside"]["not_built"] == []
    checked = set(report["beside"]["checked"])
    assert {"pv_proposals", "pv_meetings", "pv_entries", "ledger_documents"} <= checked
    # The live views are untouched, and no scratch copy is left behind.
    assert contents(db) == before
    db.close()
    assert scratch_left(store) == []


Attack = Callable[[Recorded], None]


def rename_sponsor(r: Recorded) -> None:
    r.sql("UPDATE pv_proposals SET sponsor_org = ? WHERE valid_to IS NULL", (r.org_ids[2],))


def revert_enacted_and_drop_history(r: Recorded) -> None:
    pid, at = r.sql("SELECT id, valid_from FROM pv_proposals WHERE status = 'enacted' "
                    "AND valid_to IS NULL ORDER BY id LIMIT 1")[0]  # fmt: skip
    r.sql("UPDATE pv_proposals SET status = 'recommended' WHERE id = ? AND valid_to IS NULL",
          (pid,))  # fmt: skip
    r.sql("DELETE FROM pv_proposal_timeline WHERE proposal_id = ? AND idx >= ?", (pid, at))


def drop_a_section(r: Recorded) -> None:
    pid, version, sections = r.sql(
        "SELECT proposal_id, text_version, sections FROM pv_versions "
        "ORDER BY proposal_id, text_version DESC LIMIT 1"
    )[0]
    kept = json.dumps(json.loads(sections)[:-1], separators=(",", ":"))
    r.sql("UPDATE pv_versions SET sections = ? WHERE proposal_id = ? AND text_version = ?",
          (kept, pid, version))  # fmt: skip


def replace_attendees(r: Recorded) -> None:
    mid = r.one("SELECT id FROM pv_meetings WHERE valid_to IS NULL AND attending_orgs "
                "IS NOT NULL AND attending_orgs != '[]' ORDER BY id LIMIT 1")  # fmt: skip
    r.sql("UPDATE pv_meetings SET attending_orgs = ? WHERE id = ? AND valid_to IS NULL",
          (json.dumps([r.org_ids[2]]), mid))  # fmt: skip


def token_becomes_admin(r: Recorded) -> None:
    r.sql("UPDATE ledger_tokens SET role = 'admin' WHERE token_id = ?", (r.token_id,))


def token_without_entry(r: Recorded) -> None:
    idx = r.one("SELECT MAX(idx) FROM ledger_entries")
    r.sql(
        "INSERT INTO ledger_tokens (token_id, salt, hash, principal, org, role, idx) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (str(uuid.uuid4()), secrets.token_bytes(16), secrets.token_bytes(32), "x.intruder",
         r.org_ids[0], "admin", idx),
    )  # fmt: skip


def revive_revoked(r: Recorded) -> None:
    r.sql("DELETE FROM ledger_token_revocations WHERE token_id = ?", (r.revoked_id,))


def swap_document(r: Recorded) -> None:
    r.sql("UPDATE ledger_documents SET content = ? WHERE sha256 = ?",
          (b"Minutes of another meeting.\n", r.document))  # fmt: skip


def idempotency_to_another_entry(r: Recorded) -> None:
    # The revocation entry, by the admin: its own transaction's tree size, so only the
    # actor gives it away.
    idx = r.one("SELECT MAX(idx) FROM ledger_token_revocations")
    size = r.one("SELECT MIN(size) FROM ledger_checkpoints WHERE size > ?", (idx,))
    r.sql("UPDATE ledger_idempotency SET idx = ?, tree_size = ?", (idx, size))


def change_embargo_salt(r: Recorded) -> None:
    r.sql("UPDATE ledger_embargo_salts SET salt = ? WHERE publication_id = ?",
          (secrets.token_bytes(32), r.embargoed))  # fmt: skip


def change_attendance_salt(r: Recorded) -> None:
    r.sql("UPDATE ledger_attendance_salts SET salt = ? WHERE meeting_id = ? AND org_id = ?",
          (secrets.token_bytes(32), r.confidential, r.org_ids[1]))  # fmt: skip


# attack, damage kind, view (None: a side table), table, something the row names
ATTACKS: list[tuple[Attack, str, str | None, str, Callable[[Recorded], str]]] = [
    (rename_sponsor, "read model differs from a rebuild", "proposals", "pv_proposals",
     lambda r: "sponsor_org"),
    (revert_enacted_and_drop_history, "read model differs from a rebuild", "proposals",
     "pv_proposals", lambda r: "status is 'recommended' in the stored view"),
    (drop_a_section, "read model differs from a rebuild", "proposals", "pv_versions",
     lambda r: "sections"),
    (replace_attendees, "read model differs from a rebuild", "meetings", "pv_meetings",
     lambda r: "attending_orgs"),
    (token_becomes_admin, "token row differs from its entry", None, "ledger_tokens",
     lambda r: r.token_id),
    (token_without_entry, "token row with no entry", None, "ledger_tokens",
     lambda r: "x.intruder"),
    (revive_revoked, "revocation entry with no row", None, "ledger_token_revocations",
     lambda r: r.revoked_id),
    (swap_document, "document bytes do not hash to their name", None, "ledger_documents",
     lambda r: r.document),
    (idempotency_to_another_entry, "idempotency row does not match its entry", None,
     "ledger_idempotency", lambda r: "r.tester"),
    (change_embargo_salt, "embargo salt does not open its commitment", None,
     "ledger_embargo_salts", lambda r: r.embargoed),
    (change_attendance_salt, "attendance salt does not open its commitment", None,
     "ledger_attendance_salts", lambda r: r.org_ids[1]),
]  # fmt: skip


def _found(report: dict[str, Any], kind: str, view: str | None, table: str) -> dict[str, Any]:
    damages: list[dict[str, Any]] = report["beside"]["damages"]
    hits = [d for d in damages if d["kind"] == kind and d["table"] == table and d["view"] == view]
    assert hits, damages
    return hits[0]


def _attack(recorded: Recorded, attack: Attack, kind: str, view: str | None, table: str,
            names: Callable[[Recorded], str]) -> dict[str, Any]:  # fmt: skip
    attack(recorded)
    status, report, _stderr = verify(recorded.store)
    assert status == 1, report
    assert report["ok"] is False
    assert report["log_ok"] is True
    assert report["beside"]["ok"] is False
    damage = _found(report, kind, view, table)
    assert names(recorded) in f"{damage['row']} {damage['detail']}", damage
    assert report["damage"]["kind"] in {d["kind"] for d in report["beside"]["damages"]}
    assert scratch_left(recorded.store) == []
    # The whole result is what monitoring sees.
    assert recorded.one("SELECT ok FROM ledger_verifications ORDER BY finished DESC LIMIT 1") == 0
    # Other kinds of damage are not reported for a change of one kind.
    assert {d["kind"] for d in report["beside"]["damages"]} == {kind}, report["beside"]
    return damage


def test_renamed_sponsor_in_the_proposals_view_is_found(recorded: Recorded) -> None:
    damage = _attack(recorded, *ATTACKS[0])
    assert damage["index"] is not None  # the entry the row derives from
    assert "a rebuild gives" in damage["detail"]


def test_reverted_status_and_deleted_history_rows_are_found(recorded: Recorded) -> None:
    _attack(recorded, *ATTACKS[1])
    _status, report, _ = verify(recorded.store)
    timeline = _found(report, "read model differs from a rebuild", "proposals",
                      "pv_proposal_timeline")  # fmt: skip
    assert "missing" in timeline["detail"]


def test_deleted_section_of_current_text_is_found(recorded: Recorded) -> None:
    _attack(recorded, *ATTACKS[2])


def test_replaced_meeting_attendees_are_found(recorded: Recorded) -> None:
    _attack(recorded, *ATTACKS[3])


def test_token_role_changed_to_admin_is_found(recorded: Recorded) -> None:
    damage = _attack(recorded, *ATTACKS[4])
    assert "role is 'admin', its entry says 'recorder'" in damage["detail"]


def test_token_row_with_no_entry_is_found(recorded: Recorded) -> None:
    _attack(recorded, *ATTACKS[5])


def test_deleted_revocation_row_is_found(recorded: Recorded) -> None:
    damage = _attack(recorded, *ATTACKS[6])
    assert "works again" in damage["detail"]


def test_swapped_document_bytes_are_found(recorded: Recorded) -> None:
    _attack(recorded, *ATTACKS[7])


def test_idempotency_row_pointed_at_another_entry_is_found(recorded: Recorded) -> None:
    damage = _attack(recorded, *ATTACKS[8])
    assert "a.admin" in damage["detail"]


def test_changed_embargo_salt_is_found(recorded: Recorded) -> None:
    _attack(recorded, *ATTACKS[9])


def test_changed_attendance_salt_is_found(recorded: Recorded) -> None:
    _attack(recorded, *ATTACKS[10])


def test_log_only_skips_the_checks_beside_the_log(recorded: Recorded) -> None:
    token_becomes_admin(recorded)
    status, report, _ = verify(recorded.store, "--log-only")
    assert status == 0
    assert report["ok"]
    assert report["beside"] is None
    result = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "verify"], cwd=ROOT, env=recorded.store.env(),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "DAMAGED beside the log: token row differs from its entry" in result.stderr
    assert "the log itself is intact" in result.stderr


def test_the_scratch_rebuild_is_dropped_when_the_check_fails(recorded: Recorded) -> None:
    class Broken(ProposalsView):
        def apply(self, db: Any, entry: Any) -> None:
            raise RuntimeError("a view that breaks mid-rebuild")

    with pytest.raises(RuntimeError, match="breaks mid-rebuild"):
        check_read_models(recorded.store.settings, views=[Broken()])
    assert scratch_left(recorded.store) == []
    # The live views were not touched: they still agree with the log.
    assert check_read_models(recorded.store.settings).ok


def test_no_false_damage_while_the_service_writes_and_its_views_follow(recorded: Recorded) -> None:
    """The live views are read in one snapshot, each compared at its own position: writes
    and a follower catching up meanwhile are never reported as damage."""
    import threading

    settings = recorded.store.settings
    stop = threading.Event()
    written: list[int] = []
    failures: list[BaseException] = []

    def serve() -> None:
        app = LedgerApplication(settings)
        db = connect_views(settings)
        log = open_reader(settings, snapshot=False)
        try:
            follower = Runner(db, log, all_views(), batch=3)
            # Half the views follow at once, the rest lag: positions differ between views.
            lagging = Runner(db, log, all_views()[:3], batch=2)
            while not stop.is_set():
                receipt = app.register_organisation(
                    name=f"Busy Group {len(written)}", org_kind="academic", actor=ADMIN
                )
                written.append(receipt.index)
                lagging.catch_up()
                follower.catch_up(stop=receipt.index)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
        finally:
            db.close()
            log.close()
            app.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        # At least three checks, and on until three writes landed between them (bounded:
        # a loaded machine may let a check finish before the writer's first commit).
        reports = [check_read_models(settings)]
        deadline = time.monotonic() + 60
        while (len(reports) < 3 or len(written) < 3) and time.monotonic() < deadline:
            reports.append(check_read_models(settings))
    finally:
        stop.set()
        thread.join(60)
    assert not failures, failures
    assert len(written) >= 3
    assert [r.findings for r in reports] == [[]] * len(reports)
    assert all(r.not_built == [] for r in reports)


def _view_tables(store: Store) -> list[tuple[str, str]]:
    """(view, table) of every read-model table the check compares (SQLite: and the index)."""
    found = [(view.name, table) for view in all_views() for table in view.tables]
    if store.kind == "sqlite":
        found.append(("search", "pv_search_fts"))
    return [*found, ("runner", "pv_entries")]


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def _any_single_cell(recorded: Recorded, data: st.DataObject) -> None:
    view, table = data.draw(st.sampled_from(_view_tables(recorded.store)), label="table")
    conn = recorded.store.connect()
    try:
        rowid = "rowid" if recorded.store.kind == "sqlite" else "ctid"
        cursor = conn.execute(f"SELECT {rowid}, * FROM {table} LIMIT 200")
        names = [d[0] for d in cursor.description][1:]
        rows = cursor.fetchall()
        assume(rows)
        row = data.draw(st.sampled_from(rows), label="row")
        column = data.draw(
            st.sampled_from([n for n in names if n not in {"tsv", "rowid"}]), label="column"
        )
        old = row[1 + names.index(column)]
        if isinstance(old, int):
            new: Any = data.draw(st.integers(-(2**40), 2**40).filter(lambda v: v != old))
        elif old is None:
            new = data.draw(st.sampled_from(["0", "x"]))
        else:
            new = data.draw(st.text(max_size=12).filter(lambda v: v != old and "\x00" not in v))
        update = f"UPDATE {table} SET {column} = ? WHERE {rowid} = ?"
        if recorded.store.kind == "postgresql":
            update += " RETURNING ctid"  # the changed row's new place, to change it back
        try:
            moved = conn.execute(recorded.store.q(update), (new, row[0])).fetchall()
        except (sqlite3.Error, psycopg.Error):
            assume(False)  # a type or key the table refuses: not a change an insider can make
        place = moved[0][0] if recorded.store.kind == "postgresql" else row[0]
        try:
            report = check_read_models(recorded.store.settings)
        finally:
            conn.execute(
                recorded.store.q(f"UPDATE {table} SET {column} = ? WHERE {rowid} = ?"), (old, place)
            )
        tables = {(f.view, f.table) for f in report.findings}
        assert (view, table) in tables, (table, column, old, new, report.findings)
        assert {f.kind.value for f in report.findings} == {"read model differs from a rebuild"}
    finally:
        conn.close()


def test_any_single_cell_changed_in_any_read_model_table_is_found(recorded: Recorded) -> None:
    """Hypothesis: one cell of any read-model table changed with SQL (any column, any row) is
    reported at that view and table, and nothing else is."""
    _any_single_cell(recorded)
    assert check_read_models(recorded.store.settings).ok


def test_import_progress_moved_back_is_found(store: Store, tmp_path: Path) -> None:
    """A bulk import's progress rows: lines moved back (a resumed import would record those
    lines again) or a row pointed at another entry are found; blank lines are no damage."""
    LedgerApplication(store.settings).close()  # the schema
    commands = tmp_path / "orgs.ndjson"
    lines = []
    for n in range(7):
        args = {"id": str(uuid.uuid4()), "name": f"Imported Group {n}", "org_kind": "academic"}
        lines.append(json.dumps({"command": "register_organisation", "args": args}))
        if n == 3:
            lines.append("")  # a blank line records nothing
    commands.write_text("\n".join(lines) + "\n")
    imported = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "import", str(commands), "--actor", "clerk",
         "--org", "cabinet-office", "--batch-size", "3"],
        cwd=ROOT, env=store.env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    status, report, _ = verify(store)
    assert status == 0, report
    assert "ledger_imports" in report["beside"]["checked"]

    conn = store.connect()
    try:
        conn.execute("UPDATE ledger_imports SET lines = 7 WHERE lines = 8")
    finally:
        conn.close()
    status, report, _ = verify(store)
    assert status == 1, report
    damage = _found(report, "import progress row does not match its entries", None,
                    "ledger_imports")  # fmt: skip
    assert "would record lines again" in damage["detail"]
    assert damage["index"] == 6


def test_a_data_key_destroyed_without_an_erasure_is_found(store: Store, tmp_path: Path) -> None:
    """Deleting a person's data key with SQL silently erases what the log holds sealed for
    them; an erasure by the ledger (with its ``person.erased`` entry) is no damage."""
    master = tmp_path / "master.key"
    create_master_key_file(master)
    settings = store.settings.model_copy(update={"master_key_file": master})
    app = LedgerApplication(settings)
    try:
        process = app.start_process(title="People", summary="Sealed", actor=ADMIN).subject_id
        org = app.register_organisation(name="Fictional Forum", org_kind="academic",
                                        actor=ADMIN).subject_id  # fmt: skip
        kept, gone = str(uuid.uuid4()), str(uuid.uuid4())
        for person, name in ((kept, "Avery Fictional"), (gone, "Blake Imaginary")):
            meeting = app.schedule_meeting(process_id=process, title=f"Meeting of {name}",
                                           starts_at="2015-03-01T10:00:00Z", convenor_org=org,
                                           actor=ADMIN).subject_id  # fmt: skip
            app.record_meeting_held(meeting, attending_orgs=[org], held_at="2015-03-01T10:00:00Z",
                                    attending_people=[{"person_id": person, "name": name}],
                                    actor=ADMIN)  # fmt: skip
        app.erase_person(kept, legal_basis="UK GDPR Art. 17", authorised_by="dpo", actor=ADMIN)
    finally:
        app.close()
    status, report, _ = verify(store)
    assert status == 0, report
    assert "ledger_person_keys" in report["beside"]["checked"]

    conn = store.connect()
    try:
        conn.execute(store.q("DELETE FROM ledger_person_keys WHERE person_id = ?"), (gone,))
    finally:
        conn.close()
    status, report, _ = verify(store)
    assert status == 1, report
    damage = _found(report, "personal data key destroyed without an erasure", None,
                    "ledger_person_keys")  # fmt: skip
    assert gone in damage["row"]
    assert kept not in json.dumps(report["beside"])
