"""The chained log's behaviour, identical on every store."""

from __future__ import annotations

import hashlib
import inspect

import orjson
import pytest

from ledger import merkle
from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.chain import DamageKind
from ledger.encoding import GENESIS_PREV
from ledger.errors import (
    ConcurrentWriteError,
    EntryTooLargeError,
    InvalidInputError,
    NotFoundError,
    RuleViolationError,
    StaleVersionError,
)
from ledger.storage import open_reader
from ledger.verify import verify_log
from tests.conftest import Store
from tests.helpers import OFFICIAL, record_sample


def _stored(store: Store) -> list[bytes]:
    reader = open_reader(store.settings)
    try:
        head = reader.head()
        assert head is not None
        return reader.entries(0, head.size)
    finally:
        reader.close()


def _verify(store: Store):  # type: ignore[no-untyped-def]
    reader = open_reader(store.settings)
    try:
        return verify_log(reader)
    finally:
        reader.close()


def test_receipts_are_dense_linked_and_stored(store: Store) -> None:
    """Every command's receipt names the next index, its hash and the bytes that were stored."""
    app = LedgerApplication(store.settings)
    sample = record_sample(app)
    app.close()
    stored = _stored(store)
    assert [r.index for r in sample.receipts] == list(range(len(stored)))
    prev = GENESIS_PREV
    for receipt, entry in zip(sample.receipts, stored, strict=True):
        assert receipt.entry == entry
        assert receipt.entry_hash == hashlib.sha256(entry).hexdigest()
        fields = orjson.loads(entry)
        assert fields["index"] == receipt.index
        assert fields["prev"] == prev
        prev = receipt.entry_hash


def test_untouched_log_verifies_with_the_rfc9162_root(store: Store) -> None:
    """verify passes on an intact log and reports the Merkle root of exactly its entries."""
    app = LedgerApplication(store.settings)
    record_sample(app)
    app.close()
    report = _verify(store)
    stored = _stored(store)
    assert report.ok
    assert report.size == len(stored)
    assert report.root == merkle.root_from_leaf_hashes([merkle.hash_leaf(e) for e in stored])
    assert report.head_hash == hashlib.sha256(stored[-1]).digest()


def test_aggregates_load_what_the_log_covers(store: Store) -> None:
    """A fresh application rebuilds aggregates from the same rows the entries cover."""
    app = LedgerApplication(store.settings)
    sample = record_sample(app, amendments=2)
    app.close()
    again = LedgerApplication(store.settings)
    proposal = again.get_proposal(sample.proposal_id)
    assert sorted(proposal.amendments) == ["A1", "A2"]
    assert proposal.text_version == 1
    assert proposal.version == 3
    receipt = again.add_strand(sample.process_id, strand_id="fraud", title="Fraud", actor=OFFICIAL)
    assert receipt.index == len(sample.receipts)
    again.close()
    assert _verify(store).ok


def test_amending_then_revising_gives_a_new_text_version(store: Store) -> None:
    """Agreed amendments consolidate into version 2; stale amendments are refused by name."""
    app = LedgerApplication(store.settings)
    s = record_sample(app, amendments=2)
    app.decide_amendment(
        s.proposal_id,
        amendment_id="A1",
        decision="agreed",
        consensus="banked",
        dissenting_orgs=[s.org_ids[2]],
        meeting_id=s.meeting_id,
        actor=OFFICIAL,
    )
    app.revise_proposal(s.proposal_id, base_version=1, amendment_ids=["A1"], actor=OFFICIAL)
    proposal = app.get_proposal(s.proposal_id)
    assert proposal.text_version == 2
    assert proposal.sections[1]["text"] == "Accredit processors, draft 0."
    app.decide_amendment(
        s.proposal_id, amendment_id="A2", decision="agreed", consensus="banked", actor=OFFICIAL
    )
    with pytest.raises(StaleVersionError, match="current text") as caught:
        app.revise_proposal(s.proposal_id, base_version=2, amendment_ids=["A2"], actor=OFFICIAL)
    assert caught.value.current_version == 2
    app.close()


REFUSALS = [
    ("stale base version", StaleVersionError, "current version is 1"),
    ("decided twice", RuleViolationError, "already decided"),
    ("meeting not held", RuleViolationError, "held"),
    ("enacted proposal", RuleViolationError, "can no longer be amended"),
    ("unknown organisation", NotFoundError, "unknown organisation"),
    ("bad decision value", InvalidInputError, "decision must be one of"),
    ("oversize entry", EntryTooLargeError, "limit is 65535"),
    ("float in data", InvalidInputError, "floats are not allowed"),
]


