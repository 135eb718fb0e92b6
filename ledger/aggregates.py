"""Aggregates of the open policy process: they decide, events record, ``when`` evolves.

Each command method checks the process rules against the aggregate's own state and then
triggers exactly one event. Rules that need other aggregates (does this organisation exist?)
are checked by the application before it calls the command. Nothing here touches a database
or the web.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import singledispatchmethod
from typing import Any, ClassVar, Self
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic

from ledger import events as ev
from ledger.actors import Actor
from ledger.domain.vocabulary import (
    CONSENSUS_STATES,
    DECISIONS,
    DISCLOSURE_MODES,
    GOVERNMENT_RESPONSES,
    ORGANISATION_KINDS,
    OUTCOME_ITEM_KINDS,
    PUBLICATION_KINDS,
    TOKEN_ROLES,
)
from ledger.errors import InvalidInputError, RuleViolationError, StaleVersionError
from ledger.text import check_fields, check_slug

__all__ = [
    "ATTENDANCE_SEALED",
    "CONSENSUS_STATES",
    "DECISIONS",
    "DISCLOSURE_MODES",
    "FINAL_STATUSES",
    "GOVERNMENT_RESPONSES",
    "ORGANISATION_KINDS",
    "OUTCOME_ITEM_KINDS",
    "PUBLICATION_KINDS",
    "STATUS_TRANSITIONS",
    "TOKEN_ROLES",
    "UNATTRIBUTED",
    "UNATTRIBUTED_WORDS",
    "AccessToken",
    "Consultation",
    "Correction",
    "ErasureRecord",
    "KeyRotation",
    "LedgerAggregate",
    "Meeting",
    "Organisation",
    "Process",
    "Proposal",
    "Publication",
    "apply_changes",
]


class _DispatchMethod(singledispatchmethod):  # type: ignore[type-arg]
    """``singledispatchmethod`` without Python 3.11's ``functools.update_wrapper`` on every
    attribute access (~7 µs each; the bulk import applies tens of thousands of events a
    second). Dispatch is the same: on the type of the first argument after ``self``."""

    def __get__(self, obj: Any, cls: type[Any] | None = None) -> Callable[..., Any]:
        dispatch = self.dispatcher.dispatch

        def method(event: Any, *args: Any, **kwargs: Any) -> Any:
            return dispatch(type(event)).__get__(obj, cls)(event, *args, **kwargs)

        return method


ATTENDANCE_SEALED = ("chatham_house", "private")
"""Disclosure modes whose held entry records attendance only as salted commitments."""
UNATTRIBUTED = ("non_attributed", "chatham_house", "private")
"""Disclosure modes that attribute no one: nothing linked to such a meeting names an
organisation (no proposer, no dissenter, no organisation in an outcome, no sponsor)."""
UNATTRIBUTED_WORDS = {
    "non_attributed": "held on a non-attributed basis",
    "chatham_house": "held under the Chatham House Rule",
    "private": "held in private",
}
STATUS_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("discussion", "consultation", "withdrawn"),
    "discussion": ("consultation", "revised", "recommended", "withdrawn", "superseded"),
    "consultation": ("discussion", "revised", "recommended", "withdrawn", "superseded"),
    "revised": ("discussion", "consultation", "recommended", "withdrawn", "superseded"),
    "recommended": ("revised", "enacted", "withdrawn", "superseded"),
    "enacted": (),
    "withdrawn": (),
    "superseded": (),
}
FINAL_STATUSES = frozenset(s for s, nxt in STATUS_TRANSITIONS.items() if not nxt)
_CLOSED_DECISIONS = frozenset({"agreed", "disagreed", "withdrawn"})


def _text(name: str, value: Any, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be text")
    if not allow_empty and not value.strip():
        raise InvalidInputError(f"{name} must not be empty")
    return value


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInputError(f"{name} must be one of {', '.join(allowed)} (got {value!r})")
    return str(value)


def _check_size(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInputError("size must be a non-negative integer")
    return value


def _sha256_hex(value: Any) -> str:
    text = _text("sha256", value)
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInputError("sha256 must be 64 lowercase hex digits")
    return text


def _rfc3339_utc(name: str, value: Any) -> str:
    text = _text(name, value)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or not text.endswith("Z") or "T" not in text:
        raise InvalidInputError(f"{name} must be an RFC 3339 UTC time such as 2026-03-01T09:00:00Z")
    return text


def _check_sections(sections: Any) -> list[dict[str, str]]:
    if not isinstance(sections, list) or not sections:
        raise InvalidInputError("a proposal needs at least one section")
    seen: set[str] = set()
    clean = []
    for section in sections:
        if not isinstance(section, dict):
            raise InvalidInputError("each section must be an object with id, heading and text")
        section_id = _text("section id", section.get("id"))
        if section_id in seen:
            raise InvalidInputError(f"section id {section_id!r} appears twice")
        seen.add(section_id)
        clean.append(
            {
                "id": section_id,
                "heading": _text("section heading", section.get("heading", ""), allow_empty=True),
                "text": _text("section text", section.get("text", ""), allow_empty=True),
            }
        )
    return clean


def apply_changes(
    sections: list[dict[str, str]], changes: list[dict[str, str]]
) -> list[dict[str, str]]:
    """Return the sections after an amendment's changes; raise if a change does not fit.

    Ops: ``replace`` (new text and optionally heading of ``section_id``), ``insert`` (a new
    section ``section_id`` placed after ``after``, or first when ``after`` is empty) and
    ``delete``.
    """
    result = [dict(s) for s in sections]
    for change in changes:
        op = change.get("op")
        section_id = _text("change section_id", change.get("section_id"))
        ids = [s["id"] for s in result]
        if op == "replace":
            if section_id not in ids:
                raise InvalidInputError(f"there is no section {section_id!r} to replace")
            target = result[ids.index(section_id)]
            target["text"] = _text("change text", change.get("text", ""), allow_empty=True)
            if "heading" in change:
                target["heading"] = _text("change heading", change["heading"], allow_empty=True)
        elif op == "insert":
            if section_id in ids:
                raise InvalidInputError(f"section {section_id!r} already exists")
            after = change.get("after", "")
            position = 0
            if after:
                if after not in ids:
                    raise InvalidInputError(f"there is no section {after!r} to insert after")
                position = ids.index(after) + 1
            result.insert(
                position,
                {
                    "id": section_id,
                    "heading": _text("change heading", change.get("heading", ""), allow_empty=True),
                    "text": _text("change text", change.get("text", ""), allow_empty=True),
                },
            )
        elif op == "delete":
            if section_id not in ids:
                raise InvalidInputError(f"there is no section {section_id!r} to delete")
            del result[ids.index(section_id)]
            if not result:
                raise InvalidInputError("an amendment cannot delete every section")
        else:
            raise InvalidInputError(f"change op must be replace, insert or delete (got {op!r})")
    return result


def _check_changes(changes: Any) -> list[dict[str, str]]:
    if not isinstance(changes, list) or not changes:
        raise InvalidInputError("an amendment needs at least one change")
    clean = []
    for change in changes:
        if not isinstance(change, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in change.items()
        ):
            raise InvalidInputError("each change must be an object of text fields")
        clean.append(dict(change))
    return clean


class LedgerAggregate(Aggregate):
    """Common base: dispatches events to ``when`` and stamps actor and time.

    ``KIND`` is the subject kind in entries and the stable topic of the aggregate class (not
    ``TOPIC``, which would make eventsourcing demand topics for its generated events).
    """

    KIND: ClassVar[str] = ""

    @_DispatchMethod
    def when(self, event: ev.LedgerEvent) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot apply {type(event).__name__}")

    def _record(
        self, event_class: type[ev.LedgerEvent], actor: Actor, at: datetime, **fields: Any
    ) -> None:
        check_fields(fields)  # every path that records shares this (the actor checks itself)
        self.trigger_event(event_class, actor=actor.as_entry(), timestamp=at, **fields)

    @classmethod
    def _start(
        cls,
        event_class: type[ev.LedgerCreated],
        actor: Actor,
        at: datetime,
        id: UUID | None,
        **fields: Any,
    ) -> Self:
        check_fields(fields)
        return cls._create(event_class, id=id, actor=actor.as_entry(), timestamp=at, **fields)


# Process -----------------------------------------------------------------------------------


class Process(LedgerAggregate):
    """An open policy-making process with its strands and phases."""

    KIND = "process"

    @classmethod
    def start(
        cls, *, title: str, summary: str, actor: Actor, at: datetime, id: UUID | None = None
    ) -> Process:
        return cls._start(
            ev.ProcessStarted,
            actor,
            at,
            id,
            title=_text("title", title),
            summary=_text("summary", summary, allow_empty=True),
        )

    def add_strand(
        self, *, strand_id: str, title: str, summary: str, actor: Actor, at: datetime
    ) -> None:
        check_slug("strand_id", _text("strand_id", strand_id))
        if strand_id in self.strands:
            raise RuleViolationError(f"process already has a strand {strand_id!r}")
        self._record(
            ev.StrandAdded,
            actor,
            at,
            strand_id=strand_id,
            title=_text("title", title),
            summary=_text("summary", summary, allow_empty=True),
        )

    def start_phase(
        self, *, phase_id: str, title: str, summary: str, actor: Actor, at: datetime
    ) -> None:
        check_slug("phase_id", _text("phase_id", phase_id))
        if any(p["id"] == phase_id for p in self.phases):
            raise RuleViolationError(f"phase {phase_id!r} has already been started")
        self._record(
            ev.PhaseStarted,
            actor,
            at,
            phase_id=phase_id,
            title=_text("title", title),
            summary=_text("summary", summary, allow_empty=True),
        )

    @_DispatchMethod
    def when(self, event: ev.LedgerEvent) -> None:
        super().when(event)

    @when.register
    def _(self, event: ev.ProcessStarted) -> None:
        self.title = event.title
        self.summary = event.summary
        self.strands: dict[str, dict[str, str]] = {}
        self.phases: list[dict[str, str]] = []

    @when.register
    def _(self, event: ev.StrandAdded) -> None:
        self.strands[event.strand_id] = {"title": event.title, "summary": event.summary}

    @when.register
    def _(self, event: ev.PhaseStarted) -> None:
        self.phases.append({"id": event.phase_id, "title": event.title})

    @property
    def current_phase(self) -> str | None:
        return self.phases[-1]["id"] if self.phases else None


# Organisation ------------------------------------------------------------------------------


class Organisation(LedgerAggregate):
    """A department, local authority, public body, civil-society group …"""

    KIND = "organisation"

    @classmethod
    def register(
        cls, *, name: str, org_kind: str, actor: Actor, at: datetime, id: UUID | None = None
    ) -> Organisation:
        return cls._start(
            ev.OrganisationRegistered,
            actor,
            at,
            id,
            name=_text("name", name),
            org_kind=_choice("organisation kind", org_kind, ORGANISATION_KINDS),
        )

    def add_membership(
        self, *, process_id: str, group: str, role: str, actor: Actor, at: datetime
    ) -> None:
        key = (process_id, check_slug("group", _text("group", group)))
        if key in self.memberships:
            raise RuleViolationError(f"{self.name} is already a member of {group!r}")
        self._record(
            ev.MembershipAdded,
            actor,
            at,
            process_id=process_id,
            group=group,
            role=_text("role", role),
        )

    def end_membership(
        self, *, process_id: str, group: str, reason: str, actor: Actor, at: datetime
    ) -> None:
        if (process_id, group) not in self.memberships:
            raise RuleViolationError(f"{self.name} is not a member of {group!r}")
        self._record(
            ev.MembershipEnded,
            actor,
            at,
            process_id=process_id,
            group=group,
            reason=_text("reason", reason, allow_empty=True),
        )

    @_DispatchMethod
    def when(self, event: ev.LedgerEvent) -> None:
        super().when(event)

    @when.register
    def _(self, event: ev.OrganisationRegistered) -> None:
        self.name = event.name
        self.org_kind = event.org_kind
        self.memberships: dict[tuple[str, str], str] = {}

    @when.register
    def _(self, event: ev.MembershipAdded) -> None:
        self.memberships[(event.process_id, event.group)] = event.role

    @when.register
    def _(self, event: ev.MembershipEnded) -> None:
        del self.memberships[(event.process_id, event.group)]


# Proposal ----------------------------------------------------------------------------------


class Proposal(LedgerAggregate):
    """A proposal's text, its amendments and decisions, its versions and its fate.

    ``text_version`` counts versions of the text (1 when tabled, +1 per revision); it is
    what amendments name as their base, unlike the aggregate ``version``, which counts events.
    """

    KIND = "proposal"

    @classmethod
    def table(
        cls,
        *,
        process_id: str,
        strand_id: str,
        title: str,
        sections: list[dict[str, str]],
        sponsor_org: str,
        meeting_id: str | None,
        actor: Actor,
        at: datetime,
        id: UUID | None = None,
    ) -> Proposal:
        return cls._start(
            ev.ProposalTabled,
            actor,
            at,
            id,
            process_id=process_id,
            strand_id=strand_id,
            title=_text("title", title),
            sections=_check_sections(sections),
            sponsor_org=sponsor_org,
            meeting_id=meeting_id,
        )

    def _check_open(self, doing: str) -> None:
        if self.status in FINAL_STATUSES:
            raise RuleViolationError(f"proposal is {self.status}; it can no longer be {doing}")

    def _check_base(self, base_version: int) -> None:
        if base_version != self.text_version:
            raise StaleVersionError(
                f"acted on text version {base_version} but the current version is "
                f"{self.text_version}",
                current_version=self.text_version,
            )

    def propose_amendment(
        self,
        *,
        base_version: int,
        changes: list[dict[str, str]],
        rationale: str,
        proposer_org: str | None,
        meeting_id: str | None,
        actor: Actor,
        at: datetime,
    ) -> str:
        """``proposer_org`` None: raised, unattributed, at ``meeting_id`` (the application
        checks that the meeting attributes no one)."""
        self._check_open("amended")
        self._check_base(base_version)
        if proposer_org is None and meeting_id is None:
            raise InvalidInputError(
                "proposer_org is required unless the amendment was raised at a non-attributed, "
                "Chatham House or private meeting (meeting_id)"
            )
        changes = _check_changes(changes)
        apply_changes(self.sections, changes)  # refuse changes that do not fit the text
        amendment_id = f"A{len(self.amendments) + 1}"
        self._record(
            ev.AmendmentProposed,
            actor,
            at,
            amendment_id=amendment_id,
            base_version=base_version,
            changes=changes,
            rationale=_text("rationale", rationale, allow_empty=True),
            proposer_org=proposer_org,
            meeting_id=meeting_id,
        )
        return amendment_id

    def decide_amendment(
        self,
        *,
        amendment_id: str,
        decision: str,
        consensus: str,
        dissenting_orgs: list[str],
        meeting_id: str | None,
        note: str,
        actor: Actor,
        at: datetime,
    ) -> None:
        self._check_open("amended")
        amendment = self._amendment(amendment_id)
        if amendment["decision"] in _CLOSED_DECISIONS:
            raise RuleViolationError(
                f"amendment {amendment_id} was already decided ({amendment['decision']})"
            )
        if len(set(dissenting_orgs)) != len(dissenting_orgs):
            raise InvalidInputError("dissenting organisations are listed twice")
        self._record(
            ev.AmendmentDecided,
            actor,
            at,
            amendment_id=amendment_id,
            decision=_choice("decision", decision, DECISIONS),
            consensus=_choice("consensus", consensus, CONSENSUS_STATES),
            dissenting_orgs=list(dissenting_orgs),
            meeting_id=meeting_id,
            note=_text("note", note, allow_empty=True),
        )

    def revise(
        self,
        *,
        base_version: int,
        amendment_ids: list[str],
        note: str,
        sections: list[dict[str, str]] | None,
        meeting_id: str | None,
        actor: Actor,
        at: datetime,
    ) -> int:
        self._check_open("revised")
        self._check_base(base_version)
        if not amendment_ids and sections is None:
            raise InvalidInputError("a revision needs agreed amendments or new sections")
        text = self.sections
        for amendment_id in amendment_ids:
            amendment = self._amendment(amendment_id)
            if amendment["decision"] != "agreed":
                raise RuleViolationError(
                    f"amendment {amendment_id} is {amendment['decision'] or 'undecided'}; "
                    "only agreed amendments can be incorporated"
                )
            if amendment["incorporated_in"] is not None:
                raise RuleViolationError(
                    f"amendment {amendment_id} is already in version {amendment['incorporated_in']}"
                )
            if amendment["base_version"] != self.text_version:
                raise StaleVersionError(
                    f"amendment {amendment_id} was proposed against version "
                    f"{amendment['base_version']}, but the text is at version "
                    f"{self.text_version}; propose it again against the current text",
                    current_version=self.text_version,
                )
            text = apply_changes(text, amendment["changes"])
        if sections is not None:
            text = _check_sections(sections)
        self._record(
            ev.ProposalRevised,
            actor,
            at,
            text_version=self.text_version + 1,
            based_on=self.text_version,
            amendment_ids=list(amendment_ids),
            sections=text,
            note=_text("note", note, allow_empty=True),
            meeting_id=meeting_id,
        )
        return self.text_version

    def change_status(
        self, *, new_status: str, reason: str, superseded_by: str | None, actor: Actor, at: datetime
    ) -> None:
        _choice("status", new_status, tuple(STATUS_TRANSITIONS))
        if new_status not in STATUS_TRANSITIONS[self.status]:
            allowed = ", ".join(STATUS_TRANSITIONS[self.status]) or "nothing: it is final"
            raise RuleViolationError(
                f"a {self.status} proposal cannot become {new_status} (allowed: {allowed})"
            )
        if (new_status == "superseded") != (superseded_by is not None):
            raise InvalidInputError("superseded_by is required exactly when superseding")
        self._record(
            ev.ProposalStatusChanged,
            actor,
            at,
            old_status=self.status,
            new_status=new_status,
            reason=_text("reason", reason, allow_empty=True),
            superseded_by=superseded_by,
        )

    def link_legislative_outcome(
        self, *, legislation: str, provision: str, note: str, actor: Actor, at: datetime
    ) -> None:
        if self.status in ("withdrawn", "superseded"):
            raise RuleViolationError(f"proposal is {self.status}; it has no legislative outcome")
        self._record(
            ev.LegislativeOutcomeLinked,
            actor,
            at,
            legislation=_text("legislation", legislation),
            provision=_text("provision", provision, allow_empty=True),
            note=_text("note", note, allow_empty=True),
        )

    def record_individual_sponsor(
        self, *, sponsor: dict[str, str], actor: Actor, at: datetime
    ) -> None:
        """An individual sponsors the proposal: their details as a sealed value only."""
        self._check_open("sponsored")
        sealed = _check_sealed("sponsor", sponsor)
        if any(s["person"] == sealed["person"] for s in self.individual_sponsors):
            raise RuleViolationError(f"person {sealed['person']!r} already sponsors this proposal")
        self._record(ev.ProposalIndividualSponsorRecorded, actor, at, sponsor=sealed)

    def _amendment(self, amendment_id: str) -> dict[str, Any]:
        try:
            return self.amendments[amendment_id]
        except KeyError:
            raise InvalidInputError(f"proposal has no amendment {amendment_id!r}") from None

    @_DispatchMethod
    def when(self, event: ev.LedgerEvent) -> None:
        super().when(event)

    @when.register
    def _(self, event: ev.ProposalTabled) -> None:
        self.process_id = event.process_id
        self.strand_id = event.strand_id
        self.title = event.title
        self.sponsor_org = event.sponsor_org
        self.status = "draft"
        self.text_version = 1
        self.sections: list[dict[str, str]] = [dict(s) for s in event.sections]
        self.amendments: dict[str, dict[str, Any]] = {}
        self.outcomes: list[dict[str, str]] = []
        self.individual_sponsors: list[dict[str, str]] = []

    @when.register
    def _(self, event: ev.AmendmentProposed) -> None:
        self.amendments[event.amendment_id] = {
            "base_version": event.base_version,
            "changes": event.changes,
            "meeting_id": event.meeting_id,  # where it was raised (the attribution rule)
            "decision": None,
            "incorporated_in": None,
        }

    @when.register
    def _(self, event: ev.AmendmentDecided) -> None:
        self.amendments[event.amendment_id]["decision"] = event.decision

    @when.register
    def _(self, event: ev.ProposalRevised) -> None:
        self.text_version = event.text_version
        self.sections = [dict(s) for s in event.sections]
        for amendment_id in event.amendment_ids:
            self.amendments[amendment_id]["incorporated_in"] = event.text_version

    @when.register
    def _(self, event: ev.ProposalStatusChanged) -> None:
        self.status = event.new_status

    @when.register
    def _(self, event: ev.LegislativeOutcomeLinked) -> None:
        self.outcomes.append({"legislation": event.legislation, "provision": event.provision})

    @when.register
    def _(self, event: ev.ProposalIndividualSponsorRecorded) -> None:
        self.individual_sponsors.append(dict(event.sponsor))


# Meeting -----------------------------------------------------------------------------------


class Meeting(LedgerAggregate):
    """A meeting: scheduled, held, its outcomes and its agreed minutes."""

    KIND = "meeting"

    @classmethod
    def schedule(
        cls,
        *,
        process_id: str,
        strand_id: str | None,
        title: str,
        starts_at: str,
        disclosure: str,
        convenor_org: str,
        actor: Actor,
        at: datetime,
        id: UUID | None = None,
    ) -> Meeting:
        return cls._start(
            ev.MeetingScheduled,
            actor,
            at,
            id,
            process_id=process_id,
            strand_id=strand_id,
            title=_text("title", title),
            starts_at=_text("starts_at", starts_at),
            disclosure=_choice("disclosure", disclosure, DISCLOSURE_MODES),
            convenor_org=convenor_org,
        )

    @property
    def attributes(self) -> bool:
        """Whether what is raised at the meeting may name organisations (on record only)."""
        return self.disclosure not in UNATTRIBUTED

    @property
    def attendance_sealed(self) -> bool:
        """Whether attendance is recorded only as salted commitments (Chatham House, private)."""
        return self.disclosure in ATTENDANCE_SEALED

    def check_attendance(self, attending_orgs: list[str]) -> None:
        """Refuse a second held record, an empty or a repeated list of attending organisations."""
        if self.held:
            raise RuleViolationError("meeting has already been recorded as held")
        if not attending_orgs:
            raise InvalidInputError("a held meeting needs at least one attending organisation")
        if len(set(attending_orgs)) != len(attending_orgs):
            raise InvalidInputError("attending organisations are listed twice")

    def record_held(
        self, *, attending_orgs: list[str], held_at: str, actor: Actor, at: datetime
    ) -> None:
        self.check_attendance(attending_orgs)
        if self.attendance_sealed:
            raise RuleViolationError(
                f"attendance of a {self.disclosure} meeting is recorded only as salted "
                "commitments, never by organisation id"
            )
        self._record(
            ev.MeetingHeld,
            actor,
            at,
            attending_orgs=list(attending_orgs),
            held_at=_text("held_at", held_at),
        )

    def record_held_with_people(
        self,
        *,
        attending_orgs: list[str],
        attending_people: list[dict[str, str]],
        held_at: str,
        actor: Actor,
        at: datetime,
    ) -> None:
        """Record the meeting as held, with individual attendees as sealed values only."""
        self.check_attendance(attending_orgs)
        if self.attendance_sealed:
            raise RuleViolationError(
                f"individual attendees cannot be recorded for a {self.disclosure} meeting"
            )
        if not attending_people:
            raise InvalidInputError("no individual attendees: use record_held")
        seen: set[str] = set()
        for sealed in attending_people:
            if (
                not isinstance(sealed, dict)
                or set(sealed) != {"person", "key_id", "nonce", "ciphertext"}
                or not all(isinstance(v, str) for v in sealed.values())
            ):
                raise InvalidInputError("each individual attendee must be a sealed value")
            if sealed["person"] in seen:
                raise InvalidInputError(f"person {sealed['person']!r} is listed twice")
            seen.add(sealed["person"])
        self._record(
            ev.MeetingHeldWithPeople,
            actor,
            at,
            attending_orgs=list(attending_orgs),
            attending_people=[dict(p) for p in attending_people],
            held_at=_text("held_at", held_at),
        )

    def record_held_in_confidence(
        self, *, attendance_commitments: list[str], held_at: str, actor: Actor, at: datetime
    ) -> None:
        """Record a Chatham House or private meeting as held, with one salted commitment per
        attending organisation (sorted, so their order says nothing either)."""
        if self.held:
            raise RuleViolationError("meeting has already been recorded as held")
        if not self.attendance_sealed:
            raise RuleViolationError(
                f"a {self.disclosure} meeting records its attending organisations in the open"
            )
        if not attendance_commitments:
            raise InvalidInputError("a held meeting needs at least one attending organisation")
        clean = sorted(_sha256_hex(c) for c in attendance_commitments)
        if len(set(clean)) != len(clean):
            raise InvalidInputError("attendance commitments are listed twice")
        self._record(
            ev.MeetingHeldInConfidence,
            actor,
            at,
            attendance_commitments=clean,
            held_at=_text("held_at", held_at),
        )

    def record_outcome(self, *, items: list[dict[str, Any]], actor: Actor, at: datetime) -> str:
        if not self.held:
            raise RuleViolationError("outcomes can only be recorded for a meeting that was held")
        if not isinstance(items, list) or not items:
            raise InvalidInputError("an outcome needs at least one item")
        for item in items:
            if not isinstance(item, dict):
                raise InvalidInputError("each outcome item must be an object")
            _choice("outcome item kind", item.get("kind"), OUTCOME_ITEM_KINDS)
            _text("outcome item text", item.get("text"))
            if "consensus" in item:
                _choice("consensus", item["consensus"], CONSENSUS_STATES)
        outcome_id = f"O{self.outcome_count + 1}"
        self._record(ev.MeetingOutcomeRecorded, actor, at, outcome_id=outcome_id, items=items)
        return outcome_id

    def agree_minutes(
        self, *, sha256: str, size: int, media_type: str, actor: Actor, at: datetime
    ) -> None:
        if not self.held:
            raise RuleViolationError("minutes can only be agreed for a meeting that was held")
        if self.minutes_sha256 is not None:
            raise RuleViolationError("minutes were already agreed; record a correction instead")
        _check_size(size)
        self._record(
            ev.MinutesAgreed,
            actor,
            at,
            sha256=_sha256_hex(sha256),
            size=size,
            media_type=_text("media_type", media_type),
        )

    @_DispatchMethod
    def when(self, event: ev.LedgerEvent) -> None:
        super().when(event)

    @when.register
    def _(self, event: ev.MeetingScheduled) -> None:
        self.process_id = event.process_id
        self.title = event.title
        self.disclosure = event.disclosure
        self.held = False
        self.attending_orgs: list[str] = []
        self.outcome_count = 0
        self.minutes_sha256: str | None = None
        self.attending_people: list[dict[str, str]] = []

    @when.register
    def _(self, event: ev.MeetingHeld) -> None:
        self.held = True
        self.attending_orgs = list(event.attending_orgs)

    @when.register
    def _(self, event: ev.MeetingHeldWithPeople) -> None:
        self.held = True
        self.attending_orgs = list(event.attending_orgs)
        self.attending_people = [dict(p) for p in event.attending_people]

    @when.register
    def _(self, event: ev.MeetingHeldInConfidence) -> None:
        self.held = True
        self.attending_orgs = []

    @when.register
    def _(self, event: ev.MeetingOutcomeRecorded) -> None:
        self.outcome_count += 1

    @when.register
    def _(self, event: ev.MinutesAgreed) -> None:
        self.minutes_sha256 = event.sha256


# Publication -------------------------------------------------------------------------------


class Publication(LedgerAggregate):
    """A published document, named by the SHA-256 of its exact bytes."""

    KIND = "publication"

    @classmethod
    def publish(
        cls,
        *,
        process_id: str,
        pub_kind: str,
        title: str,
        sha256: str,
        size: int,
        media_type: str,
        proposal_ids: list[str],
        meeting_ids: list[str],
        actor: Actor,
        at: datetime,
        id: UUID | None = None,
    ) -> Publication:
        _check_size(size)
        return cls._start(
            ev.PublicationPublished,
            actor,
            at,
            id,
            process_id=process_id,
            pub_kind=_choice("publication kind", pub_kind, PUBLICATION_KINDS),
            title=_text("title", title),
            sha256=_sha256_hex(sha256),
            size=size,
            media_type=_text("media_type", media_type),
            proposal_ids=list(proposal_ids),
            meeting_ids=list(meeting_ids),
        )

    @classmethod
    def embargo(
        cls,
        *,
        process_id: str,
        pub_kind: str,
        title: str,
        commitment: str,
        release_at: str,
        proposal_ids: list[str],
        meeting_ids: list[str],
        actor: Actor,
        at: datetime,
        id: UUID | None = None,
    ) -> Publication:
        return cls._start(
            ev.PublicationEmbargoed,
            actor,
            at,
            id,
            process_id=process_id,
            pub_kind=_choice("publication kind", pub_kind, PUBLICATION_KINDS),
            title=_text("title", title),
            commitment=_sha256_hex(commitment),
            release_at=_rfc3339_utc("release_at", release_at),
            proposal_ids=list(proposal_ids),
            meeting_ids=list(meeting_ids),
        )

    def check_embargoed(self, doing: str) -> None:
        if self.state != "embargoed":
            raise RuleViolationError(f"cannot {doing}: the publication is {self.state}")

    def grant_prerelease_access(
        self, *, organisation_id: str, authorised_by: str, reason: str, actor: Actor, at: datetime
    ) -> None:
        self.check_embargoed("grant pre-release access")
        self._record(
            ev.PrereleaseAccessGranted,
            actor,
            at,
            organisation_id=organisation_id,
            authorised_by=_text("authorised_by", authorised_by),
            reason=_text("reason", reason),
        )

    def release(
        self,
        *,
        sha256: str,
        size: int,
        media_type: str,
        salt: str,
        override_reason: str | None,
        actor: Actor,
        at: datetime,
    ) -> None:
        """Release the embargoed document (the application has checked its bytes against
        the commitment). Before ``release_at`` only an admin may, with a reason."""
        self.check_embargoed("release it")
        early = at < datetime.fromisoformat(self.release_at)
        if override_reason is not None:
            _text("override_reason", override_reason)
            if actor.role not in ("admin", "system"):
                raise RuleViolationError(
                    f"only an admin may override an embargo (this token is a {actor.role}'s)"
                )
        elif early:
            raise RuleViolationError(
                f"the publication is embargoed until {self.release_at}; an admin may release "
                "it earlier with an override_reason"
            )
        _check_size(size)
        if len(salt) != 64 or any(c not in "0123456789abcdef" for c in salt):
            raise InvalidInputError("salt must be 64 lowercase hex digits")
        self._record(
            ev.PublicationReleased,
            actor,
            at,
            sha256=_sha256_hex(sha256),
            size=size,
            media_type=_text("media_type", media_type),
            salt=salt,
            override_reason=override_reason,
        )

    def _check_current(self) -> None:
        if self.state != "published":
            raise RuleViolationError(f"publication is already {self.state}")

    def withdraw(self, *, reason: str, actor: Actor, at: datetime) -> None:
        self._check_current()
        self._record(ev.PublicationWithdrawn, actor, at, reason=_text("reason", reason))

    def supersede(self, *, superseded_by: str, reason: str, actor: Actor, at: datetime) -> None:
        self._check_current()
        if superseded_by == str(self.id):
            raise InvalidInputError("a publication cannot supersede itself")
        self._record(
            ev.PublicationSuperseded,
            actor,
            at,
            superseded_by=superseded_by,
            reason=_text("reason", reason, allow_empty=True),
        )

    @_DispatchMethod
    def when(self, event: ev.LedgerEvent) -> None:
        super().when(event)

    @when.register
    def _(self, event: ev.PublicationPublished) -> None:
        self.title = event.title
        self.sha256: str | None = event.sha256
        self.commitment: str | None = None
        self.release_at = ""
        self.state = "published"

    @when.register
    def _(self, event: ev.PublicationEmbargoed) -> None:
        self.title = event.title
        self.sha256 = None
        self.commitment = event.commitment
        self.release_at = event.release_at
        self.state = "embargoed"

    @when.register
    def _(self, event: ev.PrereleaseAccessGranted) -> None:
        pass

    @when.register
    def _(self, event: ev.PublicationReleased) -> None:
        self.sha256 = event.sha256
        self.state = "published"

    @when.register
    def _(self, event: ev.PublicationWithdrawn) -> None:
        self.state = "withdrawn"

    @when.register
    def _(self, event: ev.PublicationSuperseded) -> None:
        self.state = "superseded"


# Consultation ------------------------------------------------------------------------------

_SEALED_KEYS = frozenset({"person", "key_id", "nonce", "ciphertext"})


def _check_sealed(name: str, value: Any) -> dict[str, str]:
    if (
        not isinstance(value, dict)
        or set(value) != _SEALED_KEYS
        or not all(isinstance(v, str) for v in value.values())
    ):
        raise InvalidInputError(f"{name} must be a sealed value")
    return dict(value)


def _check_items(name: str, items: Any, *, at_least_one: bool = True) -> list[dict[str, str]]:
    """A list of ``{"id", "text"}`` with unique ids."""
    if not isinstance(items, list) or (at_least_one and not items):
        raise InvalidInputError(f"{name} must be a list with at least one item")
    seen: set[str] = set()
    clean = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"id", "text"}:
            raise InvalidInputError(f"each of the {name} must be an object with id and text")
        item_id = _text(f"{name} id", item["id"])
        if item_id in seen:
            raise InvalidInputError(f"{name} id {item_id!r} appears twice")
        seen.add(item_id)
        clean.append({"id": item_id, "text": _text(f"{name} text", item["text"])})
    return clean


class Consultation(LedgerAggregate):
    """A public consultation: opened, responses received, closed, reviewed, responded to."""

    KIND = "consultation"

    @classmethod
    def open(
        cls,
        *,
        process_id: str,
        title: str,
        questions: list[dict[str, str]],
        documents: list[str],
        closes_at: str,
        actor: Actor,
        at: datetime,
        id: UUID | None = None,
    ) -> Consultation:
        if not isinstance(documents, list):
            raise InvalidInputError("documents must be a list of SHA-256 hashes")
        clean_documents = [_sha256_hex(d) for d in documents]
        if len(set(clean_documents)) != len(clean_documents):
            raise InvalidInputError("a document is listed twice")
        return cls._start(
            ev.ConsultationOpened,
            actor,
            at,
            id,
            process_id=_text("process_id", process_id),
            title=_text("title", title),
            questions=_check_items("questions", questions),
            documents=clean_documents,
            closes_at=_rfc3339_utc("closes_at", closes_at),
        )

    def check_open(self, at: datetime) -> None:
        """Refuse a response once the consultation is closed or past its closing time."""
        if self.closed:
            raise RuleViolationError("the consultation is closed: no more responses")
        closes = datetime.fromisoformat(self.closes_at)
        if at >= closes:
            raise RuleViolationError(f"the consultation closed at {self.closes_at}")

    def _check_answers(self, answers: Any) -> list[dict[str, str]]:
        if not isinstance(answers, list) or not answers:
            raise InvalidInputError("a response needs at least one answer")
        seen: set[str] = set()
        clean = []
        for answer in answers:
            if not isinstance(answer, dict) or set(answer) != {"question_id", "text"}:
                raise InvalidInputError("each answer must be an object with question_id and text")
            question = _text("question_id", answer["question_id"])
            if question not in self.question_ids:
                raise InvalidInputError(f"the consultation has no question {question!r}")
            if question in seen:
                raise InvalidInputError(f"question {question!r} is answered twice")
            seen.add(question)
            clean.append({"question_id": question, "text": _text("answer", answer["text"])})
        return clean

    def receive_organisation_response(
        self, *, org_id: str, answers: list[dict[str, str]], actor: Actor, at: datetime
    ) -> str:
        self.check_open(at)
        clean = self._check_answers(answers)
        response_id = f"R{self.response_count + 1}"
        self._record(
            ev.ConsultationResponseReceived,
            actor,
            at,
            response_id=response_id,
            org_id=_text("org_id", org_id),
            respondent=None,
            consent_to_publish=None,
            answers=clean,
            sealed_answers=None,
        )
        return response_id

    def receive_individual_response(
        self,
        *,
        respondent: dict[str, str],
        consent_to_publish: bool,
        answers: list[dict[str, str]] | None,
        sealed_answers: dict[str, str] | None,
        actor: Actor,
        at: datetime,
    ) -> str:
        """An individual's response: details sealed; answers public with consent (and then
        checked here), otherwise sealed (checked by the application before sealing)."""
        self.check_open(at)
        if not isinstance(consent_to_publish, bool):
            raise InvalidInputError("consent_to_publish must be true or false")
        sealed = _check_sealed("respondent", respondent)
        if consent_to_publish:
            if sealed_answers is not None:
                raise InvalidInputError("with consent to publish, answers are public")
            public = self._check_answers(answers)
            hidden = None
        else:
            if answers is not None:
                raise InvalidInputError("without consent to publish, answers must be sealed")
            public = None
            hidden = _check_sealed("sealed_answers", sealed_answers)
            if hidden["person"] != sealed["person"]:
                raise InvalidInputError("sealed answers must be sealed for the respondent")
        response_id = f"R{self.response_count + 1}"
        self._record(
            ev.ConsultationResponseReceived,
            actor,
            at,
            response_id=response_id,
            org_id=None,
            respondent=sealed,
            consent_to_publish=consent_to_publish,
            answers=public,
            sealed_answers=hidden,
        )
        return response_id

    def close(self, *, note: str = "", actor: Actor, at: datetime) -> None:
        if self.closed:
            raise RuleViolationError("the consultation is already closed")
        self._record(ev.ConsultationClosed, actor, at, note=_text("note", note, allow_empty=True))

    def record_review(
        self,
        *,
        reviewer_org: str,
        findings: list[str],
        recommendations: list[dict[str, str]],
        actor: Actor,
        at: datetime,
    ) -> None:
        if not self.closed:
            raise RuleViolationError("a review can only be recorded once the consultation closed")
        if self.reviewed:
            raise RuleViolationError("a review of this consultation was already recorded")
        if not isinstance(findings, list) or not findings:
            raise InvalidInputError("a review needs at least one finding")
        self._record(
            ev.ConsultationReviewRecorded,
            actor,
            at,
            reviewer_org=_text("reviewer_org", reviewer_org),
            findings=[_text("finding", f) for f in findings],
            recommendations=_check_items("recommendations", recommendations, at_least_one=False),
        )

    def respond_to_recommendation(
        self, *, recommendation_id: str, response: str, text: str, actor: Actor, at: datetime
    ) -> None:
        if recommendation_id not in self.recommendations:
            raise RuleViolationError(f"the review has no recommendation {recommendation_id!r}")
        if recommendation_id in self.government_responses:
            raise RuleViolationError(
                f"the government already responded to recommendation {recommendation_id!r}"
            )
        self._record(
            ev.ConsultationGovernmentResponded,
            actor,
            at,
            recommendation_id=recommendation_id,
            response=_choice("response", response, GOVERNMENT_RESPONSES),
            text=_text("text", text),
        )

    @_DispatchMethod
    def when(self, event: ev.LedgerEvent) -> None:
        super().when(event)

    @when.register
    def _(self, event: ev.ConsultationOpened) -> None:
        self.process_id = event.process_id
        self.title = event.title
        self.question_ids = [q["id"] for q in event.questions]
        self.closes_at = event.closes_at
        self.closed = False
        self.response_count = 0
        self.respondents: list[dict[str, str]] = []
        self.reviewed = False
        self.recommendations: list[str] = []
        self.government_responses: dict[str, str] = {}

    @when.register
    def _(self, event: ev.ConsultationResponseReceived) -> None:
        self.response_count += 1
        if event.respondent is not None:
            self.respondents.append(dict(event.respondent))

    @when.register
    def _(self, event: ev.ConsultationClosed) -> None:
        self.closed = True

    @when.register
    def _(self, event: ev.ConsultationReviewRecorded) -> None:
        self.reviewed = True
        self.recommendations = [r["id"] for r in event.recommendations]

    @when.register
    def _(self, event: ev.ConsultationGovernmentResponded) -> None:
        self.government_responses[event.recommendation_id] = event.response


# Correction --------------------------------------------------------------------------------


class Correction(LedgerAggregate):
    """A correction of an earlier entry; the earlier entry itself never changes."""

    KIND = "correction"

    @classmethod
    def record(
        cls,
        *,
        corrects_index: int,
        corrects_type: str,
        reason: str,
        correction: dict[str, Any],
        actor: Actor,
        at: datetime,
        id: UUID | None = None,
    ) -> Correction:
        if not isinstance(correction, dict):
            raise InvalidInputError("correction must be an object of corrected fields")
        return cls._start(
            ev.CorrectionRecorded,
            actor,
            at,
            id,
            corrects_index=corrects_index,
            corrects_type=corrects_type,
            reason=_text("reason", reason),
            correction=correction,
        )

    @_DispatchMethod
    def when(self, event: ev.LedgerEvent) -> None:
        super().when(event)

    @when.register
    def _(self, event: ev.CorrectionRecorded) -> None:
        self.corrects_index = event.corrects_index


class KeyRotation(LedgerAggregate):
    """A change of the log's signing key, recorded in the log it signs."""

    KIND = "log"

    @classmethod
    def rotate(
        cls, *, old_key: str, new_key: str, reason: str, actor: Actor, at: datetime
    ) -> KeyRotation:
        if old_key == new_key:
            raise InvalidInputError("the new key is the current key")
        if actor.role not in ("admin", "system"):
            raise RuleViolationError("only an admin can rotate the log's signing key")
        return cls._start(
            ev.KeyRotated,
            actor,
            at,
            None,
            old_key=old_key,
            new_key=new_key,
            reason=_text("reason", reason),
        )

    @_DispatchMethod
    def when(self, event: ev.LedgerEvent) -> None:
        super().when(event)

    @when.register
    def _(self, event: ev.KeyRotated) -> None:
        self.new_key = event.new_key


