"""Read models: incremental == rebuilt == aggregates, and as_of(k) == a rebuild to k."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import LedgerApplication
from ledger.errors import LedgerError
from ledger.storage import open_reader
from projections import all_views
from projections.base import Entry
from projections.db import Db, connect_views
from projections.proposals import ProposalsView, get_proposal, history, list_proposals, versions
from projections.runner import Runner, ViewTimeoutError
from tests.conftest import PG_URL, Store
from tests.helpers import OFFICIAL, Sample, record_sample

ops = st.lists(
    st.one_of(
        st.tuples(st.just("amend"), st.sampled_from(["s1", "s2", "s9"]), st.text(max_size=12)),
        st.tuples(
            st.just("decide"),
            st.integers(0, 5),
            st.sampled_from(["agreed", "disagreed", "withdrawn", "no_decision"]),
            st.sampled_from(["banked", "still_to_discuss", "options"]),
            st.booleans(),
        ),
        st.tuples(st.just("revise"), st.integers(0, 3)),
        st.tuples(
            st.just("status"),
            st.sampled_from(
                ["discussion", "consultation", "revised", "recommended", "enacted", "withdrawn"]
            ),
        ),
        st.tuples(st.just("table"), st.text(min_size=1, max_size=10)),
    ),
    min_size=1,
    max_size=12,
)


def run(app: LedgerApplication, s: Sample, pids: list[str], op: tuple[Any, ...], pick: int) -> None:
    """Record one random command; refusals are fine (they write nothing)."""
    pid = pids[pick % len(pids)]
    try:
        current = app.get_proposal(pid)
        if op[0] == "amend":
            change = (
                {"op": "insert", "section_id": f"n{uuid.uuid4().hex[:4]}", "text": op[2]}
                if op[1] == "s9"
                else {"op": "replace", "section_id": op[1], "text": op[2]}
            )
            app.propose_amendment(
                pid,
                base_version=current.text_version,
                changes=[change],
                proposer_org=s.org_ids[1],
                meeting_id=s.meeting_id,
                actor=OFFICIAL,
            )
        elif op[0] == "decide" and current.amendments:
            ids = sorted(current.amendments)
            app.decide_amendment(
                pid,
                amendment_id=ids[op[1] % len(ids)],
                decision=op[2],
                consensus=op[3],
                dissenting_orgs=[s.org_ids[2]] if op[4] else [],
                meeting_id=s.meeting_id,
                actor=OFFICIAL,
            )
        elif op[0] == "revise":
            agreed = [
                a
                for a, v in sorted(current.amendments.items())
                if v["decision"] == "agreed"
                and v["incorporated_in"] is None
                and v["base_version"] == current.text_version
            ][: op[1] + 1]
            app.revise_proposal(
                pid,
                base_version=current.text_version,
                amendment_ids=agreed,
                note="consolidated",
                actor=OFFICIAL,
            )
        elif op[0] == "status":
            app.change_proposal_status(pid, new_status=op[1], actor=OFFICIAL)
        elif op[0] == "table":
            r = app.table_proposal(
                process_id=s.process_id,
                strand_id="research",
                title=op[1],
                sections=[
                    {"id": "s1", "heading": "H", "text": op[1]},
                    {"id": "s2", "heading": "", "text": "x"},
                ],
                sponsor_org=s.org_ids[0],
                actor=OFFICIAL,
            )
            pids.append(r.subject_id)
    except LedgerError:
        pass


def snapshot(db: Db, at: int) -> dict[str, Any]:
    """Everything the proposal read model answers as of ``at``."""
    listed = list_proposals(db, at)
    return {
        "list": listed,
        "proposals": {p["id"]: get_proposal(db, p["id"], at) for p in listed},
        "versions": {p["id"]: versions(db, p["id"], at) for p in listed},
        "history": {p["id"]: history(db, p["id"], at) for p in listed},
    }


@contextmanager
def separate_views(store: Store, tmp_path: Path) -> Iterator[Db]:
    """An empty views database beside the store (to build a view of a prefix of the log)."""
    if store.kind == "sqlite":
        conn = sqlite3.connect(tmp_path / f"{uuid.uuid4().hex}.sqlite3", isolation_level=None)
        yield Db(conn, "sqlite")
        conn.close()
        return
    schema = f"v_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    conn2 = psycopg.connect(PG_URL, autocommit=True, options=f"-c search_path={schema}")
    try:
        yield Db(conn2, "postgresql")
    finally:
        conn2.close()
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def test_incremental_equals_rebuilt_equals_aggregates_and_as_of(
    store: Store, tmp_path: Path
) -> None:
    """Random command sequences: following, rebuilding and replaying agree, at every k too."""
    app = LedgerApplication(store.settings)
    sample = record_sample(app, amendments=1)
    db = connect_views(store.settings)
    log = open_reader(store.settings, snapshot=False)
    runner = Runner(db, log, all_views(), batch=7)
    runner.setup()
    pids = [sample.proposal_id]

    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        sequence=ops,
        picks=st.lists(st.integers(0, 3), min_size=12, max_size=12),
        ks=st.lists(st.floats(0, 1), min_size=2, max_size=2),
    )
    def check(sequence: list[tuple[Any, ...]], picks: list[int], ks: list[float]) -> None:
        for op, pick in zip(sequence, picks, strict=False):
            run(app, sample, pids, op, pick)
            runner.catch_up()
        at = runner.as_of_index(None)
        incremental = snapshot(db, at)
        runner.rebuild()
        assert snapshot(db, at) == incremental
        for pid in pids:
            aggregate = app.get_proposal(pid)
            view = incremental["proposals"][pid]
            assert view["sections"] == aggregate.sections
            assert (view["status"], view["text_version"]) == (
                aggregate.status,
                aggregate.text_version,
            )
            decided = {
                a["amendment_id"]: a["decision"]
                for v in incremental["versions"][pid]
                for a in v["amendments"]
            }
            for amendment_id, decision in decided.items():
                assert aggregate.amendments[amendment_id]["decision"] == decision
        for fraction in ks:
            k = int(fraction * at)
            with separate_views(store, tmp_path) as other:
                prefix = Runner(other, log, all_views())
                prefix.setup()
                assert prefix.catch_up(stop=k + 1) == k + 1
                assert snapshot(db, k) == snapshot(other, k)

    try:
        check()
    finally:
        db.close()
        log.close()
        app.close()


class Exploding(ProposalsView):
    """A proposals view that fails on one entry, as a crash mid-batch would."""

    def __init__(self, at: int) -> None:
        self.at = at

    def apply(self, db: Db, entry: Entry) -> None:
        super().apply(db, entry)
        if entry.index == self.at:
            raise RuntimeError("power cut")


def test_a_crash_mid_batch_applies_nothing_twice(store: Store) -> None:
    """A failure inside a batch leaves no rows of it; resuming gives exactly a clean build."""
    app = LedgerApplication(store.settings)
    record_sample(app, amendments=4)
    app.close()
    db = connect_views(store.settings)
    log = open_reader(store.settings, snapshot=False)
    try:
        crashing = Runner(db, log, [Exploding(at=9)], batch=5)
        crashing.setup()
        with pytest.raises(RuntimeError, match="power cut"):
            crashing.catch_up()
        assert crashing.positions() == {"proposals": 5}
        assert db.one("SELECT COUNT(*) FROM pv_proposal_timeline WHERE idx >= 5") == (0,)
        resumed = Runner(db, log, [ProposalsView()], batch=5)
        position = resumed.catch_up()
        after_resume = snapshot(db, position - 1)
        resumed.rebuild()
        assert snapshot(db, position - 1) == after_resume
        timeline = db.one("SELECT COUNT(*) FROM pv_proposal_timeline")
        entries = [e for e in log.entries(0, position) if b'"type":"proposal.' in e]
        assert timeline == (len(entries),)
    finally:
        db.close()
        log.close()


def test_read_your_writes_with_a_follower(store: Store) -> None:
    """A follower keeps the view current; wait_for returns once a write is visible, or times out."""
    app = LedgerApplication(store.settings)
    sample = record_sample(app, amendments=0)
    db = connect_views(store.settings)
    log = open_reader(store.settings, snapshot=False)
    follower_db = connect_views(store.settings)
    follower_log = open_reader(store.settings, snapshot=False)
    follower = Runner(follower_db, follower_log, [ProposalsView()])
    follower.setup()
    stop = threading.Event()
    thread = threading.Thread(target=follower.follow, args=(stop,), kwargs={"poll": 0.05})
    thread.start()
    try:
        receipt = app.change_proposal_status(
            sample.proposal_id, new_status="discussion", actor=OFFICIAL
        )
        reader = Runner(db, log, [ProposalsView()])
        reader.wait_for(receipt.index, timeout=10)
        at = reader.as_of_index(None)
        assert at >= receipt.index
        assert get_proposal(db, sample.proposal_id, at)["status"] == "discussion"  # type: ignore[index]
        with pytest.raises(ViewTimeoutError, match=r"within 0\.2 s"):
            reader.wait_for(receipt.index + 100, timeout=0.2)
    finally:
        stop.set()
        thread.join(timeout=10)
        for closing in (db, follower_db):
            closing.close()
        log.close()
        follower_log.close()
        app.close()


def test_rows_opened_and_closed_in_one_batch(store: Store) -> None:
    """A membership added and ended within one batch is closed, however the batches fall."""
    from projections import all_views
    from projections.organisations import get_organisation

    app = LedgerApplication(store.settings)
    s = record_sample(app, amendments=0)
    org = s.org_ids[1]
    app.add_membership(org, process_id=s.process_id, group="eag", actor=OFFICIAL)
    app.end_membership(org, process_id=s.process_id, group="eag", actor=OFFICIAL)
    app.add_membership(org, process_id=s.process_id, group="research", actor=OFFICIAL)
    app.close()
    db = connect_views(store.settings)
    log = open_reader(store.settings, snapshot=False)
    try:
        answers = []
        for batch in (1, 2, 1000):
            runner = Runner(db, log, all_views(), batch=batch)
            runner.setup()
            runner.rebuild()
            found = get_organisation(db, org, runner.as_of_index(None))
            assert found is not None
            answers.append(sorted(m["group"] for m in found["memberships"]))
        assert answers == [["research"]] * 3
    finally:
        db.close()
        log.close()


def test_racing_runners_apply_each_batch_once(store: Store) -> None:
    """Two runners (two API processes, say) catching up at once leave exactly a clean build."""
    app = LedgerApplication(store.settings)
    record_sample(app, amendments=30)
    app.close()
    runners = []
    for _ in range(2):
        db = connect_views(store.settings)
        log = open_reader(store.settings, snapshot=False)
        runner = Runner(db, log, all_views(), batch=3)
        runner.setup()
        runners.append(runner)
    try:
        threads = [threading.Thread(target=r.catch_up) for r in runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        first = runners[0]
        position = first.position()
        assert position == runners[1].position()
        raced = snapshot(first.db, position - 1)
        entries = [e for e in first.log.entries(0, position) if b'"type":"proposal.' in e]
        timeline = first.db.one("SELECT COUNT(*) FROM pv_proposal_timeline")
        assert timeline == (len(entries),)
        first.rebuild()
        assert snapshot(first.db, position - 1) == raced
    finally:
        for runner in runners:
            runner.db.close()
            runner.log.close()


def test_a_restarted_runner_continues_from_the_database(store: Store) -> None:
    """A new runner (an API restart) picks up where another stopped, reading rows from the
    database instead of its cache, and ends exactly where a clean rebuild does."""
    from projections.search import search

    app = LedgerApplication(store.settings)
    s = record_sample(app, amendments=1)
    db = connect_views(store.settings)
    log = open_reader(store.settings, snapshot=False)
    try:
        first = Runner(db, log, all_views())
        first.setup()
        first.catch_up()
        app.decide_amendment(
            s.proposal_id, amendment_id="A1", decision="agreed", consensus="banked", actor=OFFICIAL
        )
        app.revise_proposal(s.proposal_id, base_version=1, amendment_ids=["A1"], actor=OFFICIAL)
        restarted = Runner(db, log, all_views())
        position = restarted.catch_up()
        at = position - 1
        followed = (snapshot(db, at), search(db, "Accredit processors", at))
        restarted.rebuild()
        assert (snapshot(db, at), search(db, "Accredit processors", at)) == followed
        assert followed[0]["proposals"][s.proposal_id]["text_version"] == 2
    finally:
        db.close()
        log.close()
        app.close()
