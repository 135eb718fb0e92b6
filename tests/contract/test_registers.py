"""The registers (meetings, publications, organisations, processes) against the demo's log.

Expectations are computed from the stored entries themselves, never from the views' code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ledger.aggregates import Meeting
from ledger.application import LedgerApplication
from ledger.demo import DemoSummary, demo_id, record_demo
from ledger.storage import open_reader
from projections.db import Db, connect_views
from projections.meetings import MeetingsView, get_meeting, list_meetings
from projections.organisations import OrganisationsView, get_organisation, list_organisations
from projections.process import ProcessView, get_process, list_processes, timeline
from projections.proposals import ProposalsView
from projections.publications import PublicationsView, get_publication, list_publications
from projections.runner import TRACKING, Runner
from tests.conftest import Store
from tests.helpers import OFFICIAL, record_as_before

WITHHELD = {"chatham_house", "private"}
UNATTRIBUTED = {"non_attributed", "chatham_house", "private"}


@dataclass
class Demo:
    """The demo recorded into ``store``, the views caught up, and the parsed entries."""

    store: Store
    summary: DemoSummary
    db: Db
    runner: Runner
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def at(self) -> int:
        return self.runner.as_of_index(None)

    def reload(self) -> None:
        reader = open_reader(self.store.settings)
        try:
            head = reader.head()
            assert head is not None
            self.entries = [json.loads(raw) for raw in reader.entries(0, head.size)]
        finally:
            reader.close()

    def record(self, commands: Callable[[LedgerApplication], None]) -> None:
        """Record more commands after the demo and bring the views up to date."""
        app = LedgerApplication(self.store.settings)
        try:
            commands(app)
        finally:
            app.close()
        self.runner.catch_up()
        self.reload()


@pytest.fixture
def demo(store: Store) -> Iterator[Demo]:
    """The demo recorded and every register caught up with it."""
    app = LedgerApplication(store.settings)
    summary = record_demo(app)
    app.close()
    db = connect_views(store.settings)
    reader = open_reader(store.settings, snapshot=False)
    views = [
        MeetingsView(),
        PublicationsView(),
        OrganisationsView(),
        ProcessView(),
        ProposalsView(),
    ]
    runner = Runner(db, reader, views)
    runner.setup()
    runner.catch_up()
    found = Demo(store, summary, db, runner)
    found.reload()
    try:
        yield found
    finally:
        db.close()
        reader.close()


# Expectations, straight from the entries ------------------------------------------------------


def _of(entries: list[dict[str, Any]], prefix: str, k: int) -> list[dict[str, Any]]:
    return [e for e in entries[: k + 1] if e["type"].startswith(prefix)]


def expected_meetings(entries: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """Every meeting scheduled at or before ``k``, as the public register should show it."""
    meetings: dict[str, dict[str, Any]] = {}
    for e in _of(entries, "meeting.", k):
        mid, data = e["subject"]["id"], e["data"]
        if e["type"] == "meeting.scheduled":
            meetings[mid] = {
                "id": mid,
                "process_id": data["process_id"],
                "strand_id": data["strand_id"],
                "title": data["title"],
                "starts_at": data["starts_at"],
                "disclosure": data["disclosure"],
                "convenor_org": data["convenor_org"],
                "held": False,
                "held_at": None,
                "attending_orgs": [],
                "attendee_count": 0,
                "attending_individuals": 0,
                "minutes": None,
                "scheduled_index": e["index"],
                "as_of_index": k,
            }
        elif e["type"] in ("meeting.held", "meeting.held_with_people"):
            meetings[mid].update(
                held=True,
                held_at=data["held_at"],
                attending_orgs=data["attending_orgs"],
                attendee_count=len(data["attending_orgs"]),
                attending_individuals=len(data.get("attending_people", [])),
            )
        elif e["type"] == "meeting.held_in_confidence":
            meetings[mid].update(
                held=True,
                held_at=data["held_at"],
                attending_orgs=[],
                attendee_count=len(data["attendance_commitments"]),
            )
        elif e["type"] == "meeting.minutes_agreed":
            meetings[mid]["minutes"] = {
                "sha256": data["sha256"],
                "size": data["size"],
                "media_type": data["media_type"],
            }
    for meeting in meetings.values():
        withheld = meeting["disclosure"] in WITHHELD
        meeting["attendance_withheld"] = withheld
        if withheld:
            meeting["attending_orgs"] = None
    return sorted(meetings.values(), key=lambda m: (m["starts_at"], m["scheduled_index"]))


def expected_outcomes(entries: list[dict[str, Any]], meeting_id: str, k: int) -> list[Any]:
    """The outcomes recorded for a meeting up to ``k``, raw (with every attribution)."""
    return [
        (e["index"], e["data"]["outcome_id"], e["data"]["items"])
        for e in _of(entries, "meeting.outcome_recorded", k)
        if e["subject"]["id"] == meeting_id
    ]


def expected_publications(entries: list[dict[str, Any]], k: int) -> dict[str, dict[str, Any]]:
    """Each publication made by ``k``: its state, reason and successor."""
    found: dict[str, dict[str, Any]] = {}
    for e in _of(entries, "publication.", k):
        pid, data = e["subject"]["id"], e["data"]
        if e["type"] == "publication.published":
            found[pid] = {**data, "state": "published", "reason": None, "superseded_by": None}
        elif e["type"] == "publication.withdrawn":
            found[pid].update(state="withdrawn", reason=data["reason"])
        else:
            found[pid].update(
                state="superseded", reason=data["reason"], superseded_by=data["superseded_by"]
            )
    return found


def expected_memberships(entries: list[dict[str, Any]], k: int) -> dict[str, set[Any]]:
    """Each organisation's memberships in force at ``k``: (process, group, role)."""
    found: dict[str, dict[tuple[str, str], str]] = {}
    for e in _of(entries, "organisation.", k):
        oid, data = e["subject"]["id"], e["data"]
        held = found.setdefault(oid, {})
        if e["type"] == "organisation.membership_added":
            held[(data["process_id"], data["group"])] = data["role"]
        elif e["type"] == "organisation.membership_ended":
            del held[(data["process_id"], data["group"])]
    return {oid: {(*key, role) for key, role in held.items()} for oid, held in found.items()}


