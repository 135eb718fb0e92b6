"""Integration tests for ledger.demo: the data-sharing open policy process, end to end."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.aggregates import UNATTRIBUTED
from ledger.application import LedgerApplication
from ledger.demo import DemoClock, DemoSummary, record_demo
from ledger.settings import Settings
from ledger.storage import open_reader
from ledger.verify import verify_log


def _record(data_dir: Path) -> tuple[Settings, DemoSummary, list[str]]:
    settings = Settings(data_dir=data_dir, demo=True)
    messages: list[str] = []
    summary = record_demo(LedgerApplication(settings), progress=messages.append)
    return settings, summary, messages


def _entry_bytes(settings: Settings) -> list[bytes]:
    reader = open_reader(settings)
    try:
        head = reader.head()
        assert head is not None
        return reader.entries(0, head.size)
    finally:
        reader.close()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, DemoSummary, list[str]]:
    return _record(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def entries(recorded: tuple[Settings, DemoSummary, list[str]]) -> list[dict[str, Any]]:
    settings, _, _ = recorded
    return [json.loads(entry) for entry in _entry_bytes(settings)]


def _of_type(entries: list[dict[str, Any]], entry_type: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["type"] == entry_type]


def test_demo_records_into_a_fresh_sqlite_ledger(tmp_path: Path) -> None:
    """The demo records into an empty SQLite ledger without error and reports progress."""
    settings, summary, messages = _record(tmp_path)
    assert settings.sqlite_path.is_file()
    assert 150 <= summary.entries <= 250
    assert len(messages) >= 6
    assert all(isinstance(m, str) and m for m in messages)


def test_summary_counts_match_the_log(
    recorded: tuple[Settings, DemoSummary, list[str]], entries: list[dict[str, Any]]
) -> None:
    """Every count in the summary equals what the log holds."""
    _, summary, _ = recorded
    types = Counter(e["type"] for e in entries)
    assert summary.entries == len(entries)
    assert [e["index"] for e in entries] == list(range(len(entries)))
    assert summary.organisations == types["organisation.registered"]
    assert summary.meetings == types["meeting.scheduled"]
    assert summary.proposals == types["proposal.tabled"]
    assert summary.amendments == types["proposal.amendment_proposed"]
    assert summary.publications == types["publication.published"]
    (process,) = _of_type(entries, "process.started")
    assert process["subject"]["id"] == summary.process_id
    assert summary.organisations >= 18


def test_process_has_three_strands_and_every_phase(entries: list[dict[str, Any]]) -> None:
    """The process has the three policy strands and runs from scoping to legislation."""
    strands = {e["data"]["strand_id"] for e in _of_type(entries, "process.strand_added")}
    assert strands == {"tailored-public-services", "fraud-error-debt", "research-statistics"}
    phases = [e["data"]["phase_id"] for e in _of_type(entries, "process.phase_started")]
    assert phases[0] == "scoping"
    assert phases[-1] == "legislation"
    assert "public-consultation" in phases


def test_organisations_cover_every_kind_and_memberships(entries: list[dict[str, Any]]) -> None:
    """Organisations of every kind take part, with strand and advisory-group memberships."""
    kinds = {e["data"]["org_kind"] for e in _of_type(entries, "organisation.registered")}
    assert kinds >= {
        "department",
        "local_authority",
        "public_body",
        "civil_society",
        "academic",
        "advisory_group",
    }
    groups = {e["data"]["group"] for e in _of_type(entries, "organisation.membership_added")}
    assert groups >= {
        "tailored-public-services",
        "fraud-error-debt",
        "research-statistics",
        "external-advisory-group",
    }


def test_every_meeting_is_held_with_an_outcome_and_minutes(
    entries: list[dict[str, Any]],
) -> None:
    """At least twelve meetings are each held, with an outcome and agreed minutes."""
    scheduled = {e["subject"]["id"] for e in _of_type(entries, "meeting.scheduled")}
    assert len(scheduled) >= 12
    for entry_type in ("meeting.outcome_recorded", "meeting.minutes_agreed"):
        assert {e["subject"]["id"] for e in _of_type(entries, entry_type)} == scheduled
    held = _of_type(entries, "meeting.held") + _of_type(entries, "meeting.held_in_confidence")
    assert {e["subject"]["id"] for e in held} == scheduled
    disclosures = Counter(e["data"]["disclosure"] for e in _of_type(entries, "meeting.scheduled"))
    assert disclosures["on_record"] > disclosures["non_attributed"] >= 1
    assert disclosures["chatham_house"] == 1
    # The Chatham House meeting's entry commits to its attendees without naming them.
    (sealed,) = _of_type(entries, "meeting.held_in_confidence")
    orgs = {e["subject"]["id"] for e in _of_type(entries, "organisation.registered")}
    assert len(sealed["data"]["attendance_commitments"]) >= 2
    assert not any(org in json.dumps(sealed["data"]) for org in orgs)  # (its actor: the recorder)


def test_confidential_meetings_attribute_nothing(entries: list[dict[str, Any]]) -> None:
    """No entry linked to a non-attributed, Chatham House or private meeting (an amendment
    raised, a decision taken, a proposal tabled or revised at it, its outcomes) names an
    organisation; only who attended a non-attributed meeting is published, and the demo
    does record amendments raised at one, unattributed."""
    orgs = {e["subject"]["id"] for e in _of_type(entries, "organisation.registered")}
    modes = {
        e["subject"]["id"]: e["data"]["disclosure"]
        for e in entries
        if e["type"] == "meeting.scheduled"
    }
    silent = {mid for mid, mode in modes.items() if mode in UNATTRIBUTED}
    assert {modes[m] for m in silent} == {"non_attributed", "chatham_house"}
    linked = [
        e
        for e in entries
        if e["data"].get("meeting_id") in silent
        or (e["subject"]["id"] in silent and e["type"] == "meeting.outcome_recorded")
    ]
    kinds = Counter(e["type"] for e in linked)
    assert kinds["proposal.amendment_proposed"] >= 3
    assert kinds["proposal.amendment_decided"] >= 3
    assert kinds["meeting.outcome_recorded"] == len(silent)
    for entry in linked:
        assert not any(org in json.dumps(entry["data"]) for org in orgs), entry
    raised = [e for e in linked if e["type"] == "proposal.amendment_proposed"]
    assert all(e["data"]["proposer_org"] is None for e in raised)


def test_outcomes_use_every_consensus_state_and_item_kind(
    entries: list[dict[str, Any]],
) -> None:
    """Outcome items use banked, still-to-discuss and options, and every item kind."""
    items = [i for e in _of_type(entries, "meeting.outcome_recorded") for i in e["data"]["items"]]
    assert {i["consensus"] for i in items if "consensus" in i} == {
        "banked",
        "still_to_discuss",
        "options",
    }
    assert {i["kind"] for i in items} == {
        "decision",
        "action",
        "agreement",
        "disagreement",
        "option",
    }
    assert any("amendment_id" in i and "proposal_id" in i for i in items)


def test_proposals_are_amended_revised_and_moved_through_statuses(
    entries: list[dict[str, Any]],
) -> None:
    """At least three proposals, one reaching text version 3 or more, with all decisions."""
    tabled = _of_type(entries, "proposal.tabled")
    assert len(tabled) >= 3
    assert all(3 <= len(e["data"]["sections"]) <= 6 for e in tabled)
    versions = Counter(e["subject"]["id"] for e in _of_type(entries, "proposal.revised"))
    assert max(versions.values()) + 1 >= 4
    decisions = {e["data"]["decision"] for e in _of_type(entries, "proposal.amendment_decided")}
    assert decisions == {"agreed", "disagreed", "withdrawn", "no_decision"}
    assert any(
        e["data"]["dissenting_orgs"] for e in _of_type(entries, "proposal.amendment_decided")
    )
    statuses = {e["data"]["new_status"] for e in _of_type(entries, "proposal.status_changed")}
    assert statuses >= {"discussion", "consultation", "revised", "recommended", "enacted"}
    assert statuses & {"withdrawn", "superseded"}


def test_proposals_link_to_the_digital_economy_act(entries: list[dict[str, Any]]) -> None:
    """Enacted proposals are linked to Part 5 of the Digital Economy Act 2017."""
    links = _of_type(entries, "proposal.legislative_outcome_linked")
    assert {e["data"]["legislation"] for e in links} == {"Digital Economy Act 2017"}
    provisions = {e["data"]["provision"] for e in links}
    assert {"Part 5, Chapter 1", "Part 5, Chapter 5"} <= provisions


def test_documents_match_their_recorded_hashes(
    recorded: tuple[Settings, DemoSummary, list[str]], entries: list[dict[str, Any]]
) -> None:
    """Every publication and set of minutes names the SHA-256 and size of a demo document."""
    _, summary, _ = recorded
    for sha, document in summary.documents.items():
        assert hashlib.sha256(document).hexdigest() == sha
        document.decode("utf-8")
    hashed = _of_type(entries, "publication.published") + _of_type(
        entries, "meeting.minutes_agreed"
    )
    for entry in hashed:
        document = summary.documents[entry["data"]["sha256"]]
        assert hashlib.sha256(document).hexdigest() == entry["data"]["sha256"]
        assert len(document) == entry["data"]["size"]
    assert {e["data"]["pub_kind"] for e in _of_type(entries, "publication.published")} >= {
        "meeting_note",
        "discussion_paper",
        "consultation_document",
        "consultation_response",
    }
    assert len(_of_type(entries, "publication.withdrawn")) == 1
    assert len(_of_type(entries, "publication.superseded")) == 1


def test_correction_points_at_an_earlier_outcome(
    recorded: tuple[Settings, DemoSummary, list[str]], entries: list[dict[str, Any]]
) -> None:
    """The correction names an earlier meeting-outcome entry by its index."""
    (correction,) = _of_type(entries, "correction.recorded")
    corrected = entries[correction["data"]["corrects_index"]]
    assert corrected["index"] < correction["index"]
    assert corrected["type"] == "meeting.outcome_recorded"
    assert correction["data"]["corrects_type"] == corrected["type"]
    was = correction["data"]["correction"]["was"]
    assert any(was in item["text"] for item in corrected["data"]["items"])
    meeting_id = corrected["subject"]["id"]
    (minutes,) = [
        e for e in _of_type(entries, "meeting.minutes_agreed") if e["subject"]["id"] == meeting_id
    ]
    text = recorded[1].documents[minutes["data"]["sha256"]].decode("utf-8")
    assert correction["data"]["correction"]["now"] in text
    assert was not in text


def test_entry_times_never_go_backwards(entries: list[dict[str, Any]]) -> None:
    """Entry times increase through 2014-2017 and never go backwards."""
    times = [e["time"] for e in entries]
    assert times == sorted(times)
    assert times[0].startswith("2014-05-01")
    assert times[-1].startswith("2017")


def test_chain_verifies(recorded: tuple[Settings, DemoSummary, list[str]]) -> None:
    """The recorded log verifies: links, hashes, head and event rows all agree."""
    settings, summary, _ = recorded
    reader = open_reader(settings)
    try:
        report = verify_log(reader)
    finally:
        reader.close()
    assert report.ok, report.damage
    assert report.size == summary.entries


def test_demo_is_deterministic(tmp_path: Path) -> None:
    """Recording the demo into two fresh ledgers gives identical entry bytes."""
    first, summary_one, _ = _record(tmp_path / "one")
    second, summary_two, _ = _record(tmp_path / "two")
    assert _entry_bytes(first) == _entry_bytes(second)
    assert summary_one == summary_two


def test_demo_clock_advances_and_never_goes_back() -> None:
    """The demo clock returns increasing aware UTC times and ignores jumps into the past."""
    clock = DemoClock(datetime(2014, 5, 1, 9, tzinfo=UTC))
    first, second = clock(), clock()
    assert first.tzinfo is not None
    assert first == datetime(2014, 5, 1, 9, tzinfo=UTC)
    assert timedelta(0) < second - first <= timedelta(minutes=10)
    clock.set(datetime(2015, 1, 1, tzinfo=UTC))
    assert clock() == datetime(2015, 1, 1, tzinfo=UTC)
    clock.set(datetime(2014, 1, 1, tzinfo=UTC))
    assert clock() > datetime(2015, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2016, 1, 1))
