"""``ledger verify`` against the red team's insider edits (both stores, real CLI, SQL edits).

* A revoked token writes again: its revocation row deleted and its event row's topic
  edited, a write with it, the edits undone. Found from the log alone (the entry follows the
  revocation of every token its holder had).
* The search index falsified while the documents' text compares equal: SQLite, the FTS5
  index emptied for matching rows and their text written back into its content table;
  PostgreSQL, the search vector's expression dropped and the vector overwritten.
* A view that lags behind the log (its tables and tracking position put back to an earlier
  index, the service stopped): no damage, but said plainly.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.storage import open_reader
from projections import all_views
from projections.db import connect_views
from projections.proposals import ProposalsView
from projections.runner import Runner
from tests.api.test_writes import check_receipt, open_api
from tests.conftest import Store
from tests.security.test_verify_beside_the_log import (
    ADMIN,
    ROOT,
    Recorded,
    _found,
    build_views,
    recorded,
    verify,
)

__all__ = ["recorded"]  # the fixture, shared with the other beside-the-log tests

WRITE_AFTER = "written after its token's revocation"
SEARCH = "search index does not match its text"


def _kinds(report: dict[str, Any]) -> set[str]:
    return {d["kind"] for d in report["beside"]["damages"]}


def test_a_write_by_a_revoked_token_is_found_after_the_edits_are_undone(
    recorded: Recorded,
) -> None:
    """Red team 2: revoke → delete the revocation row and edit the revocation's event row
    topic → the service takes the token again → undo both edits → verify still finds the
    write, naming its index, the holder and the revoking entry. Writes before the
    revocation, and with the holder's new token, are no damage."""
    r, settings = recorded, recorded.store.settings
    writer = Actor("w.writer", "recorder", r.org_ids[0])
    app = LedgerApplication(settings)
    try:
        issued, _ = app.issue_token(principal=writer.id, org=writer.org, role=writer.role,
                                    actor=ADMIN)  # fmt: skip
        token_id = issued.subject_id
        with app.writing_token(token_id):
            app.register_organisation(name="Written Before", org_kind="academic", actor=writer)
        revocation = app.revoke_token(token_id, reason="left the team", actor=ADMIN)
    finally:
        app.close()
    status, report, _ = verify(r.store)
    assert status == 0, report

    # The insider's edits: the revocation row gone, the revocation's event row renamed.
    key = r.store.event_key
    kept = r.sql("SELECT token_id, idx FROM ledger_token_revocations WHERE token_id = ?",
                 (token_id,))  # fmt: skip
    assert kept == [(token_id, revocation.index)]
    event_id = r.one("SELECT event_id FROM ledger_entries WHERE idx = ?", (revocation.index,))
    r.sql("DELETE FROM ledger_token_revocations WHERE token_id = ?", (token_id,))
    r.sql(f"UPDATE ledger_events SET topic = 'access_token.noted' WHERE {key} = ?", (event_id,))
    app = LedgerApplication(settings)
    try:
        with app.writing_token(token_id):  # the service's own revocation check passes now
            late = app.register_organisation(name="Written After", org_kind="academic",
                                             actor=writer)  # fmt: skip
    finally:
        app.close()
    # ... and undone: every row is what it was.
    r.sql(f"UPDATE ledger_events SET topic = 'access_token.revoked' WHERE {key} = ?", (event_id,))
    r.sql("INSERT INTO ledger_token_revocations (token_id, idx) VALUES (?, ?)", kept[0])
    status, report, _ = verify(r.store, "--log-only")
    assert status == 0, report  # the log itself holds

    app = LedgerApplication(settings)
    try:  # the holder's new token writes again: no damage
        again, _ = app.issue_token(principal=writer.id, org=writer.org, role=writer.role,
                                   actor=ADMIN)  # fmt: skip
        with app.writing_token(again.subject_id):
            app.register_organisation(name="Written Again", org_kind="academic", actor=writer)
    finally:
        app.close()
    status, report, _ = verify(r.store)
    assert status == 1, report
    assert report["log_ok"] is True
    damage = _found(report, WRITE_AFTER, None, "ledger_entries")
    assert damage["index"] == late.index
    assert damage["row"] == f"idx={late.index}"
    assert "'w.writer'" in damage["detail"]
    assert f"revoked by entry {revocation.index}" in damage["detail"]
    assert token_id in damage["detail"]
    assert report["beside"]["damage_count"] == 1, report["beside"]
    assert _kinds(report) == {WRITE_AFTER}