def expected_participation(entries: list[dict[str, Any]], oid: str) -> dict[str, int]:
    """Disclosed attendance, amendments proposed and dissents of one organisation."""
    disclosure: dict[str, str] = {}
    attended = proposed = 0
    dissent: dict[tuple[str, str], bool] = {}  # amendment ids are per proposal
    for e in entries:
        data = e["data"]
        if e["type"] == "meeting.scheduled":
            disclosure[e["subject"]["id"]] = data["disclosure"]
        elif e["type"] == "meeting.held":
            mode = disclosure[e["subject"]["id"]]
            attended += mode in {"on_record", "non_attributed"} and oid in data["attending_orgs"]
        elif e["type"] == "proposal.amendment_proposed":
            proposed += data["proposer_org"] == oid
        elif e["type"] == "proposal.amendment_decided":
            dissent[(e["subject"]["id"], data["amendment_id"])] = oid in data["dissenting_orgs"]
    return {
        "meetings_attended": attended,
        "amendments_proposed": proposed,
        "dissents": sum(dissent.values()),
    }


def _stripped(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in item.items() if k != "orgs"} for item in items]


# Tests ---------------------------------------------------------------------------------------


def test_registers_count_what_the_demo_recorded(demo: Demo) -> None:
    """Each register lists as many meetings, publications, organisations, strands and phases
    as the demo recorded."""
    db, at, entries = demo.db, demo.at, demo.entries
    assert at == len(entries) - 1 == demo.summary.entries - 1
    types = [e["type"] for e in entries]
    assert len(list_meetings(db, at)) == demo.summary.meetings == types.count("meeting.scheduled")
    publications = list_publications(db, at)
    assert len(publications) == demo.summary.publications
    assert [p["published_index"] for p in publications] == [
        e["index"] for e in entries if e["type"] == "publication.published"
    ]
    assert len(list_organisations(db, at)) == demo.summary.organisations
    departments = [
        e
        for e in entries
        if e["type"] == "organisation.registered" and e["data"]["org_kind"] == "department"
    ]
    assert len(list_organisations(db, at, org_kind="department")) == len(departments)
    processes = list_processes(db, at)
    assert [p["id"] for p in processes] == [demo.summary.process_id]
    process = get_process(db, demo.summary.process_id, at)
    assert process is not None
    assert len(process["strands"]) == types.count("process.strand_added") == 3
    assert len(process["phases"]) == types.count("process.phase_started")


