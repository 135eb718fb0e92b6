"""Issue 16, item 5: a meeting that attributes no one (non-attributed, Chatham House, private)
never has an organisation named in what is linked to it, over HTTP and `ledger record`, on
SQLite and PostgreSQL; pages and feeds say where it was raised instead of who raised it,
also for older logs that did name organisations there.
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.aggregates import Meeting, Proposal
from ledger.application import LedgerApplication
from ledger.storage import LogReader
from tests.api.test_writes import SETUP, Api, check_receipt, open_api, poll, problem
from tests.conftest import Store
from tests.helpers import record_as_before
from tests.integration.test_cli import assert_one_line, ledger
from tests.workspace.conftest import csrf_of

CONFIDENTIAL = ("non_attributed", "chatham_house", "private")
WORDS = {
    "non_attributed": "a meeting held on a non-attributed basis",
    "chatham_house": "a meeting held under the Chatham House Rule",
    "private": "a private meeting",
}
NAMES = ("Harbourside Tenants Union", "Fenwick Data Cooperative")
CHANGE = [{"op": "replace", "section_id": "s1", "text": "Publish every sharing agreement."}]


@dataclass
class World:
    """A process, two organisations, a proposal tabled on record and a held meeting."""

    process: str
    orgs: list[str]
    proposal: str
    meeting: str
    on_record: str


def _world(app: LedgerApplication, mode: str) -> World:
    process = app.start_process(title="Data sharing", actor=SETUP).subject_id
    app.add_strand(process, strand_id="r", title="Research", actor=SETUP)
    orgs = [
        app.register_organisation(name=name, org_kind="civil_society", actor=SETUP).subject_id
        for name in NAMES
    ]
    proposal = app.table_proposal(
        process_id=process,
        strand_id="r",
        title="Register of sharing",
        sections=[{"id": "s1", "heading": "Register", "text": "Keep a register."}],
        sponsor_org=orgs[0],
        actor=SETUP,
    ).subject_id
    meetings = []
    for disclosure in (mode, "on_record"):
        meeting = app.schedule_meeting(
            process_id=process,
            title=f"Roundtable ({disclosure})",
            starts_at="2026-03-01T09:00:00Z",
            disclosure=disclosure,
            convenor_org=orgs[0],
            actor=SETUP,
        ).subject_id
        app.record_meeting_held(
            meeting, attending_orgs=orgs, held_at="2026-03-01T09:00:00Z", actor=SETUP
        )
        meetings.append(meeting)
    return World(process, orgs, proposal, meetings[0], meetings[1])


def _refused(api: Api, path: str, body: dict[str, Any], field: str, mode: str) -> None:
    """422 problem+json naming ``field`` and the meeting's rule; nothing recorded."""
    size = api.size
    found = problem(api.post(path, api.officials["recorder"], body), 422)
    assert found["field"] == field, found
    assert found["detail"].startswith(f"{field}: "), found
    assert mode != "chatham_house" or "Chatham House Rule" in found["detail"], found
    assert "may name an organisation" in found["detail"], found
    assert api.size == size


def _page(api: Api, path: str, index: int) -> str:
    response = api.client.get(path, params={"as_of": index})
    assert response.status_code == 200, response.text
    return response.text


