"""The officials' workspace over HTTP on SQLite and PostgreSQL: signing in and out, CSRF,
roles, every form's happy path (the entry names the official), validation errors shown with
the values kept, and version conflicts that show what changed and let amendments rebase."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ledger.chain import parse_entry
from tests.helpers import OFFICIAL
from tests.workspace.conftest import Desk, csrf_of

RECEIPT = re.compile(r"data-receipt-index>(\d+)<")


def entry(desk: Desk, index: int) -> dict[str, Any]:
    raw = desk.client.app.state.readers.get().entries(index, index + 1)  # type: ignore[attr-defined]
    return parse_entry(raw[0])


def recorded(desk: Desk, answer: Any, kind: str, role: str = "recorder") -> dict[str, Any]:
    """The entry a form's receipt page names: of type ``kind``, by the official."""
    assert answer.status_code == 201, answer.text[-3000:]
    index = int(RECEIPT.search(answer.text).group(1))  # type: ignore[union-attr]
    found = entry(desk, index)
    assert found["type"] == kind
    assert found["actor"]["id"] == f"{role}.official"
    assert found["actor"]["role"] == role
    assert index == desk.size() - 1
    assert "Signed checkpoint" in answer.text
    assert "<details>" in answer.text
    return found


# Signing in and out ------------------------------------------------------------------------