def test_a_held_meeting_shows_its_outcomes_and_minutes(demo: Demo) -> None:
    """An on-the-record meeting shows attendance, every outcome with its attributions, and
    its agreed minutes."""
    mid = demo_id("meeting", "scoping-workshop")
    meeting = get_meeting(demo.db, mid, demo.at)
    assert meeting is not None
    (expected,) = [m for m in expected_meetings(demo.entries, demo.at) if m["id"] == mid]
    assert {k: v for k, v in meeting.items() if k != "outcomes"} == expected
    assert meeting["held"]
    assert meeting["disclosure"] == "on_record"
    assert meeting["minutes"]["sha256"] in demo.summary.documents
    outcomes = expected_outcomes(demo.entries, mid, demo.at)
    assert outcomes
    assert any("orgs" in item for _, _, items in outcomes for item in items)
    assert [(o["index"], o["outcome_id"], o["items"]) for o in meeting["outcomes"]] == outcomes
    times = {e["index"]: e["time"] for e in demo.entries}
    assert all(o["time"] == times[o["index"]] for o in meeting["outcomes"])
    assert get_meeting(demo.db, "no-such-meeting", demo.at) is None


def test_disclosure_modes_are_honoured(demo: Demo) -> None:
    """Chatham House and private meetings withhold attendance; non-attributed, Chatham House
    and private outcomes lose their attributions, which the tables still keep."""
    roundtable = demo_id("meeting", "civil-society-roundtable")
    unattributed = demo_id("meeting", "eag-4")
    orgs = [demo_id("organisation", s) for s in ("privacy-forum", "digital-liberties")]
    said = [{"kind": "action", "text": "Follow up.", "orgs": orgs}]
    private: list[str] = []

    def more(app: LedgerApplication) -> None:
        # Attributed outcomes at confidential meetings, as logs recorded before the
        # attribution rule may hold (the rule now refuses them: tests/api/test_attribution.py).
        record_as_before(app, Meeting, roundtable, "record_outcome", items=said)
        record_as_before(app, Meeting, unattributed, "record_outcome", items=said)
        receipt = app.schedule_meeting(
            process_id=demo.summary.process_id,
            title="Private briefing",
            starts_at="2017-06-01T10:00:00Z",
            disclosure="private",
            convenor_org=orgs[0],
            actor=OFFICIAL,
        )
        private.append(receipt.subject_id)
        app.record_meeting_held(
            private[0], attending_orgs=orgs, held_at="2017-06-01T10:00:00Z", actor=OFFICIAL
        )
        record_as_before(app, Meeting, private[0], "record_outcome", items=said)

    demo.record(more)
    db, at = demo.db, demo.at
    modes = {m["id"]: m["disclosure"] for m in expected_meetings(demo.entries, at)}
    assert modes[roundtable] == "chatham_house"
    assert modes[unattributed] == "non_attributed"
    assert modes[private[0]] == "private"
    for mid, mode in modes.items():
        meeting = get_meeting(db, mid, at)
        assert meeting is not None
        assert meeting["attendance_withheld"] is (mode in WITHHELD)
        raw = expected_outcomes(demo.entries, mid, at)
        shown = [o["items"] for o in meeting["outcomes"]]
        if mode in UNATTRIBUTED:
            assert shown == [_stripped(items) for _, _, items in raw]
        else:
            assert shown == [items for _, _, items in raw]
    withheld = {m["id"] for m in list_meetings(db, at) if m["attending_orgs"] is None}
    assert withheld == {mid for mid, mode in modes.items() if mode in WITHHELD}
    briefing = get_meeting(db, private[0], at)
    assert briefing is not None
    assert briefing["outcomes"][0]["items"] == _stripped(said)
    # The log itself does not say who attended the private briefing, only how many did.
    (held,) = [
        e
        for e in demo.entries
        if e["subject"]["id"] == private[0] and e["type"].startswith("meeting.held")
    ]
    assert held["type"] == "meeting.held_in_confidence"
    assert len(held["data"]["attendance_commitments"]) == len(orgs)
    assert not any(org in json.dumps(held) for org in orgs)
    assert briefing["attendee_count"] == len(orgs)
    assert db.one(
        "SELECT attending_orgs FROM pv_meetings WHERE id = ? AND valid_to IS NULL", [private[0]]
    ) == ("[]",)
    stored = db.all("SELECT items FROM pv_meeting_outcomes WHERE meeting_id = ?", [roundtable])
    assert any("orgs" in item for (items,) in stored for item in json.loads(items))