@pytest.mark.parametrize("mode", CONFIDENTIAL)
def test_confidential_meetings_refuse_attribution_over_http(store: Store, mode: str) -> None:
    """An amendment, decision, dissent, outcome or tabling that names an organisation at a
    non-attributed, Chatham House or private meeting is refused (422 naming the field);
    the unattributed form is recorded, and the history page and Atom feed say where it was
    raised, naming no organisation."""
    with open_api(store) as api:
        w = _world(api.ledger, mode)
        recorder = api.officials["recorder"]
        amendments = f"/proposals/{w.proposal}/amendments"
        _refused(
            api,
            amendments,
            {
                "base_version": 1,
                "changes": CHANGE,
                "proposer_org": w.orgs[1],
                "meeting_id": w.meeting,
            },
            "proposer_org",
            mode,
        )
        _refused(
            api,
            "/proposals",
            {
                "process_id": w.process,
                "strand_id": "r",
                "title": "Tabled there",
                "sections": [{"id": "s1", "heading": "H", "text": "T"}],
                "sponsor_org": w.orgs[1],
                "meeting_id": w.meeting,
            },
            "meeting_id",
            mode,
        )
        # Without a meeting that attributes no one, an amendment still needs its proposer.
        size = api.size
        missing = problem(
            api.post(amendments, recorder, {"base_version": 1, "changes": CHANGE}), 422
        )
        assert missing["detail"].startswith("proposer_org is required"), missing
        body = {"base_version": 1, "changes": CHANGE, "meeting_id": w.on_record}
        problem(api.post(amendments, recorder, body), 422)
        assert api.size == size

        raised = check_receipt(
            api,
            api.post(
                amendments,
                recorder,
                {
                    "base_version": 1,
                    "changes": CHANGE,
                    "rationale": "Raised in the room.",
                    "meeting_id": w.meeting,
                },
            ),
            recorder,
        )
        entry = json.loads(raised["entry"])
        assert entry["type"] == "proposal.amendment_proposed"
        assert entry["data"]["proposer_org"] is None
        assert entry["data"]["meeting_id"] == w.meeting
        decision = f"/proposals/{w.proposal}/amendments/A1/decision"
        _refused(
            api,
            decision,
            {
                "decision": "agreed",
                "consensus": "banked",
                "dissenting_orgs": [w.orgs[1]],
                "meeting_id": w.meeting,
            },
            "dissenting_orgs",
            mode,
        )
        decided = check_receipt(
            api,
            api.post(
                decision,
                recorder,
                {
                    "decision": "agreed",
                    "consensus": "banked",
                    "meeting_id": w.meeting,
                    "note": "One member dissented.",
                },
            ),
            recorder,
        )
        outcomes = f"/meetings/{w.meeting}/outcomes"
        items: list[dict[str, Any]] = [
            {"kind": "action", "text": "Write up the options."},
            {"kind": "agreement", "text": "Publish.", "orgs": [w.orgs[0]], "consensus": "banked"},
        ]
        _refused(api, outcomes, {"items": items}, "items[1].orgs", mode)
        del items[1]["orgs"]
        check_receipt(api, api.post(outcomes, recorder, {"items": items}), recorder)
        for receipt in (raised, decided):
            assert not any(org in receipt["entry"] for org in w.orgs), receipt["entry"]
        # The same attributions at the on-record meeting are recorded as they always were.
        attributed = check_receipt(
            api,
            api.post(
                amendments,
                recorder,
                {
                    "base_version": 1,
                    "changes": CHANGE,
                    "proposer_org": w.orgs[1],
                    "meeting_id": w.on_record,
                },
            ),
            recorder,
        )
        assert json.loads(attributed["entry"])["data"]["proposer_org"] == w.orgs[1]

        at = attributed["index"]
        poll(
            api,
            f"/proposals/{w.proposal}",
            lambda r: r.status_code == 200 and r.json()["as_of_index"] >= at,
        )
        history = _page(api, f"/web/proposals/{w.proposal}/history", at)
        assert f"Raised at {WORDS[mode]}" in history
        assert "not attributed to any organisation" in history
        assert f"Decided at {WORDS[mode]}: any dissent is not attributed" in history
        assert NAMES[1] in history  # A2, on the record, names its proposer
        amendment = history.split('id="amendment-A1"', 1)[1].split('id="amendment-A2"', 1)[0]
        assert not any(name in amendment for name in NAMES), amendment
        feed = api.client.get(f"/feeds/proposals/{w.proposal}.atom", params={"as_of": at})
        assert feed.status_code == 200, feed.text
        titles = [t.text or "" for t in ET.fromstring(feed.content).findall(".//{*}title")]
        assert f"Amendment A1 raised at {WORDS[mode]}" in titles, titles
        assert f"Amendment A2 proposed by {NAMES[1]}" in titles, titles
        checked = 0
        for item in ET.fromstring(feed.content).findall("{*}entry"):
            said = ET.tostring(item, encoding="unicode")
            if any(f"/entry/{r['index']}<" in said for r in (raised, decided)):
                assert not any(name in said for name in NAMES), said
                checked += 1
        assert checked == 2, feed.text
        meeting_page = _page(api, f"/web/meetings/{w.meeting}", at)
        assert "Raised here, attributed to no one" in meeting_page