@pytest.mark.parametrize(("case", "error", "message"), REFUSALS, ids=[c[0] for c in REFUSALS])
def test_refused_commands_write_nothing(
    store: Store, case: str, error: type[Exception], message: str
) -> None:
    """A command that breaks a rule raises a typed, clear error and records nothing."""
    app = LedgerApplication(store.settings)
    s = record_sample(app, amendments=1)
    app.decide_amendment(
        s.proposal_id, amendment_id="A1", decision="disagreed", consensus="options", actor=OFFICIAL
    )
    before = _stored(store)
    pid = s.proposal_id
    with pytest.raises(error, match=message):
        if case == "stale base version":
            app.propose_amendment(
                pid,
                base_version=3,
                changes=[{"op": "delete", "section_id": "s1"}],
                proposer_org=s.org_ids[0],
                actor=OFFICIAL,
            )
        elif case == "decided twice":
            app.decide_amendment(
                pid, amendment_id="A1", decision="agreed", consensus="banked", actor=OFFICIAL
            )
        elif case == "meeting not held":
            m = app.schedule_meeting(
                process_id=s.process_id,
                title="Later",
                starts_at="2016-01-01T10:00:00Z",
                convenor_org=s.org_ids[0],
                actor=OFFICIAL,
            )
            before = _stored(store)
            app.record_meeting_outcome(
                m.subject_id, items=[{"kind": "decision", "text": "x"}], actor=OFFICIAL
            )
        elif case == "enacted proposal":
            for status in ("discussion", "recommended", "enacted"):
                app.change_proposal_status(pid, new_status=status, actor=OFFICIAL)
            before = _stored(store)
            app.propose_amendment(
                pid,
                base_version=1,
                changes=[{"op": "delete", "section_id": "s1"}],
                proposer_org=s.org_ids[0],
                actor=OFFICIAL,
            )
        elif case == "unknown organisation":
            app.decide_amendment(
                pid,
                amendment_id="A1",
                decision="agreed",
                consensus="banked",
                dissenting_orgs=["00000000-0000-4000-8000-000000000000"],
                actor=OFFICIAL,
            )
        elif case == "bad decision value":
            app.propose_amendment(
                pid,
                base_version=1,
                changes=[{"op": "delete", "section_id": "s1"}],
                proposer_org=s.org_ids[0],
                actor=OFFICIAL,
            )
            before = _stored(store)
            app.decide_amendment(
                pid, amendment_id="A2", decision="maybe", consensus="banked", actor=OFFICIAL
            )
        elif case == "oversize entry":
            app.table_proposal(
                process_id=s.process_id,
                strand_id="research",
                title="Huge",
                sections=[{"id": "s1", "heading": "", "text": "x" * 70_000}],
                sponsor_org=s.org_ids[0],
                actor=OFFICIAL,
            )
        elif case == "float in data":
            app.record_meeting_outcome(
                s.meeting_id,
                items=[{"kind": "decision", "text": "x", "score": 0.5}],
                actor=OFFICIAL,
            )
    assert _stored(store) == before
    app.close()
    assert _verify(store).ok


def test_concurrent_change_to_one_aggregate_is_a_conflict(store: Store) -> None:
    """Two officials acting on the same proposal version: the second gets a conflict."""
    first = LedgerApplication(store.settings)
    s = record_sample(first, amendments=0)
    second = LedgerApplication(store.settings)
    mine = first.get_proposal(s.proposal_id)
    theirs = second.get_proposal(s.proposal_id)
    actor = Actor("a", "recorder", s.org_ids[0])
    change = [{"op": "replace", "section_id": "s1", "text": "x"}]
    for proposal in (mine, theirs):
        proposal.propose_amendment(
            base_version=1,
            changes=change,
            rationale="",
            meeting_id=None,
            proposer_org=s.org_ids[0],
            actor=actor,
            at=first.clock(),
        )
    first._commit(mine)
    with pytest.raises(ConcurrentWriteError, match="at the same time"):
        second._commit(theirs)
    first.close()
    second.close()
    report = _verify(store)
    assert report.ok
    assert report.size == len(s.receipts) + 1


def test_event_row_outside_the_ledger_is_found(store: Store) -> None:
    """An event row inserted without an entry is reported as unlogged."""
    app = LedgerApplication(store.settings)
    s = record_sample(app, amendments=1)
    app.close()
    conn = store.connect()
    conn.execute(
        store.q(
            "INSERT INTO ledger_events (originator_id, originator_version, topic, state) "
            "SELECT originator_id, 99, topic, state FROM ledger_events "
            "WHERE originator_version = 1 LIMIT 1"
        )
    )
    conn.close()
    report = _verify(store)
    assert report.damage is not None
    assert report.damage.kind is DamageKind.UNLOGGED_EVENT
    assert report.damage.index == len(s.receipts)


def test_sequencing_hooks_exist_in_pinned_eventsourcing() -> None:
    """The private eventsourcing hooks the sequencer overrides are still there, as pinned."""
    from importlib.metadata import version

    from eventsourcing.postgres import PostgresApplicationRecorder
    from eventsourcing.sqlite import SQLiteApplicationRecorder

    from ledger.storage.postgres import PostgresLedgerRecorder
    from ledger.storage.sqlite import SQLiteLedgerRecorder

    assert version("eventsourcing") == "9.5.6"
    pg_hook = inspect.signature(PostgresApplicationRecorder._fetch_ids_after_insert_events)
    assert list(pg_hook.parameters)[:3] == ["self", "curs", "stored_events"]
    sqlite_hook = inspect.signature(SQLiteApplicationRecorder._insert_events)
    assert list(sqlite_hook.parameters)[:3] == ["self", "c", "stored_events"]
    source = inspect.getsource(PostgresApplicationRecorder.insert_events)
    assert "_fetch_ids_after_insert_events" in source
    assert "_lock_table" in inspect.getsource(PostgresApplicationRecorder._insert_stored_events)
    assert "insert_events" in PostgresLedgerRecorder.__dict__  # ours: rolls back on any error
    ours = inspect.getsource(PostgresLedgerRecorder.insert_events)
    assert "_insert_stored_events" in ours
    assert "_fetch_ids_after_insert_events" in ours
    assert "_insert_events" in SQLiteLedgerRecorder.__dict__