def test_withdrawn_and_superseded_publications(demo: Demo) -> None:
    """A withdrawn or superseded publication stays listed with its state, reason and
    successor, and was plainly published before that."""
    db, at, entries = demo.db, demo.at, demo.entries
    expected = expected_publications(entries, at)
    states = {p["id"]: p["state"] for p in list_publications(db, at)}
    assert states == {pid: p["state"] for pid, p in expected.items()}
    assert sorted(states.values()).count("withdrawn") == 1
    assert sorted(states.values()).count("superseded") == 1
    for pid, p in expected.items():
        found = get_publication(db, pid, at)
        assert found is not None
        for key in ("title", "pub_kind", "sha256", "size", "media_type", "proposal_ids"):
            assert found[key] == p[key]
        assert (found["state"], found["reason"], found["superseded_by"]) == (
            p["state"],
            p["reason"],
            p["superseded_by"],
        )
        assert found["supersedes"] == [o for o, q in expected.items() if q["superseded_by"] == pid]
        assert found["sha256"] in demo.summary.documents
    changes = [
        e for e in entries if e["type"] in {"publication.withdrawn", "publication.superseded"}
    ]
    for change in changes:
        before = get_publication(db, change["subject"]["id"], change["index"] - 1)
        assert before is not None
        assert before["state"] == "published"
        assert before["reason"] is None
    # Filters: about a meeting, about a proposal, of a kind.
    mid = demo_id("meeting", "fed-wg-1")
    assert [p["id"] for p in list_publications(db, at, meeting_id=mid)] == [
        pid for pid, p in expected.items() if mid in p["meeting_ids"]
    ]
    proposal = demo_id("proposal", "gateway")
    assert [p["id"] for p in list_publications(db, at, proposal_id=proposal)] == [
        pid for pid, p in expected.items() if proposal in p["proposal_ids"]
    ]
    assert [p["id"] for p in list_publications(db, at, pub_kind="report")] == [
        pid for pid, p in expected.items() if p["pub_kind"] == "report"
    ]