def test_record_refuses_attribution_at_a_chatham_house_meeting(store: Store) -> None:
    """`ledger record` refuses an attributed amendment at a Chatham House meeting with one
    line naming the field, records nothing, and records the unattributed form."""
    app = LedgerApplication(store.settings)
    try:
        w = _world(app, "chatham_house")
    finally:
        app.close()
    env = store.env()
    args = ["record", "propose_amendment", "--actor", "clerk", "--org", w.orgs[0]]
    payload: dict[str, Any] = {
        "proposal_id": w.proposal,
        "base_version": 1,
        "changes": CHANGE,
        "proposer_org": w.orgs[1],
        "meeting_id": w.meeting,
    }
    refused = ledger(env, *args, "--json", orjson.dumps(payload).decode())
    assert refused.returncode == 1, refused
    assert_one_line(refused.stderr)
    assert "proposer_org: " in refused.stderr
    assert "Chatham House Rule" in refused.stderr
    entries = ledger(env, "entries")
    assert entries.returncode == 0
    lines = entries.stdout.splitlines()
    assert not any('"proposal.amendment_proposed"' in line for line in lines)
    del payload["proposer_org"]
    done = ledger(env, *args, "--json", orjson.dumps(payload).decode())
    assert done.returncode == 0, done.stderr
    entry = orjson.loads(orjson.loads(done.stdout)["entry"])
    assert entry["index"] == len(lines)
    assert entry["data"]["proposer_org"] is None
    assert ledger(env, "verify").returncode == 0


