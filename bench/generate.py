"""Write a realistic NDJSON command file for N entries of one open policy process.

Each line is one command of ``ledger.application.LedgerApplication`` and records exactly one
entry::

    {"command": "table_proposal", "args": {...}, "actor": {"id": ..., "role": ..., "org": ...}}

The process has strands and phases; about 1% of the entries register organisations, which
join strands (memberships); proposals are tabled with 3–8 sections of policy text, amended
against a named text version, the amendments decided (often at a held meeting) and
consolidated into revisions; proposals move through their statuses; meetings are scheduled,
held (on the record, non-attributed, Chatham House or private) and get outcomes and minutes;
documents are published, withdrawn and superseded; and consultations are opened, receive
thousands of responses from organisations and individuals (personal data: the ledger seals
it), are closed, reviewed and responded to. About half of all entries are consultation
responses, as in a real process.

Creation commands carry an explicit ``"id"`` so later lines can refer to earlier records.
Every prefix of the file is itself valid, so ``--entries N`` stops at exactly N lines.
Output is deterministic given ``--seed``. Consultations close on the file's own timeline,
which starts at ``--start`` (default 2030-01-07): the ledger refuses a response after a
consultation's ``closes_at`` by its own clock, so import the file before that date.

    python bench/generate.py --entries 1000000 --seed 1 --out commands.ndjson
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from ledger.aggregates import STATUS_TRANSITIONS, apply_changes
from ledger.errors import InvalidInputError

__all__ = ["generate", "main"]

CONSULTATION_SHARE = 0.55  # of all entries: consultation responses dominate real processes
ORG_SHARE = 0.01

TOPICS = (
    "data sharing", "open contracting", "beneficial ownership", "public procurement",
    "algorithmic transparency", "local democracy", "freedom of information",
    "open data standards", "lobbying transparency", "digital identity", "civic participation",
    "fiscal transparency", "public appointments", "research data access", "open addresses",
)  # fmt: skip
CITIES = (
    "Manchester", "Leeds", "Bristol", "Cardiff", "Glasgow", "Belfast", "Norwich", "York",
    "Sheffield", "Newcastle", "Exeter", "Lancaster", "Dundee", "Swansea", "Brighton",
)  # fmt: skip
FIRST_NAMES = (
    "Amelia", "Oliver", "Priya", "Mohammed", "Siobhan", "Chen", "Grace", "Tomasz", "Aisha",
    "Rhys", "Fatima", "Callum", "Ngozi", "Hannah", "Dev", "Eilidh", "Kwame", "Zofia", "Liam",
)  # fmt: skip
SURNAMES = (
    "Okafor", "Patel", "Jones", "Nowak", "MacLeod", "Williams", "Khan", "Evans", "Li",
    "Murphy", "Hughes", "Begum", "Campbell", "Mensah", "Taylor", "Davies", "Ahmed", "Byrne",
)  # fmt: skip
STRANDS = (
    ("services", "Joined-up public services",
     "Sharing information between public bodies to offer better help to households."),
    ("integrity", "Fraud, error and debt",
     "Reducing fraud and error against the public sector and managing debt fairly."),
    ("research", "Research and statistics",
     "Safe access to de-identified administrative data for research and statistics."),
    ("transparency", "Transparency and accountability",
     "What the public can see of how decisions are made and who influenced them."),
    ("standards", "Open standards",
     "Common formats and identifiers so published data can be joined up and reused."),
    ("participation", "Public participation",
     "How people and organisations take part in policy making and see its results."),
)  # fmt: skip
PHASES = (
    ("scoping", "Scoping", "Is there a case for change, and for what?"),
    ("working-groups", "Working groups", "Strand groups develop options in the open."),
    ("drafting", "Drafting", "Proposals are drafted, amended and revised."),
    ("consultation", "Public consultation", "The proposals are put to the public."),
    ("legislation", "Legislation", "Agreed proposals are taken into legislation."),
)
SUBJECTS = (
    "Each public body", "The Secretary of State", "A local authority", "The regulator",
    "The lead department", "Every participating organisation", "The data controller",
    "A relevant authority", "The responsible minister", "The oversight board",
)  # fmt: skip
VERBS = (
    "must publish", "shall consult on", "may request", "must review", "shall maintain",
    "must report annually on", "should make available", "shall notify the public of",
    "must keep a record of", "may share",
)  # fmt: skip
OBJECTS = (
    "a register of the datasets it holds", "the criteria used to prioritise funding",
    "its decisions on requests for information", "the purposes for which data is shared",
    "the safeguards applied to personal data", "the outcome of each pilot",
    "an assessment of the impact on individuals", "the names of organisations consulted",
    "the code of practice and any revision of it", "the costs and benefits of the scheme",
)  # fmt: skip
QUALIFIERS = (
    "within 28 days of a request", "in an open, machine-readable format",
    "having regard to guidance issued under this part", "after consulting the Commissioner",
    "unless disclosure would breach data protection law", "at least once in every year",
    "in plain language accessible to the public", "before the scheme comes into force",
    "in a form that allows comparison between years", "subject to independent review",
)  # fmt: skip
HEADINGS = (
    "Purpose", "Scope", "Definitions", "Duties of public bodies", "Safeguards", "Reporting",
    "Review", "Oversight", "Funding", "Transparency", "Commencement", "Code of practice",
)  # fmt: skip
INSTRUMENTS = ("duty", "code of practice", "pilot scheme", "register", "framework", "gateway")
OPENERS = (
    "We agree with the proposal, provided that", "We broadly support this, but",
    "We do not agree: in our experience", "Yes.", "Partly.", "We are concerned that",
    "This would work well if", "No. The evidence suggests that",
)  # fmt: skip
ORG_PATTERNS: tuple[tuple[str, Callable[[random.Random], str]], ...] = (
    ("department", lambda r: f"Department for {r.choice(TOPICS).title()}"),
    ("local_authority", lambda r: f"{r.choice(CITIES)} City Council"),
    ("public_body", lambda r: f"{r.choice(TOPICS).title()} Agency"),
    ("civil_society", lambda r: f"Open {r.choice(TOPICS).title()} Network"),
    ("civil_society", lambda r: f"{r.choice(CITIES)} Citizens' Advice"),
    ("academic", lambda r: f"University of {r.choice(CITIES)}"),
    ("advisory_group", lambda r: f"{r.choice(TOPICS).title()} Advisory Group"),
    ("business", lambda r: f"{r.choice(CITIES)} {r.choice(TOPICS).title()} Ltd"),
)


@dataclass
class _Proposal:
    id: str
    strand: str
    sections: list[dict[str, str]]
    version: int = 1
    status: str = "draft"
    amendments: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_section: int = 0


@dataclass
class _Meeting:
    id: str
    strand: str | None
    disclosure: str
    held: bool = False
    outcomes: int = 0
    minutes: bool = False


@dataclass
class _Consultation:
    id: str
    questions: list[str]
    quota: int
    responses: int = 0
    closed: bool = False
    recommendations: list[str] = field(default_factory=list)
    answered: int = 0
    reviewed: bool = False


class _Writer:
    """Emits one valid command at a time, tracking the state the rules depend on."""

    def __init__(self, out: IO[bytes], entries: int, seed: int, start: datetime) -> None:
        self.out = out
        self.n = entries
        self.rng = random.Random(seed)
        self.lines = 0
        self.counts: dict[str, int] = {}
        self.now = start
        self.step = timedelta(seconds=max(1.0, 4 * 365 * 86400 / max(entries, 1)))
        self.process = self.uuid()
        self.strands: list[str] = []
        self.orgs: list[str] = []
        self.members: dict[str, list[str]] = {}  # strand → organisation ids
        self.officials: list[dict[str, str]] = []
        self.proposals: list[_Proposal] = []
        self.open_proposals: list[_Proposal] = []
        self.meetings: list[_Meeting] = []
        self.held: list[_Meeting] = []
        self.silent: set[str] = set()  # meetings that attribute no one (not on the record)
        self.publications: list[str] = []
        self.current_publications: list[str] = []
        self.consultation: _Consultation | None = None
        self.consultations = 0
        self.phase = 0

    # basics ---------------------------------------------------------------------------------

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def left(self) -> int:
        return self.n - self.lines

    def emit(self, command: str, args: dict[str, Any], role: str = "recorder") -> None:
        if self.lines >= self.n:
            raise _FullError
        line: dict[str, Any] = {"command": command, "args": args}
        if self.officials:
            official = self.rng.choice(self.officials)
            line["actor"] = {**official, "role": role}
        self.out.write(orjson.dumps(line) + b"\n")
        self.lines += 1
        self.counts[command] = self.counts.get(command, 0) + 1
        self.now += self.step

    def iso(self, moment: datetime | None = None) -> str:
        return (moment or self.now).strftime("%Y-%m-%dT%H:%M:%SZ")

    def sentence(self) -> str:
        r = self.rng
        return f"{r.choice(SUBJECTS)} {r.choice(VERBS)} {r.choice(OBJECTS)} {r.choice(QUALIFIERS)}."

    def paragraph(self, low: int = 2, high: int = 5) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(low, high)))

    def sha256(self) -> str:
        return hashlib.sha256(self.rng.getrandbits(256).to_bytes(32, "big")).hexdigest()

    def person(self) -> tuple[str, str]:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(SURNAMES)
        return f"{first} {last}", f"{first.lower()}.{last.lower()}{self.rng.randint(1, 999)}"

    def some_orgs(self, strand: str | None, low: int, high: int) -> list[str]:
        pool = self.members.get(strand or "", []) or self.orgs
        if len(pool) < high:
            pool = self.orgs
        return self.rng.sample(pool, min(len(pool), self.rng.randint(low, high)))

    def held_meeting(self, strand: str | None) -> str | None:
        """A meeting already recorded as held (of the strand if possible), or None."""
        if not self.held or self.rng.random() < 0.3:
            return None
        recent = [m for m in self.held[-20:] if m.strand == strand] or self.held[-5:]
        return self.rng.choice(recent).id

    def attributing(self, meeting_id: str | None) -> str | None:
        """``meeting_id`` if that meeting attributes (on the record), else None."""
        return None if meeting_id in self.silent else meeting_id

    # set-up ---------------------------------------------------------------------------------

    def set_up(self) -> None:
        self.emit(
            "start_process",
            {
                "id": self.process,
                "title": "Open data and data sharing: an open policy process",
                "summary": "An open policy-making process on how public bodies share and "
                "publish data: where new powers are needed, for what purposes and with "
                "which safeguards.",
            },
        )
        self.next_phase()
        strand_count = 3 if self.n < 5_000 else len(STRANDS)
        for strand_id, title, summary in STRANDS[:strand_count]:
            self.emit(
                "add_strand",
                {"process_id": self.process, "strand_id": strand_id, "title": title,
                 "summary": summary},
            )  # fmt: skip
            self.strands.append(strand_id)
        for _ in range(max(8, int(self.n * ORG_SHARE * 0.6))):
            self.new_organisation()

    def next_phase(self) -> None:
        if self.phase >= len(PHASES):
            return
        phase_id, title, summary = PHASES[self.phase]
        self.phase += 1
        self.emit(
            "start_phase",
            {"process_id": self.process, "phase_id": phase_id, "title": title,
             "summary": summary},
            role="recorder",
        )  # fmt: skip

    def new_organisation(self) -> None:
        kind, name = self.rng.choice(ORG_PATTERNS)
        if not self.orgs:
            kind, name = ORG_PATTERNS[0]
        org = self.uuid()
        self.emit("register_organisation", {"id": org, "name": name(self.rng), "org_kind": kind})
        self.orgs.append(org)
        if len(self.officials) < 24:
            self.officials.append({"id": f"official-{len(self.officials) + 1:02d}", "org": org})
        emptiest = min(self.strands, key=lambda s: len(self.members.get(s, ())))
        strands = [emptiest]
        if self.rng.random() < 0.3:
            strands.append(self.rng.choice([s for s in self.strands if s != emptiest]))
        for strand in strands:
            role = "chair" if not self.members.get(strand) else "member"
            self.emit(
                "add_membership",
                {"organisation_id": org, "process_id": self.process, "group": strand,
                 "role": role},
            )  # fmt: skip
            self.members.setdefault(strand, []).append(org)

    # meetings -------------------------------------------------------------------------------

    def schedule_meeting(self) -> None:
        strand = self.rng.choice([*self.strands, None])
        disclosure = self.rng.choices(
            ("on_record", "non_attributed", "chatham_house", "private"), (70, 15, 10, 5)
        )[0]
        meeting = _Meeting(self.uuid(), strand, disclosure)
        what = self.rng.choice(("Workshop", "Working group", "Roundtable", "Steering group"))
        self.emit(
            "schedule_meeting",
            {
                "id": meeting.id,
                "process_id": self.process,
                "strand_id": strand,
                "title": f"{what} on {self.rng.choice(TOPICS)}",
                "starts_at": self.iso(self.now + timedelta(days=14)),
                "disclosure": disclosure,
                "convenor_org": self.rng.choice(self.members.get(strand or "", self.orgs)),
            },
        )
        self.meetings.append(meeting)
        if disclosure != "on_record":
            self.silent.add(meeting.id)

    def hold_meeting(self, meeting: _Meeting) -> None:
        args: dict[str, Any] = {
            "meeting_id": meeting.id,
            "attending_orgs": self.some_orgs(meeting.strand, 3, 12),
            "held_at": self.iso(),
        }
        if meeting.disclosure in ("on_record", "non_attributed") and self.rng.random() < 0.1:
            people = []
            for _ in range(self.rng.randint(1, 3)):
                name, _handle = self.person()
                people.append({"person_id": self.uuid(), "name": name, "role": "Adviser"})
            args["attending_people"] = people
        self.emit("record_meeting_held", args)
        meeting.held = True
        self.held.append(meeting)

    def meeting_outcome(self, meeting: _Meeting) -> None:
        items: list[dict[str, Any]] = []
        for _ in range(self.rng.randint(1, 4)):
            kind = self.rng.choice(("decision", "action", "agreement", "disagreement", "option"))
            item: dict[str, Any] = {"kind": kind, "text": self.sentence()}
            if self.proposals and self.rng.random() < 0.5:
                proposal = self.rng.choice(self.proposals[-30:])
                item["proposal_id"] = proposal.id
                if proposal.amendments and self.rng.random() < 0.5:
                    item["amendment_id"] = self.rng.choice(list(proposal.amendments))
            if kind in ("agreement", "disagreement", "option"):
                item["consensus"] = self.rng.choice(("banked", "still_to_discuss", "options"))
            if meeting.disclosure == "on_record" and self.rng.random() < 0.3:
                item["orgs"] = self.some_orgs(meeting.strand, 1, 2)
            items.append(item)
        self.emit("record_meeting_outcome", {"meeting_id": meeting.id, "items": items})
        meeting.outcomes += 1

    def agree_minutes(self, meeting: _Meeting) -> None:
        self.emit(
            "agree_minutes",
            {"meeting_id": meeting.id, "sha256": self.sha256(),
             "size": self.rng.randint(20_000, 900_000), "media_type": "application/pdf"},
        )  # fmt: skip
        meeting.minutes = True

    # proposals ------------------------------------------------------------------------------

    def table_proposal(self) -> None:
        strand = self.rng.choice(self.strands)
        topic = self.rng.choice(TOPICS)
        headings = self.rng.sample(HEADINGS, self.rng.randint(3, 8))
        sections = [
            {"id": f"s{k + 1}", "heading": heading, "text": self.paragraph()}
            for k, heading in enumerate(headings)
        ]
        proposal = _Proposal(self.uuid(), strand, sections, next_section=len(sections) + 1)
        self.emit(
            "table_proposal",
            {
                "id": proposal.id,
                "process_id": self.process,
                "strand_id": strand,
                "title": f"A {self.rng.choice(INSTRUMENTS)} for {topic}",
                "sections": sections,
                "sponsor_org": self.rng.choice(self.members[strand]),
                "meeting_id": self.attributing(self.held_meeting(strand)),
            },
        )
        self.proposals.append(proposal)
        self.open_proposals.append(proposal)

    def amendment_changes(self, proposal: _Proposal) -> list[dict[str, str]]:
        text = proposal.sections
        changes: list[dict[str, str]] = []
        for _ in range(1 if self.rng.random() < 0.8 else 2):
            op = self.rng.choices(("replace", "insert", "delete"), (70, 20, 10))[0]
            if op == "delete" and len(text) <= 3:
                op = "replace"
            target = self.rng.choice(text)["id"]
            change: dict[str, str]
            if op == "replace":
                change = {"op": "replace", "section_id": target, "text": self.paragraph(1, 4)}
            elif op == "insert":
                new_id = f"s{proposal.next_section}"
                proposal.next_section += 1
                change = {
                    "op": "insert",
                    "section_id": new_id,
                    "after": target,
                    "heading": self.rng.choice(HEADINGS),
                    "text": self.paragraph(1, 3),
                }
            else:
                change = {"op": "delete", "section_id": target}
            text = apply_changes(text, [change])
            changes.append(change)
        return changes

    def propose_amendment(self, proposal: _Proposal) -> None:
        amendment = f"A{len(proposal.amendments) + 1}"
        changes = self.amendment_changes(proposal)
        args = {
            "proposal_id": proposal.id,
            "base_version": proposal.version,
            "changes": changes,
            "rationale": self.sentence(),
            "proposer_org": self.rng.choice(self.members[proposal.strand]),
            "meeting_id": self.held_meeting(proposal.strand),
        }
        if args["meeting_id"] in self.silent:
            del args["proposer_org"]  # raised there, attributed to no one
        self.emit("propose_amendment", args)
        proposal.amendments[amendment] = {
            "base": proposal.version,
            "decision": None,
            "in": None,
            "changes": changes,
        }

    def decide_amendment(self, proposal: _Proposal, amendment: str) -> None:
        decision = self.rng.choices(
            ("agreed", "disagreed", "withdrawn", "no_decision"), (55, 20, 10, 15)
        )[0]
        consensus = "banked" if decision != "no_decision" else "still_to_discuss"
        if self.rng.random() < 0.15:
            consensus = "options"
        dissent = self.some_orgs(proposal.strand, 1, 2) if self.rng.random() < 0.2 else []
        meeting = self.held_meeting(proposal.strand)
        self.emit(
            "decide_amendment",
            {
                "proposal_id": proposal.id,
                "amendment_id": amendment,
                "decision": decision,
                "consensus": consensus,
                "dissenting_orgs": [] if meeting in self.silent else dissent,
                "meeting_id": meeting,
                "note": self.sentence() if self.rng.random() < 0.5 else "",
            },
        )
        proposal.amendments[amendment]["decision"] = decision

    def revise(self, proposal: _Proposal) -> None:
        text, chosen = proposal.sections, []
        for amendment_id, amendment in proposal.amendments.items():
            if (
                amendment["decision"] == "agreed"
                and amendment["in"] is None
                and amendment["base"] == proposal.version
            ):
                try:
                    text = apply_changes(text, amendment["changes"])
                except InvalidInputError:
                    continue
                chosen.append(amendment_id)
        sections = None
        if not chosen:
            sections = [dict(s) for s in text]
            target = self.rng.choice(sections)
            target["text"] = self.paragraph()
            text = sections
        self.emit(
            "revise_proposal",
            {
                "proposal_id": proposal.id,
                "base_version": proposal.version,
                "amendment_ids": chosen,
                "sections": sections,
                "note": "Consolidates the agreed amendments." if chosen else "Redrafted.",
                "meeting_id": self.held_meeting(proposal.strand),
            },
        )
        proposal.version += 1
        proposal.sections = text
        for amendment_id in chosen:
            proposal.amendments[amendment_id]["in"] = proposal.version

    def change_status(self, proposal: _Proposal) -> None:
        allowed = [s for s in STATUS_TRANSITIONS[proposal.status] if s != "superseded"]
        weights = [1 if s in ("withdrawn", "enacted") else 6 for s in allowed]
        new = self.rng.choices(allowed, weights)[0]
        self.emit(
            "change_proposal_status",
            {"proposal_id": proposal.id, "new_status": new, "reason": self.sentence()},
        )
        proposal.status = new
        if not STATUS_TRANSITIONS[new]:
            self.open_proposals.remove(proposal)
            if new == "enacted" and self.left():
                self.emit(
                    "link_legislative_outcome",
                    {"proposal_id": proposal.id, "legislation": "Digital Economy Act 2031",
                     "provision": f"Part {self.rng.randint(1, 9)}, section "
                     f"{self.rng.randint(1, 80)}", "note": "Enacted as proposed."},
                )  # fmt: skip

    # publications ---------------------------------------------------------------------------

    def publish(self) -> None:
        publication = self.uuid()
        kind = self.rng.choice(
            ("meeting_note", "discussion_paper", "policy_paper", "report", "other")
        )
        self.emit(
            "publish",
            {
                "id": publication,
                "process_id": self.process,
                "pub_kind": kind,
                "title": f"{kind.replace('_', ' ').capitalize()} on {self.rng.choice(TOPICS)}",
                "sha256": self.sha256(),
                "size": self.rng.randint(5_000, 4_000_000),
                "media_type": self.rng.choice(("application/pdf", "text/markdown")),
                "proposal_ids": [p.id for p in self.rng.sample(
                    self.proposals[-20:], min(len(self.proposals), self.rng.randint(0, 2)))],
                "meeting_ids": [m.id for m in self.rng.sample(
                    self.meetings[-20:], min(len(self.meetings), self.rng.randint(0, 1)))],
            },
            role="publisher",
        )  # fmt: skip
        self.publications.append(publication)
        self.current_publications.append(publication)

    def retire_publication(self) -> None:
        old = self.rng.choice(self.current_publications[:-1])
        self.current_publications.remove(old)
        if self.rng.random() < 0.5:
            self.emit(
                "withdraw_publication",
                {"publication_id": old, "reason": "Published in error; replaced."},
                role="publisher",
            )
        else:
            self.emit(
                "supersede_publication",
                {"publication_id": old, "superseded_by": self.current_publications[-1],
                 "reason": "A corrected edition was published."},
                role="publisher",
            )  # fmt: skip

    # consultations --------------------------------------------------------------------------

    def consultation_step(self) -> None:
        c = self.consultation
        if c is None:
            quota_left = int(self.n * CONSULTATION_SHARE) - self.counts.get(
                "record_consultation_response", 0
            )
            quota = min(max(quota_left, 1), self.rng.randint(1_000, 6_000))
            topic = self.rng.choice(TOPICS)
            questions = []
            for k in range(self.rng.randint(3, 6)):
                asked = self.sentence()
                text = f"Do you agree that {asked[0].lower()}{asked[1:-1]}?"
                questions.append({"id": f"q{k + 1}", "text": text})
            c = _Consultation(self.uuid(), [q["id"] for q in questions], quota)
            self.emit(
                "open_consultation",
                {
                    "id": c.id,
                    "process_id": self.process,
                    "title": f"Consultation on {topic}",
                    "questions": questions,
                    "documents": [],
                    "closes_at": self.iso(self.now + self.step * (quota * 3) + timedelta(30)),
                },
            )
            self.consultation = c
            self.consultations += 1
            return
        if c.responses < c.quota:
            self.respond(c)
        elif not c.closed:
            self.emit(
                "close_consultation",
                {"consultation_id": c.id, "note": f"Closed with {c.responses} responses."},
            )
            c.closed = True
        elif not c.reviewed:
            c.recommendations = [f"R{k + 1}" for k in range(self.rng.randint(2, 5))]
            self.emit(
                "record_consultation_review",
                {
                    "consultation_id": c.id,
                    "reviewer_org": self.rng.choice(self.orgs),
                    "findings": [self.sentence() for _ in range(self.rng.randint(2, 4))],
                    "recommendations": [
                        {"id": r, "text": self.sentence()} for r in c.recommendations
                    ],
                },
            )
            c.reviewed = True
        elif c.answered < len(c.recommendations):
            self.emit(
                "record_government_response",
                {
                    "consultation_id": c.id,
                    "recommendation_id": c.recommendations[c.answered],
                    "response": self.rng.choice(("accepted", "partly", "rejected")),
                    "text": self.sentence(),
                },
            )
            c.answered += 1
        else:
            self.consultation = None

    def respond(self, c: _Consultation) -> None:
        asked = self.rng.sample(c.questions, self.rng.randint(1, len(c.questions)))
        answers = [
            {"question_id": q, "text": f"{self.rng.choice(OPENERS)} {self.paragraph(1, 3)}"}
            for q in sorted(asked)
        ]
        args: dict[str, Any] = {"consultation_id": c.id, "answers": answers}
        if self.rng.random() < 0.2:
            args["org_id"] = self.rng.choice(self.orgs)
        else:
            name, handle = self.person()
            person: dict[str, str] = {"person_id": self.uuid(), "name": name}
            if self.rng.random() < 0.7:
                person["email"] = f"{handle}@example.org"
            args["individual"] = person
            args["consent_to_publish"] = self.rng.random() < 0.6
        self.emit("record_consultation_response", args)
        c.responses += 1

    # the process ----------------------------------------------------------------------------

    def process_step(self) -> None:
        r = self.rng
        # organisations keep joining: ~1% of all entries are registrations
        if (
            self.counts.get("register_organisation", 0) < self.n * ORG_SHARE * (self.lines / self.n)
            and r.random() < 0.5
        ):
            self.new_organisation()
            return
        if self.phase < len(PHASES) and self.lines > self.n * self.phase / (len(PHASES) + 1):
            self.next_phase()
            return
        unheld = [m for m in self.meetings[-10:] if not m.held]
        pending = [m for m in self.held[-10:] if m.outcomes < 2 or not m.minutes]
        choices: list[tuple[float, Callable[[], None]]] = [
            (3, self.schedule_meeting),
            (4 if self.open_proposals else 8, self.table_proposal),
        ]
        if unheld:
            choices.append((4, lambda: self.hold_meeting(unheld[0])))
        if pending:
            m = r.choice(pending)
            if not m.minutes and (m.outcomes >= 2 or r.random() < 0.3):
                choices.append((3, lambda: self.agree_minutes(m)))
            elif m.outcomes < 2:
                choices.append((3, lambda: self.meeting_outcome(m)))
            else:
                choices.append((3, lambda: self.agree_minutes(m)))
        if self.open_proposals:
            p = r.choice(self.open_proposals[-40:])
            undecided = [a for a, v in p.amendments.items() if v["decision"] in (None,)]
            ready = [
                a for a, v in p.amendments.items()
                if v["decision"] == "agreed" and v["in"] is None and v["base"] == p.version
            ]  # fmt: skip
            if len(undecided) < 4:
                choices.append((10, lambda: self.propose_amendment(p)))
            if undecided:
                choices.append((10, lambda: self.decide_amendment(p, undecided[0])))
            if ready or r.random() < 0.1:
                choices.append((5, lambda: self.revise(p)))
            if p.version > 1 or len(p.amendments) > 3:
                choices.append((2, lambda: self.change_status(p)))
        choices.append((1.5, self.publish))
        if len(self.current_publications) > 3:
            choices.append((0.3, self.retire_publication))
        weights = [w for w, _ in choices]
        r.choices([act for _, act in choices], weights)[0]()

    def run(self) -> None:
        try:
            self.set_up()
            while self.left() > 0:
                busy = self.consultation is not None and (
                    self.consultation.responses >= self.consultation.quota
                )
                if busy or self.rng.random() < CONSULTATION_SHARE:
                    self.consultation_step()
                else:
                    self.process_step()
        except _FullError:
            pass


class _FullError(Exception):
    """The file has its N lines."""


def generate(
    out: IO[bytes], entries: int, *, seed: int = 1, start: datetime | None = None
) -> dict[str, int]:
    """Write ``entries`` command lines to ``out``; return how many of each command."""
    writer = _Writer(out, entries, seed, start or datetime(2030, 1, 7, 9, tzinfo=UTC))
    writer.run()
    return dict(sorted(writer.counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000, help="lines (= entries) to write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2030-01-07", help="the timeline's first day")
    parser.add_argument("--out", default="-", help="file to write (default: stdout)")
    args = parser.parse_args()
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    if args.out == "-":
        counts = generate(sys.stdout.buffer, args.entries, seed=args.seed, start=start)
    else:
        with Path(args.out).open("wb", buffering=1 << 20) as handle:
            counts = generate(handle, args.entries, seed=args.seed, start=start)
    print(orjson.dumps(counts).decode(), file=sys.stderr)


if __name__ == "__main__":
    main()