def test_memberships_follow_the_entries(demo: Demo) -> None:
    """Every organisation's memberships in force match the entries, also once one ends."""
    leaver = demo_id("organisation", "contractors")
    group = "tailored-public-services"

    def leave(app: LedgerApplication) -> None:
        app.end_membership(
            leaver, process_id=demo.summary.process_id, group=group, reason="Left.", actor=OFFICIAL
        )

    before = demo.at
    demo.record(leave)
    db, at = demo.db, demo.at
    assert at == before + 1
    for k in (before, at):
        expected = expected_memberships(demo.entries, k)
        for org in list_organisations(db, k):
            found = get_organisation(db, org["id"], k)
            assert found is not None
            assert found["as_of_index"] == k
            got = {(m["process_id"], m["group"], m["role"]) for m in found["memberships"]}
            assert got == expected.get(org["id"], set())
    ico = get_organisation(db, demo_id("organisation", "ico"), at)
    assert ico is not None
    assert {m["role"] for m in ico["memberships"]} == {"observer"}
    assert len(ico["memberships"]) == 4
    gone = get_organisation(db, leaver, at)
    was = get_organisation(db, leaver, before)
    assert gone is not None
    assert was is not None
    assert group in {m["group"] for m in was["memberships"]}
    assert group not in {m["group"] for m in gone["memberships"]}
    assert get_organisation(db, "no-such-organisation", at) is None


def test_participation_counts(demo: Demo) -> None:
    """Each organisation's disclosed attendance, amendments proposed and dissents match the
    entries, and the privacy forum's are not trivially zero."""
    db, at = demo.db, demo.at
    for org in list_organisations(db, at):
        found = get_organisation(db, org["id"], at)
        assert found is not None
        assert found["participation"] == expected_participation(demo.entries, org["id"])
    forum = get_organisation(db, demo_id("organisation", "privacy-forum"), at)
    assert forum is not None
    assert all(n > 0 for n in forum["participation"].values())
    # The Chatham House roundtable it attended does not count: its entry does not name it.
    roundtable = [
        e
        for e in demo.entries
        if e["type"].startswith("meeting.held")
        and e["subject"]["id"] == demo_id("meeting", "civil-society-roundtable")
    ]
    assert roundtable[0]["type"] == "meeting.held_in_confidence"
    assert forum["id"] not in json.dumps(roundtable[0])
    attended_open = sum(
        forum["id"] in e["data"]["attending_orgs"]
        for e in demo.entries
        if e["type"] == "meeting.held"
    )
    assert forum["participation"]["meetings_attended"] == attended_open


def test_process_strands_and_phases(demo: Demo) -> None:
    """The process shows its strands and phases in order, each phase ending when the next
    starts, both now and part-way through."""
    pid = demo.summary.process_id
    phases = [e for e in demo.entries if e["type"] == "process.phase_started"]
    strands = [e for e in demo.entries if e["type"] == "process.strand_added"]
    for k in (phases[2]["index"], phases[2]["index"] - 1, demo.at):
        process = get_process(demo.db, pid, k)
        assert process is not None
        assert process["as_of_index"] == k
        assert [s["strand_id"] for s in process["strands"]] == [
            e["data"]["strand_id"] for e in strands if e["index"] <= k
        ]
        started = [e for e in phases if e["index"] <= k]
        assert process["current_phase"] == started[-1]["data"]["phase_id"]
        assert [
            (p["phase_id"], p["started_index"], p["started_time"], p["ended_time"])
            for p in process["phases"]
        ] == [
            (
                e["data"]["phase_id"],
                e["index"],
                e["time"],
                started[n + 1]["time"] if n + 1 < len(started) else None,
            )
            for n, e in enumerate(started)
        ]
    assert get_process(demo.db, pid, -1) is None
    assert list_processes(demo.db, -1) == []