def test_older_attributions_at_confidential_meetings_replay_verify_and_are_not_shown(
    store: Store,
) -> None:
    """A log written before the rule, naming a proposer and a dissenter at a Chatham House
    meeting, still verifies and rebuilds; its pages, feed and the organisation's page and
    participation do not name them (the entries still do: the log is never changed)."""
    with open_api(store) as api:
        w = _world(api.ledger, "chatham_house")
        proposal = record_as_before(
            api.ledger,
            Proposal,
            w.proposal,
            "propose_amendment",
            base_version=1,
            changes=CHANGE,
            rationale="",
            proposer_org=w.orgs[1],
            meeting_id=w.meeting,
        )
        decided = record_as_before(
            api.ledger,
            Proposal,
            w.proposal,
            "decide_amendment",
            amendment_id="A1",
            decision="agreed",
            consensus="banked",
            dissenting_orgs=[w.orgs[0]],
            meeting_id=w.meeting,
            note="",
        )
        record_as_before(
            api.ledger,
            Meeting,
            w.meeting,
            "record_outcome",
            items=[{"kind": "action", "text": "Follow up.", "orgs": [w.orgs[1]]}],
        )
        assert json.loads(proposal.entry)["data"]["proposer_org"] == w.orgs[1]
        at = decided.index + 1
        poll(
            api,
            f"/organisations/{w.orgs[1]}",
            lambda r: r.status_code == 200 and r.json()["as_of_index"] >= at,
        )
        history = _page(api, f"/web/proposals/{w.proposal}/history", at)
        amendment = history.split('id="amendment-A1"', 1)[1]
        assert "Raised at a meeting held under the Chatham House Rule" in amendment
        assert not any(name in amendment for name in NAMES), amendment
        feed = api.client.get(f"/feeds/proposals/{w.proposal}.atom", params={"as_of": at}).text
        assert "Amendment A1 raised at a meeting held under the Chatham House Rule" in feed
        assert NAMES[1] not in feed
        for org in w.orgs:
            found = api.client.get(f"/organisations/{org}", params={"as_of": at}).json()
            assert found["participation"]["amendments_proposed"] == 0, found
            assert found["participation"]["dissents"] == 0, found
            page = _page(api, f"/web/organisations/{org}", at)
            assert "Amendment A1" not in page
        meeting = api.client.get(f"/meetings/{w.meeting}", params={"as_of": at}).json()
        assert all("orgs" not in i for o in meeting["outcomes"] for i in o["items"]), meeting
    verified = ledger(store.env(), "verify")
    assert verified.returncode == 0, verified.stderr
    rebuilt = ledger(store.env(), "projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr


@dataclass
class Corrected:
    """Entries a correction may point at, around a meeting that attributes no one."""

    tabled: int  # proposal.tabled, on record, naming its sponsor
    raised: int  # A1 raised unattributed at the meeting
    decided: int  # A1 decided with no meeting of its own (linked by the amendment's)
    outcome: int  # the meeting's outcome, naming no one
    held: int  # meeting.held_in_confidence: attendance sealed
    attributed: int  # A2 proposed by an organisation at the on-record meeting


def _corrected(app: LedgerApplication, w: World) -> Corrected:
    def log(reader: LogReader) -> list[bytes]:
        head = reader.head()
        assert head is not None
        return reader.entries(0, head.size)

    tabled = next(i for i, e in enumerate(app._read(log)) if b'"proposal.tabled"' in e)
    held = next(i for i, e in enumerate(app._read(log)) if b'"meeting.held_in_confidence"' in e)
    raised = app.propose_amendment(
        w.proposal, base_version=1, changes=CHANGE, meeting_id=w.meeting, actor=SETUP
    ).index
    decided = app.decide_amendment(
        w.proposal, amendment_id="A1", decision="agreed", consensus="banked", actor=SETUP
    ).index
    outcome = app.record_meeting_outcome(
        w.meeting, items=[{"kind": "action", "text": "Write it up."}], actor=SETUP
    ).index
    attributed = app.propose_amendment(
        w.proposal,
        base_version=1,
        changes=CHANGE,
        proposer_org=w.orgs[1],
        meeting_id=w.on_record,
        actor=SETUP,
    ).index
    return Corrected(tabled, raised, decided, outcome, held, attributed)


def _refused_corrections(w: World, c: Corrected) -> list[tuple[int, dict[str, Any], str]]:
    """(entry corrected, correction, the field the refusal names)."""
    return [
        (c.raised, {"proposer_org": w.orgs[1]}, "correction.proposer_org"),
        (c.raised, {"rationale": w.orgs[0]}, "correction.rationale"),
        (c.held, {"attending_orgs": [w.orgs[1]]}, "correction.attending_orgs[0]"),
        (c.decided, {"dissenting_orgs": [w.orgs[0]]}, "correction.dissenting_orgs"),
        (
            c.outcome,
            {"items": [{"kind": "action", "text": "Write it up.", "orgs": [w.orgs[0]]}]},
            "correction.items[0].orgs",
        ),
        (c.attributed, {"meeting_id": w.meeting}, "correction.meeting_id"),
        (c.tabled, {"meeting_id": w.meeting}, "correction.meeting_id"),
        (
            c.attributed,
            {"meeting_id": w.meeting, "proposer_org": w.orgs[0]},
            "correction.proposer_org",
        ),
    ]


@pytest.mark.parametrize("mode", ["chatham_house", "private"])
def test_corrections_keep_the_attribution_rule_over_http_and_in_the_workspace(
    store: Store, mode: str
) -> None:
    """A correction that names an organisation in an entry linked to a meeting that
    attributes no one (a proposer, a dissenter of an amendment raised there, an outcome's
    orgs, an organisation's id in any field), or that moves an entry naming one to such a
    meeting, is refused with 422 naming the field, over HTTP and from the workspace form;
    nothing is recorded. Corrections that name no one, or that clear the name while
    moving the entry there, are recorded."""
    with open_api(store) as api:
        w = _world(api.ledger, mode)
        c = _corrected(api.ledger, w)
        admin = api.officials["admin"]
        size = api.size()
        for index, correction, field in _refused_corrections(w, c):
            body = {"corrects_index": index, "reason": "Fix it.", "correction": correction}
            found = problem(api.post("/corrections", admin, body), 422)
            assert found["field"] == field, (correction, found)
            assert found["detail"].startswith(f"{field}: meeting {w.meeting}"), found
            assert "may name an organisation" in found["detail"], found
            assert mode != "chatham_house" or "Chatham House Rule" in found["detail"], found
        assert api.size() == size

        with TestClient(create_app(store.settings), base_url="https://testserver") as web:
            form = web.get("/workspace/sign-in")
            signed = web.post(
                "/workspace/sign-in",
                data={"token": admin.token, "csrf": csrf_of(form.text)},
                follow_redirects=False,
            )
            assert signed.status_code == 303, signed.text
            csrf = csrf_of(web.get("/workspace").text)
            for index, correction, field in _refused_corrections(w, c)[:3]:
                answer = web.post(
                    "/workspace/forms/record-correction",
                    data={
                        "csrf": csrf,
                        "corrects_index": str(index),
                        "reason": "Fix it.",
                        "correction": json.dumps(correction),
                    },
                )
                assert answer.status_code == 422, answer.text
                assert f"{field}: meeting {w.meeting}" in html.unescape(answer.text)
        assert api.size() == size

        for index, correction in (
            (c.raised, {"rationale": "Raised by a member in the room."}),
            (c.decided, {"dissenting_orgs": [], "note": "One member dissented."}),
            (c.attributed, {"meeting_id": w.meeting, "proposer_org": None}),
            (c.attributed, {"rationale": "As proposed by the cooperative."}),
        ):
            body = {"corrects_index": index, "reason": "Fix it.", "correction": correction}
            receipt = check_receipt(api, api.post("/corrections", admin, body), admin, status=201)
            assert json.loads(receipt["entry"])["data"]["correction"] == correction
        assert api.size() == size + 4
    assert ledger(store.env(), "verify").returncode == 0


def test_record_and_import_refuse_corrections_that_attribute_at_a_chatham_house_meeting(
    store: Store, tmp_path: Path
) -> None:
    """`ledger record` and `ledger import` refuse a correction naming a proposer, or a
    dissenter, at a Chatham House meeting with one line naming the field; nothing is
    recorded."""
    app = LedgerApplication(store.settings)
    try:
        w = _world(app, "chatham_house")
        c = _corrected(app, w)
    finally:
        app.close()
    env = store.env()
    size = len(ledger(env, "entries").stdout.splitlines())
    args = {"corrects_index": c.raised, "reason": "Fix.", "correction": {"proposer_org": w.orgs[1]}}
    who = ["--actor", "clerk", "--role", "admin", "--org", w.orgs[0]]
    refused = ledger(
        env, "record", "record_correction", *who, "--json", orjson.dumps(args).decode()
    )
    assert refused.returncode == 1, refused
    assert_one_line(refused.stderr)
    assert "correction.proposer_org: " in refused.stderr
    assert "Chatham House Rule" in refused.stderr
    lines = tmp_path / "corrections.ndjson"
    decided = {
        "corrects_index": c.decided,
        "reason": "Fix.",
        "correction": {"dissenting_orgs": [w.orgs[0]]},
    }
    lines.write_bytes(orjson.dumps({"command": "record_correction", "args": decided}) + b"\n")
    imported = ledger(env, "import", str(lines), *who)
    assert imported.returncode != 0, imported
    assert_one_line(imported.stderr)
    assert "correction.dissenting_orgs: " in imported.stderr, imported.stderr
    assert len(ledger(env, "entries").stdout.splitlines()) == size
    assert ledger(env, "verify").returncode == 0
