"""A rebuild writes exactly the rows that following the log wrote, however it runs.

The demo plus random extra activity is followed entry by entry (small batches, a catch-up
after every command), then rebuilt from index 0: in one process with the usual batches,
with tiny batches and a tiny row cache (so rows are evicted and read back from the
database), and split across two processes. Every read-model table (and, on SQLite, the
full-text index) must hold the same rows each time, on both stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import projections.base
import projections.runner
from ledger.application import LedgerApplication
from ledger.demo import record_demo
from ledger.storage import open_reader
from projections import all_views
from projections.db import Db, connect_views
from projections.runner import TRACKING, Runner
from projections.search import FTS
from tests.conftest import Store, make_store
from tests.contract.test_projections import ops, run
from tests.helpers import OFFICIAL, record_sample


def view_tables(db: Db) -> list[str]:
    """Every table the read models (and the runner's entry index) keep."""
    if db.dialect == "sqlite":
        rows = db.all("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = db.all(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    names = (str(r[0]) for r in rows)
    return sorted(
        n for n in names if n.startswith("pv_") and n != TRACKING and not n.startswith(FTS)
    )


def contents(db: Db) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read-model table (all columns, PostgreSQL's computed ``tsv``
    too), and on SQLite what the full-text index holds, after checking its integrity."""
    found = {
        table: sorted((tuple(r) for r in db.all(f"SELECT * FROM {table}")), key=repr)
        for table in view_tables(db)
    }
    if db.dialect == "sqlite":
        db.execute(f"INSERT INTO {FTS} ({FTS}) VALUES ('integrity-check')")
        found[FTS] = db.all(f"SELECT rowid, title, body FROM {FTS} ORDER BY rowid")
    return found


@pytest.fixture
def demo(store: Store) -> Iterator[tuple[LedgerApplication, Db, Runner]]:
    """The demo and a sample process recorded, and a runner following them."""
    app = LedgerApplication(store.settings)
    record_demo(app)
    db = connect_views(store.settings)
    log = open_reader(store.settings, snapshot=False)
    follower = Runner(db, log, all_views(), batch=7)
    follower.setup()
    follower.catch_up()
    try:
        yield app, db, follower
    finally:
        db.close()
        log.close()
        app.close()


def test_every_rebuild_writes_the_rows_following_wrote(
    store: Store,
    demo: tuple[LedgerApplication, Db, Runner],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, db, follower = demo
    sample = record_sample(app, amendments=2)
    follower.catch_up()
    pids = [sample.proposal_id]
    log = follower.log
    assert db.one(f"SELECT COUNT(DISTINCT position) FROM {TRACKING}") == (1,)

    @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
    @given(sequence=ops, picks=st.lists(st.integers(0, 3), min_size=12, max_size=12))
    def check(sequence: list[tuple[Any, ...]], picks: list[int]) -> None:
        for op, pick in zip(sequence, picks, strict=False):
            run(app, sample, pids, op, pick)
            follower.catch_up()
        followed = contents(db)
        position = follower.position()
        assert max(r[0] for r in followed["pv_entries"]) == position - 1

        serial = Runner(db, log, all_views())
        assert serial.rebuild(workers=1) == position
        assert contents(db) == followed

        with monkeypatch.context() as patch:
            patch.setattr(projections.base, "MAX_CACHED_ROWS", 40)
            patch.setattr(projections.base, "MAX_EVICTED", 200)
            small = Runner(db, log, all_views(), batch=13)
            assert small.rebuild(workers=1) == position
        assert contents(db) == followed

        with monkeypatch.context() as patch:
            patch.setattr(projections.runner, "PARALLEL_MIN_ENTRIES", 0)
            parallel = Runner(db, log, all_views(), batch=97, settings=store.settings)
            assert len(parallel.plan(2)) == 2
            assert parallel.rebuild(workers=2) == position
        assert contents(db) == followed

        # The follower's cache was made stale by the rebuilds: it must drop it and go on.
        follower.catch_up()

    check()


def test_a_rebuild_of_some_views_leaves_the_others_and_their_cache_sound(
    demo: tuple[LedgerApplication, Db, Runner],
) -> None:
    """Rebuilding some views, then following with every view, matches a full rebuild: the
    cache the rebuild made (complete for the rebuilt views' tables only) must not answer
    for the other views' rows."""
    app, db, follower = demo
    sample = record_sample(app, amendments=1)
    runner = Runner(db, follower.log, all_views(), batch=11)
    runner.setup()
    runner.catch_up()
    runner.rebuild(["proposals", "search"], workers=1)
    # Change rows of views left out: a meeting held earlier gets its minutes, and an
    # organisation joins and leaves a group.
    app.agree_minutes(
        sample.meeting_id, sha256="cd" * 32, size=12, media_type="text/plain", actor=OFFICIAL
    )
    app.add_membership(sample.org_ids[1], process_id=sample.process_id, group="eag", actor=OFFICIAL)
    app.end_membership(sample.org_ids[1], process_id=sample.process_id, group="eag", actor=OFFICIAL)
    runner.catch_up()
    followed = contents(db)
    runner.rebuild(workers=1)
    assert contents(db) == followed


def test_search_index_after_an_upgrade_from_triggers(tmp_path: Path) -> None:
    """SQLite: a views database made by a release that indexed documents by triggers keeps
    one index entry per document, also while an older process recreates its trigger. (On
    PostgreSQL the full-text vector is a column of the documents table: nothing to upgrade.)"""
    store = next(make_store("sqlite", tmp_path))
    app = LedgerApplication(store.settings)
    record_sample(app, amendments=2)
    db = connect_views(store.settings)
    log = open_reader(store.settings, snapshot=False)
    try:
        runner = Runner(db, log, all_views(), batch=5)
        runner.setup()
        runner.catch_up()
        rebuilt = contents(db)
        runner.rebuild(workers=1)
        assert contents(db) == rebuilt
        db.execute(  # what an older release's setup creates
            f"CREATE TRIGGER IF NOT EXISTS pv_search_docs_indexed AFTER INSERT ON "
            f"pv_search_docs BEGIN INSERT INTO {FTS} (rowid, title, body) VALUES (new.doc_id, "
            "CASE WHEN new.kind IN ('proposal', 'publication') THEN new.title ELSE '' END, "
            "new.body); END"
        )
        record_sample(app, amendments=1)
        runner.catch_up()
        with_trigger = contents(db)
        runner.setup()  # this release drops the trigger
        runner.rebuild(workers=1)
        assert contents(db) == with_trigger
        assert db.one("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'") == (0,)
    finally:
        db.close()
        log.close()
        app.close()