def test_sign_in_shows_the_official_and_sign_out_ends_it(desk: Desk) -> None:
    client = desk.client
    answer = client.get("/workspace", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/workspace/sign-in"
    assert client.get("/workspace/forms/table-proposal", follow_redirects=False).status_code == 303
    bad = desk.post_sign_in("olt_nope")
    assert bad.status_code == 401
    assert "That is not a valid API token" in bad.text
    forged = desk.tokens["recorder"][:-4] + "AAAA"
    assert desk.post_sign_in(forged).status_code == 401
    # Login CSRF: a sign-in posted without the form's own value (another site's form) fails.
    refused = client.post("/workspace/sign-in", data={"token": desk.tokens["recorder"]})
    assert refused.status_code == 403
    assert client.get("/workspace", follow_redirects=False).status_code == 303
    csrf = desk.sign_in("recorder")
    home = client.get("/workspace").text
    assert "recorder.official" in home
    assert "Cabinet Office" in home
    assert "Recorder" in home
    assert client.get("/workspace").headers["cache-control"] == "no-store"
    # Sign-out needs the CSRF token too.
    assert client.post("/workspace/sign-out", data={"csrf": "wrong"}).status_code == 403
    out = client.post("/workspace/sign-out", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/workspace", follow_redirects=False).status_code == 303


def test_revoking_the_token_ends_the_session_with_a_message(desk: Desk) -> None:
    desk.sign_in("recorder")
    token_id = next(
        t.token_id
        for t in desk.client.app.state.side.tokens()  # type: ignore[attr-defined]
        if t.role == "recorder"
    )
    desk.app.revoke_token(
        token_id, reason="moved on", actor=OFFICIAL.__class__("setup", "admin", "")
    )
    answer = desk.client.get("/workspace/forms/table-proposal", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/workspace/sign-in?ended=1"
    page = desk.client.get(answer.headers["location"]).text
    assert "Your session has ended" in page
    again = desk.post_sign_in(desk.tokens["recorder"])
    assert again.status_code == 401
    assert "revoked" in again.text


# CSRF and roles ----------------------------------------------------------------------------


def _table_data(desk: Desk, csrf: str, title: str = "Open data for research") -> dict[str, str]:
    s = desk.sample
    return {
        "csrf": csrf,
        "title": title,
        "process_id": s.process_id,
        "strand_id": "research",
        "sponsor_org": s.org_ids[0],
        "sections-count": "3",
        "sections-0-id": "s1",
        "sections-0-heading": "Purpose",
        "sections-0-text": "Open data to accredited researchers.",
        "sections-1-id": "s2",
        "sections-1-heading": "",
        "sections-1-text": "",
        "action": "record",
    }


def test_csrf_missing_or_wrong_is_refused_and_records_nothing(desk: Desk) -> None:
    csrf = desk.sign_in("recorder")
    before = desk.size()
    data = _table_data(desk, csrf)
    for bad in ("", "not-the-token"):
        answer = desk.post("table-proposal", {**data, "csrf": bad})
        assert answer.status_code == 403
        assert "nothing was" in answer.text
    del data["csrf"]
    assert desk.post("table-proposal", data).status_code == 403
    assert desk.size() == before


def test_roles_see_only_their_forms_and_are_refused_the_others(desk: Desk) -> None:
    before = desk.size()
    csrf = desk.sign_in("publisher")
    home = desk.client.get("/workspace").text
    assert "/workspace/forms/publish" in home
    assert "/workspace/forms/table-proposal" not in home
    assert desk.client.get("/workspace/forms/table-proposal").status_code == 403
    assert desk.post("table-proposal", _table_data(desk, csrf)).status_code == 403
    csrf = desk.sign_in("recorder")
    home = desk.client.get("/workspace").text
    assert "/workspace/forms/publish" not in home
    assert "/workspace/forms/record-correction" not in home
    files = {"file": ("paper.txt", b"A paper.", "text/plain")}
    data = {
        "csrf": csrf,
        "title": "Paper",
        "process_id": desk.sample.process_id,
        "pub_kind": "report",
    }
    assert desk.post("publish", data, files).status_code == 403
    correction = {"csrf": csrf, "corrects_index": "1", "reason": "typo", "correction": "{}"}
    assert desk.post("record-correction", correction).status_code == 403
    assert desk.size() == before


# Happy paths -------------------------------------------------------------------------------


def test_table_a_proposal_with_another_section_row(desk: Desk) -> None:
    csrf = desk.sign_in("recorder")
    page = desk.form("table-proposal")
    assert page.count('class="row-group"') == 3
    assert 'name="csrf"' in page
    data = _table_data(desk, csrf)
    more = desk.post("table-proposal", {**data, "action": "add:sections"})
    assert more.status_code == 200
    assert more.text.count('class="row-group"') == 4
    assert "Open data to accredited researchers." in more.text  # values kept
    data.update(
        {
            "sections-count": "4",
            "sections-3-id": "s4",
            "sections-3-heading": "Review",
            "sections-3-text": "Review yearly.",
        }
    )
    found = recorded(desk, desk.post("table-proposal", data), "proposal.tabled")
    assert [s["id"] for s in found["data"]["sections"]] == ["s1", "s4"]
    answer = desk.client.get("/workspace")
    assert "Proposal tabled" in answer.text  # my recent entries


def test_amend_preview_decide_and_revise(desk: Desk) -> None:
    s = desk.sample
    csrf = desk.sign_in("recorder")
    page = desk.form("propose-amendment", record=s.proposal_id)
    version = re.search(r'name="expected_version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    data = {
        "csrf": csrf,
        "record": s.proposal_id,
        "expected_version": version,
        "base_version": "1",
        "proposer_org": s.org_ids[1],
        "rationale": "clearer",
        "changes-count": "2",
        "changes-0-op": "replace",
        "changes-0-section": "s1",
        "changes-0-text": "Allow wide access.",
        "changes-1-op": "insert",
        "changes-1-section": "s2",
        "changes-1-new_id": "s3",
        "changes-1-heading": "Review",
        "changes-1-text": "Review yearly.",
    }
    preview = desk.post("propose-amendment", {**data, "action": "preview"})
    assert preview.status_code == 200
    assert "Preview of the changes" in preview.text
    assert "<ins>wide</ins>" in preview.text or "<ins>" in preview.text
    before = desk.size()
    assert desk.size() == before
    found = recorded(
        desk,
        desk.post("propose-amendment", {**data, "action": "record"}),
        "proposal.amendment_proposed",
    )
    amendment = found["data"]["amendment_id"]
    assert found["data"]["changes"][1] == {
        "op": "insert",
        "section_id": "s3",
        "after": "s2",
        "heading": "Review",
        "text": "Review yearly.",
    }
    page = desk.form("decide-amendment", record=s.proposal_id)
    version = re.search(r'name="expected_version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    assert 'type="checkbox"' in page
    assert "Privacy Group" in page
    found = recorded(
        desk,
        desk.post(
            "decide-amendment",
            {
                "csrf": csrf,
                "record": s.proposal_id,
                "expected_version": version,
                "amendment_id": amendment,
                "decision": "agreed",
                "consensus": "banked",
                "dissenting_orgs": [s.org_ids[2]],
                "meeting_id": s.meeting_id,
            },
        ),
        "proposal.amendment_decided",
    )
    assert found["data"]["dissenting_orgs"] == [s.org_ids[2]]
    page = desk.form("revise-proposal", record=s.proposal_id)
    assert f'value="{amendment}"' in page
    version = re.search(r'name="expected_version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    found = recorded(
        desk,
        desk.post(
            "revise-proposal",
            {
                "csrf": csrf,
                "record": s.proposal_id,
                "expected_version": version,
                "amendment_ids": amendment,
            },
        ),
        "proposal.revised",
    )
    assert found["data"]["text_version"] == 2
    page = desk.form("change-status", record=s.proposal_id)
    assert 'value="discussion"' in page
    assert 'value="enacted"' not in page
    version = str(desk.app.get_proposal(s.proposal_id).version)
    recorded(
        desk,
        desk.post(
            "change-status",
            {
                "csrf": csrf,
                "record": s.proposal_id,
                "expected_version": version,
                "new_status": "discussion",
            },
        ),
        "proposal.status_changed",
    )
    version = str(desk.app.get_proposal(s.proposal_id).version)
    answer = desk.post(
        "link-legislation",
        {
            "csrf": csrf,
            "record": s.proposal_id,
            "expected_version": version,
            "legislation": "Digital Economy Act 2017",
            "provision": "Part 5",
        },
    )
    recorded(desk, answer, "proposal.legislative_outcome_linked")
    assert f'href="/web/proposals/{s.proposal_id}"' in answer.text


def test_meetings_from_schedule_to_minutes(desk: Desk) -> None:
    s = desk.sample
    csrf = desk.sign_in("recorder")
    found = recorded(
        desk,
        desk.post(
            "schedule-meeting",
            {
                "csrf": csrf,
                "title": "Research strand 2",
                "process_id": s.process_id,
                "strand_id": "research",
                "starts_at": "2015-02-10T10:00",
                "disclosure": "on_record",
                "convenor_org": s.org_ids[0],
            },
        ),
        "meeting.scheduled",
    )
    assert found["data"]["starts_at"] == "2015-02-10T10:00:00Z"
    meeting = found["subject"]["id"]
    base = {"csrf": csrf, "record": meeting, "expected_version": "1"}
    found = recorded(
        desk,
        desk.post(
            "record-attendance",
            {**base, "held_at": "2015-02-10T10:05", "attending_orgs": s.org_ids[:2]},
        ),
        "meeting.held",
    )
    assert found["data"]["attending_orgs"] == s.org_ids[:2]
    found = recorded(
        desk,
        desk.post(
            "record-outcome",
            {
                **base,
                "expected_version": "2",
                "items-count": "3",
                "items-0-kind": "decision",
                "items-0-text": "Accept A1.",
                "items-0-proposal_id": s.proposal_id,
                "items-0-amendment_id": "A1",
                "items-1-kind": "action",
                "items-1-text": "Draft guidance.",
            },
        ),
        "meeting.outcome_recorded",
    )
    assert found["data"]["items"][0] == {
        "kind": "decision",
        "text": "Accept A1.",
        "proposal_id": s.proposal_id,
        "amendment_id": "A1",
    }
    minutes = b"Minutes of the meeting.\n"
    found = recorded(
        desk,
        desk.post(
            "agree-minutes",
            {**base, "expected_version": "3"},
            {"file": ("minutes.txt", minutes, "text/plain")},
        ),
        "meeting.minutes_agreed",
    )
    assert found["data"]["sha256"] == hashlib.sha256(minutes).hexdigest()


def test_organisations_and_process_forms(desk: Desk) -> None:
    s = desk.sample
    csrf = desk.sign_in("recorder")
    found = recorded(
        desk,
        desk.post(
            "register-organisation",
            {"csrf": csrf, "name": "Open Data Institute", "org_kind": "civil_society"},
        ),
        "organisation.registered",
    )
    org = found["subject"]["id"]
    base = {"csrf": csrf, "record": org, "process_id": s.process_id, "group": "research"}
    recorded(
        desk,
        desk.post("add-membership", {**base, "expected_version": "1", "role": "member"}),
        "organisation.membership_added",
    )
    recorded(
        desk,
        desk.post("end-membership", {**base, "expected_version": "2", "reason": "done"}),
        "organisation.membership_ended",
    )
    found = recorded(
        desk,
        desk.post("start-process", {"csrf": csrf, "title": "Second process"}),
        "process.started",
    )
    process = found["subject"]["id"]
    recorded(
        desk,
        desk.post(
            "add-strand",
            {
                "csrf": csrf,
                "record": process,
                "expected_version": "1",
                "strand_id": "health",
                "title": "Health",
            },
        ),
        "process.strand_added",
    )
    recorded(
        desk,
        desk.post(
            "start-phase",
            {
                "csrf": csrf,
                "record": process,
                "expected_version": "2",
                "phase_id": "consult",
                "title": "Consultation",
            },
        ),
        "process.phase_started",
    )


def test_publish_with_a_confirm_step_then_withdraw_and_supersede(desk: Desk) -> None:
    s = desk.sample
    csrf = desk.sign_in("publisher")
    content = b"%PDF-1.4 a paper"
    digest = hashlib.sha256(content).hexdigest()
    data = {
        "csrf": csrf,
        "title": "Research paper",
        "process_id": s.process_id,
        "pub_kind": "policy_paper",
        "proposal_ids": s.proposal_id,
    }
    before = desk.size()
    check = desk.post("publish", data, {"file": ("paper.pdf", content, "application/pdf")})
    assert check.status_code == 200
    assert "Check the document before publishing" in check.text
    assert digest in check.text
    assert desk.size() == before
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', check.text))
    assert hidden["sha256"] == digest
    confirm = {**data, "sha256": digest, "action": "confirm"}
    found = recorded(desk, desk.post("publish", confirm), "publication.published", "publisher")
    assert found["data"]["sha256"] == digest
    assert found["data"]["media_type"] == "application/pdf"
    first = found["subject"]["id"]
    second_bytes = b"%PDF-1.4 a newer paper"
    desk.post("publish", data, {"file": ("paper2.pdf", second_bytes, "application/pdf")})
    found = recorded(
        desk,
        desk.post("publish", {**confirm, "sha256": hashlib.sha256(second_bytes).hexdigest()}),
        "publication.published",
        "publisher",
    )
    second = found["subject"]["id"]
    recorded(
        desk,
        desk.post(
            "supersede-publication",
            {"csrf": csrf, "record": first, "expected_version": "1", "superseded_by": second},
        ),
        "publication.superseded",
        "publisher",
    )
    recorded(
        desk,
        desk.post(
            "withdraw-publication",
            {"csrf": csrf, "record": second, "expected_version": "1", "reason": "error in figures"},
        ),
        "publication.withdrawn",
        "publisher",
    )


def test_admin_records_a_correction(desk: Desk) -> None:
    csrf = desk.sign_in("admin")
    bad = desk.post(
        "record-correction",
        {"csrf": csrf, "corrects_index": "2", "reason": "typo", "correction": "not json"},
    )
    assert bad.status_code == 422
    assert "must be valid JSON" in bad.text
    assert "not json" in bad.text
    found = recorded(
        desk,
        desk.post(
            "record-correction",
            {
                "csrf": csrf,
                "corrects_index": "2",
                "reason": "typo",
                "correction": '{"name": "Cabinet Office (CO)"}',
            },
        ),
        "correction.recorded",
        "admin",
    )
    assert found["data"]["corrects_index"] == 2


# Validation and conflicts ------------------------------------------------------------------


def test_validation_errors_keep_the_values_and_show_the_ledger_detail(desk: Desk) -> None:
    csrf = desk.sign_in("recorder")
    before = desk.size()
    data = _table_data(desk, csrf, title="")
    answer = desk.post("table-proposal", data)
    assert answer.status_code == 422
    assert "There is a problem" in answer.text
    assert 'href="#f-title"' in answer.text
    assert "Open data to accredited researchers." in answer.text
    # A rule the ledger checks: the amendment is already decided.
    s = desk.sample
    desk.app.decide_amendment(
        s.proposal_id, amendment_id="A1", decision="agreed", consensus="banked", actor=OFFICIAL
    )
    version = str(desk.app.get_proposal(s.proposal_id).version)
    before = desk.size()
    answer = desk.post(
        "decide-amendment",
        {
            "csrf": csrf,
            "record": s.proposal_id,
            "expected_version": version,
            "amendment_id": "A1",
            "decision": "disagreed",
            "consensus": "options",
            "note": "kept note",
        },
    )
    assert answer.status_code == 422
    assert "already decided" in answer.text
    assert "kept note" in answer.text
    assert desk.size() == before


def test_version_conflict_shows_what_changed_and_amendments_rebase(desk: Desk) -> None:
    s = desk.sample
    csrf = desk.sign_in("recorder")
    page = desk.form("propose-amendment", record=s.proposal_id)
    seen = re.search(r'name="expected_version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    # Meanwhile someone else decides A1 and revises the text to version 2.
    desk.app.decide_amendment(
        s.proposal_id, amendment_id="A1", decision="agreed", consensus="banked", actor=OFFICIAL
    )
    desk.app.revise_proposal(s.proposal_id, base_version=1, amendment_ids=["A1"], actor=OFFICIAL)
    before = desk.size()
    data = {
        "csrf": csrf,
        "record": s.proposal_id,
        "expected_version": seen,
        "base_version": "1",
        "proposer_org": s.org_ids[1],
        "changes-count": "2",
        "changes-0-op": "replace",
        "changes-0-section": "s1",
        "changes-0-text": "Allow access to everyone.",
        "action": "record",
    }
    answer = desk.post("propose-amendment", data)
    assert answer.status_code == 409
    assert desk.size() == before
    assert "What changed since you opened the form" in answer.text
    assert "Amendment decided" in answer.text
    assert "Proposal revised" in answer.text
    assert "Allow access to everyone." in answer.text  # the changes are kept
    assert 'name="base_version" value="2"' in answer.text
    rebased = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', answer.text))
    found = recorded(
        desk,
        desk.post("propose-amendment", {**data, **rebased, "csrf": csrf}),
        "proposal.amendment_proposed",
    )
    assert found["data"]["base_version"] == 2
    # A plain form on a stale version: refused with the changes, nothing recorded.
    before = desk.size()
    answer = desk.post(
        "change-status",
        {
            "csrf": csrf,
            "record": s.proposal_id,
            "expected_version": seen,
            "new_status": "discussion",
        },
    )
    assert answer.status_code == 409
    assert desk.size() == before
    assert "Amendment proposed" in answer.text


def test_home_search_and_my_entries(desk: Desk) -> None:
    csrf = desk.sign_in("recorder")
    recorded(
        desk,
        desk.post("table-proposal", _table_data(desk, csrf, title="Zebra crossings")),
        "proposal.tabled",
    )
    desk.caught_up()
    home = desk.client.get("/workspace", params={"q": "zebra"})
    assert home.status_code == 200
    assert "Zebra crossings" in home.text
    assert "<mark>" in home.text
    assert "Proposal tabled" in home.text
    assert csrf_of(home.text) == csrf