def test_timeline_is_newest_first(demo: Demo) -> None:
    """The latest-changes feed lists entries newest first, pages with ``before`` and never
    shows entries after ``at``."""
    db, at, entries = demo.db, demo.at, demo.entries

    def expect(indexes: range) -> list[tuple[Any, ...]]:
        return [
            (
                entries[i]["index"],
                entries[i]["time"],
                entries[i]["type"],
                entries[i]["subject"]["id"],
            )
            for i in indexes
        ]

    def shown(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(r["index"], r["time"], r["type"], r["subject_id"]) for r in rows]

    first = timeline(db, at, limit=10)
    assert shown(first) == expect(range(at, at - 10, -1))
    assert all(r["subject_kind"] == r["type"].split(".")[0] for r in first)
    second = timeline(db, at, limit=10, before=first[-1]["index"])
    assert shown(second) == expect(range(at - 10, at - 20, -1))
    assert shown(timeline(db, 40, limit=5)) == expect(range(40, 35, -1))
    assert shown(timeline(db, 3, limit=50)) == expect(range(3, -1, -1))
    assert len(timeline(db, at)) == 50
    assert timeline(db, -1) == []


def test_point_in_time_meetings_publications_and_organisations(demo: Demo) -> None:
    """At every index k the registers show exactly what entries 0..k imply: only meetings
    scheduled by k, held only once the held entry is at or before k."""
    db, entries = demo.db, demo.entries
    for k in range(-1, len(entries)):
        assert list_meetings(db, k) == expected_meetings(entries, k), k
        states = {p["id"]: p["state"] for p in list_publications(db, k)}
        assert states == {pid: p["state"] for pid, p in expected_publications(entries, k).items()}
        registered = [e["subject"]["id"] for e in _of(entries, "organisation.registered", k)]
        assert [o["id"] for o in list_organisations(db, k)] == registered
    # Filters, and one meeting's outcomes as they accumulate.
    strand = "tailored-public-services"
    for k in (100, len(entries) - 1):
        assert list_meetings(db, k, strand_id=strand) == [
            m for m in expected_meetings(entries, k) if m["strand_id"] == strand
        ]
    assert list_meetings(db, demo.at, process_id="other") == []
    mid = demo_id("meeting", "tps-wg-3")
    touching = [e["index"] for e in entries if e["subject"]["id"] == mid]
    for k in sorted({demo.at, *touching, *(t - 1 for t in touching)}):
        meeting = get_meeting(db, mid, k)
        if k < touching[0]:
            assert meeting is None
            continue
        assert meeting is not None
        assert [(o["index"], o["outcome_id"], o["items"]) for o in meeting["outcomes"]] == (
            expected_outcomes(entries, mid, k)
        )


def _snapshot(demo: Demo, at: int) -> dict[str, Any]:
    db = demo.db
    meetings = list_meetings(db, at)
    publications = list_publications(db, at)
    organisations = list_organisations(db, at)
    processes = list_processes(db, at)
    return {
        "meetings": meetings,
        "meeting": [get_meeting(db, m["id"], at) for m in meetings],
        "publications": publications,
        "publication": [get_publication(db, p["id"], at) for p in publications],
        "organisations": organisations,
        "organisation": [get_organisation(db, o["id"], at) for o in organisations],
        "processes": processes,
        "process": [get_process(db, p["id"], at) for p in processes],
        "timeline": timeline(db, at, limit=500),
    }


def test_rebuild_and_replay_to_k_give_identical_answers(demo: Demo) -> None:
    """A full rebuild answers exactly as the incremental views did, and views fed only
    entries 0..k answer now exactly as the full views answer as of k."""
    middle = demo.at // 2
    latest, as_of_middle = _snapshot(demo, demo.at), _snapshot(demo, middle)
    assert latest["meeting"]
    assert latest["organisation"]
    assert latest["publication"]
    demo.runner.rebuild()
    assert _snapshot(demo, demo.at) == latest
    assert _snapshot(demo, middle) == as_of_middle
    with demo.db.transaction() as db:
        for view in demo.runner.views.values():
            for table in view.tables:
                db.execute(f"DELETE FROM {table}")
        db.execute(f"UPDATE {TRACKING} SET position = 0")
    demo.runner.catch_up(stop=middle + 1)
    assert demo.runner.as_of_index(None) == middle
    assert _snapshot(demo, middle) == as_of_middle