def test_a_revoked_tokens_write_over_http_is_found_after_the_edits_are_undone(
    store: Store,
) -> None:
    """Red team 2 as reported, over HTTP: POST the revocation; delete its row and rename its
    event row's topic; POST with the revoked token (201); undo; ``ledger verify`` exits 1."""
    with open_api(store) as api:
        admin, recorder = api.officials["admin"], api.officials["recorder"]
        answer = api.post(f"/tokens/{recorder.token_id}/revocation", admin, {"reason": "left"})
        revoked_at = check_receipt(api, answer, admin)["index"]
        conn = store.connect()
        try:
            event_id = conn.execute(store.q("SELECT event_id FROM ledger_entries WHERE idx = ?"),
                                    (revoked_at,)).fetchone()[0]  # fmt: skip
            conn.execute(store.q("DELETE FROM ledger_token_revocations WHERE token_id = ?"),
                         (recorder.token_id,))  # fmt: skip
            conn.execute(store.q(f"UPDATE ledger_events SET topic = 'access_token.noted' "
                                 f"WHERE {store.event_key} = ?"), (event_id,))  # fmt: skip
            late = api.post("/processes", recorder, {"title": "Revived"})
            written = check_receipt(api, late, recorder, created="/processes")["index"]
            conn.execute(store.q(f"UPDATE ledger_events SET topic = 'access_token.revoked' "
                                 f"WHERE {store.event_key} = ?"), (event_id,))  # fmt: skip
            conn.execute(store.q("INSERT INTO ledger_token_revocations (token_id, idx) "
                                 "VALUES (?, ?)"), (recorder.token_id, revoked_at))  # fmt: skip
        finally:
            conn.close()
    status, report, _ = verify(store)
    assert status == 1, report
    assert report["log_ok"] is True
    damage = _found(report, WRITE_AFTER, None, "ledger_entries")
    assert damage["index"] == written == revoked_at + 1
    assert f"'{recorder.principal}'" in damage["detail"]
    assert f"revoked by entry {revoked_at}" in damage["detail"]
    assert _kinds(report) == {WRITE_AFTER}
    assert report["beside"]["damage_count"] == 1


def test_a_search_index_emptied_under_unchanged_text_is_found(recorded: Recorded) -> None:
    """Red team 6: searches find nothing while the documents' text still compares equal.
    SQLite: the FTS5 rows emptied, their text written back into the content table.
    PostgreSQL: the vector's expression dropped, the vector overwritten."""
    r = recorded
    if r.store.kind == "sqlite":
        match = "SELECT rowid FROM pv_search_fts WHERE pv_search_fts MATCH 'minutes'"
        hits = [row[0] for row in r.sql(match)]
        assert hits
        marks = ", ".join("?" * len(hits))
        text = r.sql(f"SELECT id, c0, c1 FROM pv_search_fts_content WHERE id IN ({marks})",
                     tuple(hits))  # fmt: skip
        r.sql(f"UPDATE pv_search_fts SET title = '', body = '' WHERE rowid IN ({marks})",
              tuple(hits))  # fmt: skip
        for doc, title, body in text:
            r.sql("UPDATE pv_search_fts_content SET c0 = ?, c1 = ? WHERE id = ?",
                  (title, body, doc))  # fmt: skip
        assert r.sql(match) == []
        table, row = "pv_search_fts", "-"
    else:
        match = "SELECT doc_id FROM pv_search_docs WHERE tsv @@ to_tsquery('english', 'minutes')"
        assert r.sql(match)
        r.sql("ALTER TABLE pv_search_docs ALTER COLUMN tsv DROP EXPRESSION")
        r.sql("UPDATE pv_search_docs SET tsv = to_tsvector('nothing')")
        assert r.sql(match) == []
        table, row = "pv_search_docs", "column=tsv"
    status, report, _ = verify(r.store)
    assert status == 1, report
    assert report["log_ok"] is True
    damage = _found(report, SEARCH, "search", table)
    assert damage["row"] == row
    assert "searches do not find what the documents say" in damage["detail"]
    assert _kinds(report) == {SEARCH}


def test_an_untouched_search_index_passes_its_check(recorded: Recorded) -> None:
    status, report, _ = verify(recorded.store)
    assert status == 0, report
    assert "pv_search_docs" in report["beside"]["checked"]
    assert report["beside"]["lagging"] == []


def test_a_view_behind_the_log_is_reported_as_lagging_not_damaged(store: Store) -> None:
    """Red team 9: the proposal tables put back to their state at an earlier position, and
    that position written into pv_tracking (service stopped): the view is consistent with
    its position, so no damage, but verify says it lags, in its text and its JSON."""
    from tests.security.test_verify_beside_the_log import record

    r = record(store)
    settings = store.settings
    size = int(r.one("SELECT size FROM ledger_head WHERE id = 1"))
    # Its position: the last proposal entry is not applied.
    earlier = int(
        r.one(
            f"SELECT MAX(e.idx) FROM ledger_entries e JOIN ledger_events s "
            f"ON s.{store.event_key} = e.event_id WHERE substr(s.topic, 1, 9) = 'proposal.'"
        )
    )
    db = connect_views(settings)
    log = open_reader(settings, snapshot=False)
    try:
        runner = Runner(db, log, all_views())
        runner.setup()
        runner.catch_up(stop=earlier)
    finally:
        db.close()
        log.close()
    tables = ProposalsView.tables
    for table in tables:  # the insider keeps the view's state at that position ...
        r.sql(f"CREATE TABLE saved_{table} AS SELECT * FROM {table}")
    build_views(store)  # ... the service catches up, then stops ...
    for table in tables:  # ... and the tables and tracking position are put back.
        r.sql(f"DELETE FROM {table}")
        r.sql(f"INSERT INTO {table} SELECT * FROM saved_{table}")
        r.sql(f"DROP TABLE saved_{table}")
    r.sql("UPDATE pv_tracking SET position = ? WHERE view = 'proposals'", (earlier,))

    status, report, _ = verify(store)
    assert status == 0, report
    assert report["beside"]["ok"] is True
    note = (f"view proposals is at position {earlier} of {size}; the service brings it up to "
            "date; rebuilt and compared at its own position")  # fmt: skip
    assert report["beside"]["lagging"] == [
        {"view": "proposals", "position": earlier, "log_size": size, "note": note}
    ]
    result = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "verify"], cwd=ROOT, env=store.env(),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert note in result.stdout
