"""Domain rules, checked on the aggregates alone: no database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.actors import Actor
from ledger.aggregates import (
    DISCLOSURE_MODES,
    FINAL_STATUSES,
    STATUS_TRANSITIONS,
    UNATTRIBUTED,
    Meeting,
    Organisation,
    Process,
    Proposal,
    Publication,
    apply_changes,
)
from ledger.errors import InvalidInputError, RuleViolationError, StaleVersionError
from ledger.events import AmendmentProposed

ACTOR = Actor("official", "recorder", "org")
AT = datetime(2015, 1, 1, tzinfo=UTC)
SECTIONS = [
    {"id": "s1", "heading": "Purpose", "text": "A"},
    {"id": "s2", "heading": "Scope", "text": "B"},
]


def proposal() -> Proposal:
    return Proposal.table(
        process_id="p",
        strand_id="s",
        title="T",
        sections=SECTIONS,
        sponsor_org="o",
        meeting_id=None,
        actor=ACTOR,
        at=AT,
    )


def amend(p: Proposal, base: int = 1, text: str = "new") -> str:
    return p.propose_amendment(
        base_version=base,
        changes=[{"op": "replace", "section_id": "s1", "text": text}],
        rationale="",
        proposer_org="o",
        meeting_id=None,
        actor=ACTOR,
        at=AT,
    )


def decide(p: Proposal, amendment_id: str, decision: str = "agreed") -> None:
    p.decide_amendment(
        amendment_id=amendment_id,
        decision=decision,
        consensus="banked",
        dissenting_orgs=[],
        meeting_id=None,
        note="",
        actor=ACTOR,
        at=AT,
    )


def test_stale_base_version_names_the_current_version() -> None:
    """An amendment against an old text version is refused, naming the current one."""
    p = proposal()
    decide(p, amend(p))
    p.revise(
        base_version=1,
        amendment_ids=["A1"],
        note="",
        sections=None,
        meeting_id=None,
        actor=ACTOR,
        at=AT,
    )
    with pytest.raises(StaleVersionError, match="current version is 2") as caught:
        amend(p, base=1)
    assert caught.value.current_version == 2


def test_an_unattributed_amendment_names_the_meeting_it_was_raised_at() -> None:
    """No proposer is allowed only beside a meeting (the application checks that the meeting
    attributes no one); the entry then holds ``proposer_org`` null; a meeting on the record
    attributes, the other modes do not."""
    p = proposal()
    change = [{"op": "replace", "section_id": "s1", "text": "x"}]
    with pytest.raises(InvalidInputError, match=r"^proposer_org is required"):
        p.propose_amendment(base_version=1, changes=change, rationale="", proposer_org=None,
                            meeting_id=None, actor=ACTOR, at=AT)  # fmt: skip
    assert not p.collect_events()[1:]  # only the tabling
    p.propose_amendment(base_version=1, changes=change, rationale="", proposer_org=None,
                        meeting_id="m", actor=ACTOR, at=AT)  # fmt: skip
    (event,) = p.collect_events()
    assert isinstance(event, AmendmentProposed)
    assert event.proposer_org is None
    assert event.meeting_id == "m"
    attributes = {}
    for mode in DISCLOSURE_MODES:
        m = Meeting.schedule(process_id="p", strand_id=None, title="M", starts_at="x",
                             disclosure=mode, convenor_org="o", actor=ACTOR, at=AT)  # fmt: skip
        attributes[mode] = m.attributes
    assert attributes == {mode: mode not in UNATTRIBUTED for mode in DISCLOSURE_MODES}
    assert [mode for mode, yes in attributes.items() if yes] == ["on_record"]


def test_deciding_twice_is_refused_but_no_decision_can_be_revisited() -> None:
    """'No decision' leaves an amendment open; a closed decision is final."""
    p = proposal()
    a = amend(p)
    decide(p, a, "no_decision")
    decide(p, a, "disagreed")
    with pytest.raises(RuleViolationError, match="already decided"):
        decide(p, a, "agreed")


def test_only_agreed_amendments_are_incorporated_once() -> None:
    """Revision takes agreed amendments only, and each only once."""
    p = proposal()
    a1, a2 = amend(p, text="one"), amend(p, text="two")
    decide(p, a1)
    with pytest.raises(RuleViolationError, match="undecided"):
        p.revise(
            base_version=1,
            amendment_ids=[a2],
            note="",
            sections=None,
            meeting_id=None,
            actor=ACTOR,
            at=AT,
        )
    assert (
        p.revise(
            base_version=1,
            amendment_ids=[a1],
            note="",
            sections=None,
            meeting_id=None,
            actor=ACTOR,
            at=AT,
        )
        == 2
    )
    assert p.sections[0]["text"] == "one"


@given(st.lists(st.sampled_from(sorted(STATUS_TRANSITIONS)), max_size=8))
def test_status_moves_only_along_allowed_transitions(path: list[str]) -> None:
    """Any sequence of status changes succeeds exactly when each step is allowed."""
    p = proposal()
    for new in path:
        allowed = new in STATUS_TRANSITIONS[p.status]
        superseded_by = "other" if new == "superseded" else None
        if allowed:
            p.change_status(
                new_status=new, reason="", superseded_by=superseded_by, actor=ACTOR, at=AT
            )
            assert p.status == new
        else:
            with pytest.raises(RuleViolationError):
                p.change_status(
                    new_status=new, reason="", superseded_by=superseded_by, actor=ACTOR, at=AT
                )
    if p.status in FINAL_STATUSES:
        with pytest.raises(RuleViolationError, match="no longer"):
            amend(p)


section_ids = st.sampled_from(["s1", "s2", "s3", "s4"])
changes = st.lists(
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["replace", "insert", "delete"]),
            "section_id": section_ids,
            "text": st.text(max_size=5),
        }
    ),
    max_size=6,
)


@given(changes)
def test_apply_changes_keeps_section_ids_unique_or_refuses(ops: list[dict[str, Any]]) -> None:
    """Changes either apply, leaving unique ids and at least one section, or are refused."""
    try:
        result = apply_changes(SECTIONS, ops)
    except InvalidInputError:
        return
    ids = [s["id"] for s in result]
    assert len(ids) == len(set(ids)) >= 1
    for op in ops:
        if op["op"] == "insert":
            assert op["section_id"] in ids or any(
                later["op"] == "delete" and later["section_id"] == op["section_id"] for later in ops
            )


def test_meeting_rules() -> None:
    """Outcomes and minutes need a held meeting; a meeting is held once."""
    m = Meeting.schedule(
        process_id="p",
        strand_id=None,
        title="M",
        starts_at="2015-01-01",
        disclosure="chatham_house",
        convenor_org="o",
        actor=ACTOR,
        at=AT,
    )
    with pytest.raises(RuleViolationError, match="held"):
        m.record_outcome(items=[{"kind": "decision", "text": "x"}], actor=ACTOR, at=AT)
    with pytest.raises(RuleViolationError, match="held"):
        m.agree_minutes(sha256="a" * 64, size=1, media_type="text/plain", actor=ACTOR, at=AT)
    with pytest.raises(RuleViolationError, match="salted commitments"):
        m.record_held(attending_orgs=["o"], held_at="2015-01-01", actor=ACTOR, at=AT)
    with pytest.raises(InvalidInputError, match="sha256"):
        m.record_held_in_confidence(
            attendance_commitments=["o"], held_at="2015-01-01", actor=ACTOR, at=AT
        )
    m.record_held_in_confidence(
        attendance_commitments=["b" * 64, "a" * 64], held_at="2015-01-01", actor=ACTOR, at=AT
    )
    (held,) = m.collect_events()[-1:]
    assert held.attendance_commitments == ["a" * 64, "b" * 64]  # type: ignore[attr-defined]
    with pytest.raises(RuleViolationError, match="already"):
        m.record_held(attending_orgs=["o"], held_at="2015-01-01", actor=ACTOR, at=AT)
    with pytest.raises(RuleViolationError, match="already"):
        m.record_held_in_confidence(
            attendance_commitments=["c" * 64], held_at="2015-01-01", actor=ACTOR, at=AT
        )
    with pytest.raises(InvalidInputError, match="kind must be one of"):
        m.record_outcome(items=[{"kind": "vibe", "text": "x"}], actor=ACTOR, at=AT)
    assert (
        m.record_outcome(
            items=[{"kind": "option", "text": "x", "consensus": "options"}], actor=ACTOR, at=AT
        )
        == "O1"
    )
    with pytest.raises(InvalidInputError, match="sha256"):
        m.agree_minutes(sha256="XYZ", size=1, media_type="text/plain", actor=ACTOR, at=AT)
    with pytest.raises(InvalidInputError, match="disclosure"):
        Meeting.schedule(
            process_id="p",
            strand_id=None,
            title="M",
            starts_at="x",
            disclosure="secret",
            convenor_org="o",
            actor=ACTOR,
            at=AT,
        )


def test_publication_organisation_and_process_rules() -> None:
    """Withdrawn publications stay withdrawn; memberships and strands are not duplicated."""
    pub = Publication.publish(
        process_id="p",
        pub_kind="minutes",
        title="T",
        sha256="0" * 64,
        size=3,
        media_type="text/plain",
        proposal_ids=[],
        meeting_ids=[],
        actor=ACTOR,
        at=AT,
    )
    pub.withdraw(reason="error", actor=ACTOR, at=AT)
    with pytest.raises(RuleViolationError, match="already withdrawn"):
        pub.supersede(superseded_by="x", reason="", actor=ACTOR, at=AT)
    org = Organisation.register(name="Council", org_kind="local_authority", actor=ACTOR, at=AT)
    org.add_membership(process_id="p", group="eag", role="member", actor=ACTOR, at=AT)
    with pytest.raises(RuleViolationError, match="already a member"):
        org.add_membership(process_id="p", group="eag", role="member", actor=ACTOR, at=AT)
    with pytest.raises(InvalidInputError, match="organisation kind"):
        Organisation.register(name="X", org_kind="club", actor=ACTOR, at=AT)
    process = Process.start(title="P", summary="", actor=ACTOR, at=AT)
    process.add_strand(strand_id="s", title="S", summary="", actor=ACTOR, at=AT)
    with pytest.raises(RuleViolationError, match="already has a strand"):
        process.add_strand(strand_id="s", title="S", summary="", actor=ACTOR, at=AT)


def test_actor_roles_are_checked() -> None:
    """An actor must have a known role and an id."""
    with pytest.raises(InvalidInputError, match="role"):
        Actor("x", "king", "o")
    with pytest.raises(InvalidInputError, match="id"):
        Actor(" ", "recorder", "o")
