"""The workspace tells the official, before they submit, that a meeting held under the
Chatham House Rule attributes no one, and shows the ledger's refusal beside the field when
they name an organisation there anyway (SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import re

from tests.helpers import OFFICIAL
from tests.workspace.conftest import Desk
from tests.workspace.test_workspace import recorded


def _chatham(desk: Desk) -> str:
    s = desk.sample
    meeting = desk.app.schedule_meeting(
        process_id=s.process_id,
        title="Closed roundtable",
        starts_at="2015-03-01T10:00:00Z",
        disclosure="chatham_house",
        convenor_org=s.org_ids[0],
        actor=OFFICIAL,
    ).subject_id
    desk.app.record_meeting_held(
        meeting, attending_orgs=s.org_ids, held_at="2015-03-01T10:00:00Z", actor=OFFICIAL
    )
    desk.caught_up()
    return meeting


def test_forms_say_a_chatham_house_meeting_attributes_no_one(desk: Desk) -> None:
    """The amendment form offers "no one" as proposer and names the meeting's rule; an
    attributed amendment there is refused beside "Proposed by", nothing recorded; the
    unattributed one is recorded with proposer_org null; a dissent there is refused too."""
    s = desk.sample
    meeting = _chatham(desk)
    csrf = desk.sign_in("recorder")
    page = html.unescape(desk.form("propose-amendment", record=s.proposal_id))
    assert "No one (raised at a meeting that attributes no one)" in page
    assert "Closed roundtable (2015-03-01; Chatham House Rule: attributes no one)" in page
    assert "such a meeting attributes no one" in page
    version = re.search(r'name="expected_version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    data = {
        "csrf": csrf,
        "record": s.proposal_id,
        "expected_version": version,
        "base_version": "1",
        "proposer_org": s.org_ids[1],
        "meeting_id": meeting,
        "rationale": "raised in the room",
        "changes-count": "1",
        "changes-0-op": "replace",
        "changes-0-section": "s2",
        "changes-0-text": "Publish every audit.",
        "action": "record",
    }
    before = desk.size()
    answer = desk.post("propose-amendment", data)
    assert answer.status_code == 422, answer.text[-2000:]
    assert 'href="#f-proposer_org"' in answer.text
    assert "Chatham House Rule" in html.unescape(answer.text)
    assert desk.size() == before
    found = recorded(desk, desk.post("propose-amendment", {**data, "proposer_org": ""}),
                     "proposal.amendment_proposed")  # fmt: skip
    assert found["data"]["proposer_org"] is None
    assert found["data"]["meeting_id"] == meeting

    desk.caught_up()
    page = html.unescape(desk.form("decide-amendment", record=s.proposal_id))
    assert "it attributes no one" in page
    version = str(desk.app.get_proposal(s.proposal_id).version)
    before = desk.size()
    answer = desk.post(
        "decide-amendment",
        {
            "csrf": csrf,
            "record": s.proposal_id,
            "expected_version": version,
            "amendment_id": "A2",
            "decision": "agreed",
            "consensus": "banked",
            "dissenting_orgs": [s.org_ids[2]],
            "meeting_id": meeting,
            "note": "",
        },
    )
    assert answer.status_code == 422, answer.text[-2000:]
    assert 'href="#f-dissenting_orgs"' in answer.text
    assert desk.size() == before
    outcome = html.unescape(desk.form("record-outcome", record=meeting))
    assert "This is a meeting held under the Chatham House Rule, which attributes no one" in (
        outcome
    )