class ErasureRecord(LedgerAggregate):
    """The record that a person's personal data was erased (their data keys destroyed)."""

    KIND = "person"

    @classmethod
    def erase(
        cls,
        *,
        person_id: str,
        legal_basis: str,
        authorised_by: str,
        keys_destroyed: int,
        actor: Actor,
        at: datetime,
    ) -> ErasureRecord:
        if actor.role not in ("admin", "system"):
            raise RuleViolationError("only an admin can erase a person's personal data")
        return cls._start(
            ev.PersonErased,
            actor,
            at,
            None,
            person_id=_text("person_id", person_id),
            legal_basis=_text("legal_basis", legal_basis),
            authorised_by=_text("authorised_by", authorised_by),
            keys_destroyed=keys_destroyed,
        )

    @_DispatchMethod
    def when(self, event: ev.LedgerEvent) -> None:
        super().when(event)

    @when.register
    def _(self, event: ev.PersonErased) -> None:
        self.person_id = event.person_id


class AccessToken(LedgerAggregate):
    """An official's API token: who holds it, for which organisation and role."""

    KIND = "access_token"

    @classmethod
    def issue(
        cls,
        *,
        principal: str,
        org: str,
        role: str,
        note: str = "",
        actor: Actor,
        at: datetime,
        id: UUID | None = None,
    ) -> AccessToken:
        if actor.role not in ("admin", "system"):
            raise RuleViolationError("only an admin can issue API tokens")
        return cls._start(
            ev.AccessTokenIssued,
            actor,
            at,
            id,
            principal=_text("principal", principal).strip(),
            org=_text("org", org, allow_empty=True),
            role=_choice("role", role, TOKEN_ROLES),
            note=_text("note", note, allow_empty=True),
        )

    def revoke(self, *, reason: str, actor: Actor, at: datetime) -> None:
        if actor.role not in ("admin", "system"):
            raise RuleViolationError("only an admin can revoke API tokens")
        if self.revoked:
            raise RuleViolationError("this token is already revoked")
        self._record(ev.AccessTokenRevoked, actor, at, reason=_text("reason", reason))

    @_DispatchMethod
    def when(self, event: ev.LedgerEvent) -> None:
        super().when(event)

    @when.register
    def _(self, event: ev.AccessTokenIssued) -> None:
        self.principal = event.principal
        self.org = event.org
        self.role = event.role
        self.revoked = False

    @when.register
    def _(self, event: ev.AccessTokenRevoked) -> None:
        self.revoked = True


AGGREGATES: tuple[type[LedgerAggregate], ...] = (
    Process,
    Organisation,
    Proposal,
    Meeting,
    Publication,
    Consultation,
    Correction,
    KeyRotation,
    AccessToken,
    ErasureRecord,
)
for _aggregate_class in AGGREGATES:
    register_topic(_aggregate_class.KIND, _aggregate_class)
