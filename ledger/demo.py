"""A worked example: the 2014-2016 UK data-sharing open policy process, recorded end to end.

The story is a *model*, told in our own words: between 2014 and 2016 officials, local
government, civil-society and privacy groups, academics and an external advisory group
worked in the open on three strands of data-sharing policy (tailored public services;
fraud, error and debt; research and statistics). The proposals went to public consultation
in 2016 and fed Part 5 of the Digital Economy Act 2017. Organisations other than
government departments and statutory bodies are invented, the positions given to every
organisation are illustrative, and no text here is taken from any government document.

Everything is recorded through :class:`~ledger.application.LedgerApplication` commands,
with deterministic ids (``uuid5``) and a simulated clock, so recording the demo twice into
two empty ledgers gives byte-identical logs.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from ledger.actors import Actor
from ledger.application import LedgerApplication, Receipt
from ledger.storage.side import SideStore

__all__ = ["DEMO_NAMESPACE", "DemoClock", "DemoSummary", "demo_id", "record_demo"]

DEMO_NAMESPACE = UUID("5b0c4d3e-8f1a-5e27-9c64-2a7d1e9b3f40")
"""Namespace of every id the demo creates (``uuid5(DEMO_NAMESPACE, "kind/slug")``)."""

MARKDOWN = "text/markdown"
START = datetime(2014, 5, 1, 9, 0, tzinfo=UTC)
LEGISLATION = "Digital Economy Act 2017"

TPS = "tailored-public-services"
FED = "fraud-error-debt"
RS = "research-statistics"
EAG = "external-advisory-group"


def demo_id(kind: str, slug: str) -> str:
    """The deterministic id of a demo aggregate, e.g. ``demo_id("proposal", "gateway")``."""
    return str(uuid5(DEMO_NAMESPACE, f"{kind}/{slug}"))


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`record_demo` recorded."""

    entries: int
    process_id: str
    organisations: int
    meetings: int
    proposals: int
    amendments: int
    publications: int
    documents: dict[str, bytes]  # sha256 hex -> exact document bytes published or minuted


class DemoClock:
    """Injectable clock: returns the current simulated time (timezone-aware UTC) and advances
    a few minutes on every call so entries get increasing times."""

    _STEPS_MINUTES = (3, 4, 2, 5, 3, 6, 4)

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the demo clock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._calls = 0

    def __call__(self) -> datetime:
        now = self._now
        step = self._STEPS_MINUTES[self._calls % len(self._STEPS_MINUTES)]
        self._calls += 1
        self._now = now + timedelta(minutes=step)
        return now

    @property
    def now(self) -> datetime:
        """The time the next call will return."""
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump forward to ``moment``; a moment in the simulated past is ignored."""
        if moment.tzinfo is None:
            raise ValueError("the demo clock needs timezone-aware moments")
        self._now = max(self._now, moment.astimezone(UTC))


def _day(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _replace(section_id: str, text: str, heading: str | None = None) -> dict[str, str]:
    change = {"op": "replace", "section_id": section_id, "text": text}
    if heading is not None:
        change["heading"] = heading
    return change


def _insert(section_id: str, heading: str, text: str, after: str) -> dict[str, str]:
    return {
        "op": "insert",
        "section_id": section_id,
        "heading": heading,
        "text": text,
        "after": after,
    }


def _section(section_id: str, heading: str, text: str) -> dict[str, str]:
    return {"id": section_id, "heading": heading, "text": text}


# Who took part ---------------------------------------------------------------------------

ORGANISATIONS: tuple[tuple[str, str, str], ...] = (
    ("cabinet-office", "Cabinet Office (data-sharing secretariat)", "department"),
    ("hmrc", "HM Revenue and Customs", "department"),
    ("dwp", "Department for Work and Pensions", "department"),
    ("dclg", "Department for Communities and Local Government", "department"),
    ("dfe", "Department for Education", "department"),
    ("ons", "Office for National Statistics", "public_body"),
    ("uksa", "UK Statistics Authority", "public_body"),
    ("ico", "Information Commissioner's Office", "public_body"),
    ("lga", "Local Government Association", "local_authority"),
    ("northshire", "Northshire County Council", "local_authority"),
    ("riverside", "Riverside Borough Council", "local_authority"),
    ("open-policy-network", "Open Policy Practice Network", "civil_society"),
    ("privacy-forum", "Privacy Rights Forum", "civil_society"),
    ("digital-liberties", "Digital Liberties Trust", "civil_society"),
    ("health-data-group", "Health Data Confidentiality Group", "civil_society"),
    ("debt-advice", "Debt Advice Alliance", "civil_society"),
    ("research-consortium", "Administrative Data Research Consortium", "academic"),
    ("data-ethics-institute", "Institute for Public Data Ethics", "academic"),
    ("contractors", "Association of Public Service Providers", "business"),
    ("advisory-group", "External Advisory Group on Data Sharing", "advisory_group"),
)

MEMBERSHIPS: dict[str, tuple[tuple[str, str], ...]] = {
    TPS: (
        ("cabinet-office", "chair"),
        ("dclg", "member"),
        ("dwp", "member"),
        ("dfe", "member"),
        ("lga", "member"),
        ("northshire", "member"),
        ("riverside", "member"),
        ("privacy-forum", "member"),
        ("digital-liberties", "member"),
        ("open-policy-network", "facilitator"),
        ("contractors", "member"),
        ("ico", "observer"),
    ),
    FED: (
        ("cabinet-office", "chair"),
        ("hmrc", "member"),
        ("dwp", "member"),
        ("lga", "member"),
        ("riverside", "member"),
        ("debt-advice", "member"),
        ("privacy-forum", "member"),
        ("digital-liberties", "member"),
        ("ico", "observer"),
    ),
    RS: (
        ("ons", "chair"),
        ("uksa", "member"),
        ("research-consortium", "member"),
        ("data-ethics-institute", "member"),
        ("health-data-group", "member"),
        ("privacy-forum", "member"),
        ("ico", "observer"),
    ),
    EAG: (
        ("advisory-group", "body"),
        ("open-policy-network", "co-chair"),
        ("cabinet-office", "secretariat"),
        ("privacy-forum", "member"),
        ("digital-liberties", "member"),
        ("health-data-group", "member"),
        ("debt-advice", "member"),
        ("data-ethics-institute", "member"),
        ("lga", "member"),
        ("ico", "observer"),
    ),
}

DISCLOSURE_WORDS = {
    "on_record": "On the record: views may be attributed to organisations.",
    "non_attributed": "Not attributed: views are reported without naming who held them.",
    "chatham_house": "Chatham House Rule: neither the identity nor the affiliation of "
    "speakers is reported.",
    "private": "Private: not for publication.",
}


@dataclass
class _Meeting:
    key: str
    id: str
    title: str
    starts: datetime
    disclosure: str
    convenor: str
    strand: str | None
    attending: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)


def _demo_salts() -> Callable[[], bytes]:
    """Repeatable salts, so the demo's log is byte-identical each time it is recorded.

    Only for the demo, whose data is public anyway: predictable salts hide nothing.
    """
    count = itertools.count()

    def salt() -> bytes:
        return hashlib.sha256(b"open-policy-ledger demo salt %d" % next(count)).digest()

    return salt


class _Story:
    """The recording helpers and the chapters of the story, in order."""

    def __init__(self, app: LedgerApplication, progress: Callable[[str], None] | None) -> None:
        self.app = app
        self.clock = DemoClock(START)
        app.clock = self.clock
        app.salts = _demo_salts()
        self.progress = progress
        self.process_id = demo_id("process", "data-sharing-open-policy")
        self.orgs = {slug: demo_id("organisation", slug) for slug, _, _ in ORGANISATIONS}
        self.org_names = {slug: name for slug, name, _ in ORGANISATIONS}
        self.proposals: dict[str, str] = {}
        self.publications: dict[str, str] = {}
        self.meetings: dict[str, _Meeting] = {}
        self.documents: dict[str, bytes] = {}
        self.side = SideStore(app.settings)
        self.entries = 0
        self.amendment_count = 0
        secretariat = self.orgs["cabinet-office"]
        self.admin = Actor("ledger-admin", "admin", secretariat)
        self.secretariat = Actor("cabinet-office-secretariat", "recorder", secretariat)
        self.stats_secretary = Actor("ons-strand-secretary", "recorder", self.orgs["ons"])
        self.publisher = Actor("cabinet-office-publishing", "publisher", secretariat)

    # recording helpers -------------------------------------------------------------------

    def chapter(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    def at(self, moment: datetime) -> None:
        self.clock.set(moment)

    def _count(self, receipt: Receipt) -> Receipt:
        self.entries += 1
        return receipt

    def recorder_for(self, strand: str | None) -> Actor:
        return self.stats_secretary if strand == RS else self.secretariat

    def store(self, document: bytes, media_type: str = MARKDOWN) -> tuple[str, int]:
        """Keep the document's bytes in the ledger's document store (as an upload does)."""
        sha = hashlib.sha256(document).hexdigest()
        self.documents[sha] = document
        self.side.put_document(sha, media_type, document)
        return sha, len(document)

    def phase(self, when: datetime, phase_id: str, title: str, summary: str) -> None:
        self.at(when)
        self._count(
            self.app.start_phase(
                self.process_id,
                phase_id=phase_id,
                title=title,
                summary=summary,
                actor=self.admin,
            )
        )

    def schedule(
        self,
        key: str,
        *,
        title: str,
        starts: datetime,
        convenor: str,
        strand: str | None = None,
        disclosure: str = "on_record",
    ) -> _Meeting:
        self.at(starts.replace(hour=9, minute=0) - timedelta(days=14))
        meeting = _Meeting(
            key, demo_id("meeting", key), title, starts, disclosure, convenor, strand
        )
        self._count(
            self.app.schedule_meeting(
                process_id=self.process_id,
                strand_id=strand,
                title=title,
                starts_at=_iso(starts),
                disclosure=disclosure,
                convenor_org=self.orgs[convenor],
                actor=self.recorder_for(strand),
                id=meeting.id,
            )
        )
        self.meetings[key] = meeting
        return meeting

    def hold(self, meeting: _Meeting, attending: Sequence[str]) -> None:
        self.at(meeting.starts + timedelta(hours=3))
        meeting.attending = list(attending)
        self._count(
            self.app.record_meeting_held(
                meeting.id,
                attending_orgs=[self.orgs[o] for o in attending],
                held_at=_iso(meeting.starts),
                actor=self.recorder_for(meeting.strand),
            )
        )

    def item(
        self,
        kind: str,
        text: str,
        *,
        consensus: str | None = None,
        proposal: str | None = None,
        amendment: str | None = None,
        orgs: Sequence[str] = (),
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {"kind": kind, "text": text}
        if consensus is not None:
            entry["consensus"] = consensus
        if proposal is not None:
            entry["proposal_id"] = self.proposals[proposal]
        if amendment is not None:
            entry["amendment_id"] = amendment
        if orgs:
            entry["orgs"] = [self.orgs[o] for o in orgs]
        return entry

    def outcome(self, meeting: _Meeting, items: list[dict[str, Any]]) -> Receipt:
        meeting.items.extend(items)
        return self._count(
            self.app.record_meeting_outcome(
                meeting.id, items=items, actor=self.recorder_for(meeting.strand)
            )
        )

    def minutes(self, meeting: _Meeting, agreed_on: datetime, notes: Sequence[str] = ()) -> None:
        document = self.minutes_document(meeting, notes)
        sha, size = self.store(document)
        self.at(agreed_on)
        self._count(
            self.app.agree_minutes(
                meeting.id,
                sha256=sha,
                size=size,
                media_type=MARKDOWN,
                actor=self.recorder_for(meeting.strand),
            )
        )

    def minutes_document(self, meeting: _Meeting, notes: Sequence[str]) -> bytes:
        lines = [
            f"# Minutes: {meeting.title}",
            "",
            f"- Date: {meeting.starts:%d %B %Y}, {meeting.starts:%H:%M} UTC",
            f"- Convened by: {self.org_names[meeting.convenor]}",
            f"- Disclosure: {DISCLOSURE_WORDS[meeting.disclosure]}",
        ]
        if meeting.disclosure == "chatham_house":
            lines.append(f"- Participants: {len(meeting.attending)} organisations")
        else:
            lines.append("- Attending: " + "; ".join(self.org_names[o] for o in meeting.attending))
        lines += ["", "## Outcomes", ""]
        for number, entry in enumerate(meeting.items, start=1):
            state = f" ({entry['consensus'].replace('_', ' ')})" if "consensus" in entry else ""
            lines.append(f"{number}. {entry['kind'].capitalize()}{state}: {entry['text']}")
        if notes:
            lines += ["", "## Notes", ""]
            lines += [f"- {note}" for note in notes]
        lines += ["", "Minutes agreed by the group and recorded in the Open Policy Ledger.", ""]
        return "\n".join(lines).encode("utf-8")

    def table(
        self,
        key: str,
        *,
        strand: str,
        title: str,
        sections: list[dict[str, str]],
        sponsor: str,
        meeting: _Meeting | None,
    ) -> None:
        proposal_id = demo_id("proposal", key)
        self._count(
            self.app.table_proposal(
                process_id=self.process_id,
                strand_id=strand,
                title=title,
                sections=sections,
                sponsor_org=self.orgs[sponsor],
                meeting_id=meeting.id if meeting else None,
                actor=self.recorder_for(strand),
                id=proposal_id,
            )
        )
        self.proposals[key] = proposal_id

    def text_version(self, key: str) -> int:
        return self.app.get_proposal(self.proposals[key]).text_version

    def amend(
        self,
        key: str,
        *,
        changes: list[dict[str, str]],
        rationale: str,
        proposer: str | None,
        meeting: _Meeting | None,
    ) -> str:
        """``proposer`` None: raised at a meeting that attributes no one."""
        strand = self.app.get_proposal(self.proposals[key]).strand_id
        receipt = self._count(
            self.app.propose_amendment(
                self.proposals[key],
                base_version=self.text_version(key),
                changes=changes,
                rationale=rationale,
                proposer_org=self.orgs[proposer] if proposer is not None else None,
                meeting_id=meeting.id if meeting else None,
                actor=self.recorder_for(strand),
            )
        )
        self.amendment_count += 1
        return str(receipt.fields["data"]["amendment_id"])

    def decide(
        self,
        key: str,
        amendment: str,
        *,
        decision: str,
        consensus: str,
        meeting: _Meeting | None,
        note: str = "",
        dissent: Sequence[str] = (),
    ) -> None:
        strand = self.app.get_proposal(self.proposals[key]).strand_id
        self._count(
            self.app.decide_amendment(
                self.proposals[key],
                amendment_id=amendment,
                decision=decision,
                consensus=consensus,
                dissenting_orgs=[self.orgs[o] for o in dissent],
                meeting_id=meeting.id if meeting else None,
                note=note,
                actor=self.recorder_for(strand),
            )
        )

    def revise(
        self, key: str, amendments: Sequence[str], *, note: str, meeting: _Meeting | None
    ) -> None:
        strand = self.app.get_proposal(self.proposals[key]).strand_id
        self._count(
            self.app.revise_proposal(
                self.proposals[key],
                base_version=self.text_version(key),
                amendment_ids=list(amendments),
                note=note,
                meeting_id=meeting.id if meeting else None,
                actor=self.recorder_for(strand),
            )
        )

    def status(
        self, key: str, new_status: str, reason: str, superseded_by: str | None = None
    ) -> None:
        self._count(
            self.app.change_proposal_status(
                self.proposals[key],
                new_status=new_status,
                reason=reason,
                superseded_by=self.proposals[superseded_by] if superseded_by else None,
                actor=self.secretariat,
            )
        )

    def link(self, key: str, provision: str, note: str) -> None:
        self._count(
            self.app.link_legislative_outcome(
                self.proposals[key],
                legislation=LEGISLATION,
                provision=provision,
                note=note,
                actor=self.secretariat,
            )
        )

    def publish(
        self,
        key: str,
        *,
        when: datetime,
        kind: str,
        title: str,
        body: Sequence[str],
        proposals: Sequence[str] = (),
        meetings: Sequence[str] = (),
    ) -> str:
        self.at(when)
        text = "\n".join([f"# {title}", "", f"Published {when:%d %B %Y}.", "", *body, ""])
        sha, size = self.store(text.encode("utf-8"))
        publication_id = demo_id("publication", key)
        self._count(
            self.app.publish(
                process_id=self.process_id,
                pub_kind=kind,
                title=title,
                sha256=sha,
                size=size,
                media_type=MARKDOWN,
                proposal_ids=[self.proposals[p] for p in proposals],
                meeting_ids=[self.meetings[m].id for m in meetings],
                actor=self.publisher,
                id=publication_id,
            )
        )
        self.publications[key] = publication_id
        return publication_id

    # chapter 1: setting up, May-September 2014 ---------------------------------------------

    def set_up(self) -> None:
        self.chapter("Chapter 1 (May 2014): starting the process, its strands and members")
        self._count(
            self.app.start_process(
                title="Data sharing open policy process",
                summary=(
                    "An open policy-making process on how public bodies may share personal "
                    "data with each other: where new legal powers are needed, for what "
                    "purposes and with which safeguards."
                ),
                actor=self.admin,
                id=self.process_id,
            )
        )
        self._count(
            self.app.start_phase(
                self.process_id,
                phase_id="scoping",
                title="Scoping",
                summary="Is there a case for new data-sharing powers, and for what?",
                actor=self.admin,
            )
        )
        strands = (
            (
                TPS,
                "Tailored public services",
                "Sharing data between public bodies to offer better-joined-up help to people "
                "and households.",
            ),
            (
                FED,
                "Fraud, error and debt",
                "Sharing data to reduce fraud and error against the public sector and to "
                "manage debt owed to it fairly.",
            ),
            (
                RS,
                "Research and statistics",
                "Safe access to de-identified administrative data for research and official "
                "statistics.",
            ),
        )
        for strand_id, title, summary in strands:
            self._count(
                self.app.add_strand(
                    self.process_id,
                    strand_id=strand_id,
                    title=title,
                    summary=summary,
                    actor=self.admin,
                )
            )
        for slug, name, kind in ORGANISATIONS:
            self._count(
                self.app.register_organisation(
                    name=name, org_kind=kind, actor=self.admin, id=self.orgs[slug]
                )
            )

    def add_members(self, group: str) -> None:
        for slug, role in MEMBERSHIPS[group]:
            self._count(
                self.app.add_membership(
                    self.orgs[slug],
                    process_id=self.process_id,
                    group=group,
                    role=role,
                    actor=self.admin,
                )
            )

    # chapter 2: scoping, June-July 2014 ----------------------------------------------------

    def scoping(self) -> None:
        self.chapter("Chapter 2 (June-July 2014): scoping workshop and civil society roundtable")
        m1 = self.schedule(
            "scoping-workshop",
            title="Scoping workshop: is there a case for change?",
            starts=_day(2014, 6, 10),
            convenor="cabinet-office",
        )
        self.hold(
            m1,
            [
                "cabinet-office",
                "hmrc",
                "dwp",
                "dclg",
                "ons",
                "ico",
                "lga",
                "open-policy-network",
                "privacy-forum",
                "digital-liberties",
                "research-consortium",
            ],
        )
        self.outcome(
            m1,
            [
                self.item(
                    "agreement",
                    "Work in three strands: tailored public services; fraud, "
                    "error and debt; research and statistics.",
                    consensus="banked",
                ),
                self.item(
                    "disagreement",
                    "Whether fraud and debt belong in the same process as "
                    "service improvement; civil society groups fear the first will "
                    "dominate.",
                    consensus="still_to_discuss",
                    orgs=["privacy-forum", "digital-liberties"],
                ),
                self.item(
                    "action",
                    "Secretariat to publish a note of the workshop and an open "
                    "invitation to join the strands.",
                    orgs=["cabinet-office"],
                ),
            ],
        )
        self.minutes(
            m1,
            _day(2014, 6, 20, 11),
            [
                "Participants asked for every paper to be published and for strand meetings to "
                "be minuted.",
            ],
        )
        self.publish(
            "scoping-note",
            when=_day(2014, 6, 24),
            kind="meeting_note",
            title="Scoping workshop: note of discussion",
            meetings=["scoping-workshop"],
            body=[
                "Officials set out where public bodies say the law on sharing data is unclear "
                "or missing. Participants agreed to work in three strands and to publish "
                "their papers as they go.",
                "",
                "Open question: should fraud and debt be handled in the same process as "
                "better-targeted services? To be discussed in the strands.",
            ],
        )

        m2 = self.schedule(
            "civil-society-roundtable",
            title="Civil society roundtable on scope and safeguards",
            starts=_day(2014, 7, 15, 14),
            convenor="open-policy-network",
            disclosure="chatham_house",
        )
        self.hold(
            m2,
            [
                "open-policy-network",
                "privacy-forum",
                "digital-liberties",
                "health-data-group",
                "debt-advice",
                "data-ethics-institute",
                "cabinet-office",
            ],
        )
        self.outcome(
            m2,
            [
                self.item(
                    "option",
                    "Option A: one broad gateway with strong safeguards. Option "
                    "B: narrow powers for named purposes, each with its own code.",
                    consensus="options",
                ),
                self.item(
                    "agreement",
                    "Any new power needs a public register of the sharing it allows.",
                    consensus="banked",
                ),
                self.item(
                    "action",
                    "Facilitator to draft terms of reference for an external advisory group.",
                ),
            ],
        )
        self.minutes(m2, _day(2014, 7, 25, 15))
        self.publish(
            "roundtable-summary",
            when=_day(2014, 7, 29),
            kind="meeting_note",
            title="Civil society roundtable: summary under the Chatham House Rule",
            meetings=["civil-society-roundtable"],
            body=[
                "Participants weighed one broad gateway against several narrow powers. There "
                "was strong support for a public register of sharing arrangements and for an "
                "external advisory group to keep the process honest.",
            ],
        )

    # chapter 3: working groups, autumn 2014 ------------------------------------------------

    def working_groups(self) -> None:
        self.chapter("Chapter 3 (September-December 2014): strand working groups table proposals")
        self.phase(
            _day(2014, 9, 15, 9),
            "working-groups",
            "Working groups",
            "Strand working groups develop proposals in the open.",
        )
        for group in (TPS, FED, RS, EAG):
            self.add_members(group)

        # Tailored public services: the gateway is tabled.
        m3 = self.schedule(
            "tps-wg-1",
            title="Tailored public services working group 1",
            starts=_day(2014, 10, 8),
            convenor="cabinet-office",
            strand=TPS,
        )
        self.hold(
            m3,
            [
                "cabinet-office",
                "dclg",
                "dwp",
                "lga",
                "northshire",
                "riverside",
                "privacy-forum",
                "digital-liberties",
                "open-policy-network",
                "ico",
            ],
        )
        self.table(
            "gateway",
            strand=TPS,
            sponsor="cabinet-office",
            meeting=m3,
            title="A gateway for sharing data to tailor public services",
            sections=[
                _section(
                    "purpose",
                    "Purpose",
                    "Let named public bodies share personal data with each other to "
                    "improve or target services for people and households, instead of "
                    "needing a new legal basis for every arrangement.",
                ),
                _section(
                    "objectives",
                    "Objectives",
                    "Sharing is allowed for objectives that concern the improvement of "
                    "public services.",
                ),
                _section(
                    "bodies",
                    "Who may share",
                    "Central government departments, their agencies and local "
                    "authorities in England.",
                ),
                _section(
                    "safeguards",
                    "Safeguards",
                    "Data may be used only for the objective it was shared for and may "
                    "not be passed on for anything else.",
                ),
                _section(
                    "transparency",
                    "Transparency",
                    "Departments should say publicly which arrangements they run under "
                    "the gateway.",
                ),
            ],
        )
        a1 = self.amend(
            "gateway",
            proposer="privacy-forum",
            meeting=m3,
            rationale="An open-ended purpose would allow sharing for anything called a public "
            "service.",
            changes=[
                _replace(
                    "objectives",
                    "Each objective must be set out in regulations that Parliament "
                    "approves, must aim at the wellbeing of people or households, "
                    "and must be tied to a specific public service.",
                )
            ],
        )
        a2 = self.amend(
            "gateway",
            proposer="northshire",
            meeting=m3,
            rationale="Much local support is delivered by contracted providers and charities; "
            "leaving them out breaks the chain of help around a family.",
            changes=[
                _replace(
                    "bodies",
                    "Bodies named in a schedule, including departments, local "
                    "authorities and organisations delivering public services under "
                    "contract; the schedule can be changed only by regulations.",
                )
            ],
        )
        self.decide(
            "gateway",
            a1,
            decision="agreed",
            consensus="banked",
            meeting=m3,
            note="Agreed without objection.",
        )
        self.decide(
            "gateway",
            a2,
            decision="no_decision",
            consensus="still_to_discuss",
            meeting=m3,
            note="Concern about private contractors; to return in January.",
        )
        self.status("gateway", "discussion", "Tabled at the first working group.")
        self.outcome(
            m3,
            [
                self.item(
                    "decision",
                    "Amendment A1 agreed: objectives to be set in regulations.",
                    consensus="banked",
                    proposal="gateway",
                    amendment=a1,
                ),
                self.item(
                    "disagreement",
                    "Whether contracted providers may share under the gateway.",
                    consensus="still_to_discuss",
                    proposal="gateway",
                    amendment=a2,
                    orgs=["northshire", "digital-liberties"],
                ),
                self.item(
                    "action",
                    "Local Government Association to collect examples of "
                    "services that depend on contracted providers.",
                    orgs=["lga"],
                ),
            ],
        )
        self.minutes(m3, _day(2014, 10, 17, 11))

        # Fraud, error and debt: the pilot power, under non-attribution.
        m4 = self.schedule(
            "fed-wg-1",
            title="Fraud, error and debt working group 1",
            starts=_day(2014, 11, 12),
            convenor="cabinet-office",
            strand=FED,
            disclosure="non_attributed",
        )
        self.hold(
            m4,
            [
                "cabinet-office",
                "hmrc",
                "dwp",
                "lga",
                "riverside",
                "debt-advice",
                "privacy-forum",
                "digital-liberties",
                "ico",
            ],
        )
        # The meeting attributes no one: the secretariat tables the proposal on the record
        # (not "at" the meeting, which would attribute it), and the group's amendments are
        # recorded as raised there, by no one.
        self.table(
            "fraud-debt-pilots",
            strand=FED,
            sponsor="cabinet-office",
            meeting=None,
            title="A time-limited pilot power to share data on fraud and debt",
            sections=[
                _section(
                    "purpose",
                    "Purpose",
                    "Let public bodies share data to find and reduce fraud against the "
                    "public sector and to manage debt owed to it, through tested pilots "
                    "rather than a blanket power.",
                ),
                _section(
                    "scope",
                    "Scope",
                    "Debts owed to, and fraud against, central departments and local authorities.",
                ),
                _section(
                    "pilots",
                    "Pilots",
                    "Each use starts as a time-limited pilot with a published business "
                    "case, measures of success and an end date.",
                ),
                _section(
                    "review",
                    "Review",
                    "A minister reviews how the power has been used and reports to Parliament.",
                ),
                _section(
                    "fairness",
                    "Fairness",
                    "Debt data is used to understand a person's whole situation, "
                    "including what they can afford, not only to recover money.",
                ),
            ],
        )
        b1 = self.amend(
            "fraud-debt-pilots",
            proposer=None,
            meeting=m4,
            rationale="Raised in the group: a review alone does "
            "not stop the power outliving its evidence.",
            changes=[
                _replace(
                    "review",
                    "The power ends three years after it starts unless Parliament "
                    "votes to renew it, informed by an independent review of the "
                    "pilots.",
                    heading="Review and sunset",
                )
            ],
        )
        b2 = self.amend(
            "fraud-debt-pilots",
            proposer=None,
            meeting=m4,
            rationale="Raised in the group: tax debts and "
            "benefit overpayments are the largest debts owed to government.",
            changes=[
                _replace(
                    "scope",
                    "Debts owed to, and fraud against, central departments and "
                    "local authorities, including tax debts and overpaid benefits.",
                )
            ],
        )
        b3 = self.amend(
            "fraud-debt-pilots",
            proposer=None,
            meeting=m4,
            rationale="Raised in the group: pilots should help "
            "people in difficulty before anyone chases them.",
            changes=[
                _insert(
                    "vulnerability",
                    "People in vulnerable circumstances",
                    "Pilots must spot people who are struggling and point them to "
                    "free debt advice before enforcement is considered.",
                    after="fairness",
                )
            ],
        )
        self.decide("fraud-debt-pilots", b1, decision="agreed", consensus="banked", meeting=m4)
        self.decide(
            "fraud-debt-pilots",
            b2,
            decision="no_decision",
            consensus="options",
            meeting=m4,
            note="Two options to be written up: include tax and benefit "
            "debts now, or only after the first pilots report.",
        )
        self.decide("fraud-debt-pilots", b3, decision="agreed", consensus="banked", meeting=m4)
        self.status("fraud-debt-pilots", "discussion", "Tabled at the first working group.")
        self.outcome(
            m4,
            [
                self.item(
                    "decision",
                    "A sunset clause is added to the pilot power.",
                    consensus="banked",
                    proposal="fraud-debt-pilots",
                    amendment=b1,
                ),
                self.item(
                    "option",
                    "Scope: include tax and benefit debts now, or after the first pilots.",
                    consensus="options",
                    proposal="fraud-debt-pilots",
                    amendment=b2,
                ),
                self.item(
                    "decision",
                    "Pilots must refer people in difficulty to free debt advice.",
                    consensus="banked",
                    proposal="fraud-debt-pilots",
                    amendment=b3,
                ),
            ],
        )
        self.minutes(m4, _day(2014, 11, 21, 11))

        # Research and statistics is convened before the fraud note goes out.
        m5 = self.schedule(
            "rs-wg-1",
            title="Research and statistics working group 1",
            starts=_day(2014, 12, 3, 14),
            convenor="ons",
            strand=RS,
        )
        withdrawn = self.publish(
            "fed-wg-1-note",
            when=_day(2014, 11, 26),
            kind="meeting_note",
            title="Fraud, error and debt working group 1: note",
            meetings=["fed-wg-1"],
            proposals=["fraud-debt-pilots"],
            body=[
                "The group discussed the pilot power. HM Revenue and Customs argued for "
                "including tax debts at once; the Privacy Rights Forum argued for waiting.",
            ],
        )
        self.at(_day(2014, 12, 2, 9))
        self._count(
            self.app.withdraw_publication(
                withdrawn,
                actor=self.publisher,
                reason="The note attributed views to named organisations although the "
                "meeting was held on a non-attributed basis; a re-issued note follows.",
            )
        )
        self.publish(
            "fed-wg-1-note-reissued",
            when=_day(2014, 12, 2, 14),
            kind="meeting_note",
            title="Fraud, error and debt working group 1: note (re-issued)",
            meetings=["fed-wg-1"],
            proposals=["fraud-debt-pilots"],
            body=[
                "The group discussed the pilot power. Some members argued for including tax "
                "debts at once; others argued for waiting until the first pilots report.",
                "",
                "This note replaces an earlier version that wrongly attributed views.",
            ],
        )

        # Research and statistics: accredited access.
        self.hold(
            m5,
            [
                "ons",
                "uksa",
                "research-consortium",
                "data-ethics-institute",
                "health-data-group",
                "privacy-forum",
                "ico",
            ],
        )
        self.table(
            "research-access",
            strand=RS,
            sponsor="ons",
            meeting=m5,
            title="Access to de-identified data for research through accredited processors",
            sections=[
                _section(
                    "purpose",
                    "Purpose",
                    "Let public bodies share de-identified data with accredited "
                    "researchers for research in the public interest.",
                ),
                _section(
                    "deidentification",
                    "De-identification",
                    "Data is de-identified before researchers see it, so that no person "
                    "can be identified from it.",
                ),
                _section(
                    "processors",
                    "Accredited processors",
                    "Linking and de-identification are done by accredited processors "
                    "who keep identifiers apart from research data.",
                ),
                _section(
                    "researchers",
                    "Accredited researchers",
                    "Researchers and their projects are accredited by the statistics authority.",
                ),
                _section(
                    "register",
                    "Register",
                    "The statistics authority keeps a register of accredited "
                    "researchers and projects.",
                ),
            ],
        )
        self.amend(
            "research-access",
            proposer="research-consortium",
            meeting=m5,
            rationale="Accreditation should test the purpose of the research, not only the "
            "researcher.",
            changes=[
                _replace(
                    "researchers",
                    "Researchers and projects are accredited; a project is "
                    "accredited only if an independent panel finds it ethical and "
                    "in the public interest.",
                )
            ],
        )
        self.amend(
            "research-access",
            proposer="health-data-group",
            meeting=m5,
            rationale="Health data already has its own research routes and carries a higher "
            "expectation of confidentiality.",
            changes=[
                _insert(
                    "exclusions",
                    "Exclusions",
                    "Health and adult social care data are outside this power.",
                    after="register",
                )
            ],
        )
        self.amend(
            "research-access",
            proposer="ons",
            meeting=m5,
            rationale="Re-linking the same sources for every project is slow and costly.",
            changes=[
                _replace(
                    "processors",
                    "Accredited processors may keep linked, de-identified datasets "
                    "for re-use by later accredited projects.",
                )
            ],
        )
        self.status("research-access", "discussion", "Tabled at the first working group.")
        self.outcome(
            m5,
            [
                self.item(
                    "agreement",
                    "The statistics authority is the right accrediting body.",
                    consensus="banked",
                    proposal="research-access",
                ),
                self.item(
                    "action",
                    "Office for National Statistics to discuss retention of "
                    "linked data with the Information Commissioner's Office.",
                    orgs=["ons", "ico"],
                ),
            ],
        )
        self.minutes(m5, _day(2014, 12, 12, 11))

    # chapter 4: drafting options, 2015 ---------------------------------------------------

    def drafting(self) -> None:
        self.chapter("Chapter 4 (January-October 2015): amendments, revisions and options")
        m6 = self.schedule(
            "tps-wg-2",
            title="Tailored public services working group 2",
            starts=_day(2015, 1, 21),
            convenor="cabinet-office",
            strand=TPS,
        )
        self.hold(
            m6,
            [
                "cabinet-office",
                "dclg",
                "dwp",
                "dfe",
                "lga",
                "northshire",
                "privacy-forum",
                "digital-liberties",
                "open-policy-network",
                "contractors",
                "ico",
            ],
        )
        self.decide(
            "gateway",
            "A2",
            decision="agreed",
            consensus="banked",
            meeting=m6,
            dissent=["digital-liberties"],
            note="Agreed on condition that every body is named in the schedule; the "
            "Digital Liberties Trust records its dissent on contracted providers.",
        )
        a3 = self.amend(
            "gateway",
            proposer="open-policy-network",
            meeting=m6,
            rationale="Safeguards on paper need a code that says how they work in practice.",
            changes=[
                _insert(
                    "code",
                    "Code of practice",
                    "Everyone sharing under the gateway must follow a code of "
                    "practice that is consulted on and laid before Parliament.",
                    after="safeguards",
                )
            ],
        )
        self.decide(
            "gateway",
            a3,
            decision="no_decision",
            consensus="still_to_discuss",
            meeting=m6,
            note="One code for every power, or one code per power?",
        )
        self.revise(
            "gateway",
            ["A1", "A2"],
            meeting=m6,
            note="Version 2: objectives set in regulations; bodies named in a schedule.",
        )
        self.table(
            "single-code",
            strand=TPS,
            sponsor="open-policy-network",
            meeting=m6,
            title="A single statutory code of practice for all data-sharing powers",
            sections=[
                _section(
                    "scope",
                    "Scope",
                    "One code covers every new data-sharing power from this process.",
                ),
                _section(
                    "content",
                    "Content",
                    "The code sets out how to assess, record, publish and review each "
                    "sharing arrangement.",
                ),
                _section(
                    "status",
                    "Legal status",
                    "Bodies must have regard to the code; the Information Commissioner "
                    "takes it into account in enforcement.",
                ),
            ],
        )
        self.status("single-code", "discussion", "Tabled as an alternative to a code per power.")
        self.outcome(
            m6,
            [
                self.item(
                    "decision",
                    "Contracted providers may share if named in the schedule.",
                    consensus="banked",
                    proposal="gateway",
                    amendment="A2",
                    orgs=["northshire", "lga"],
                ),
                self.item(
                    "option",
                    "One code for all powers, or a code for each power.",
                    consensus="options",
                    proposal="single-code",
                ),
                self.item(
                    "action",
                    "Secretariat to publish the gateway, version 2, as a discussion paper.",
                    orgs=["cabinet-office"],
                ),
            ],
        )
        self.minutes(m6, _day(2015, 1, 30, 11))
        self.publish(
            "gateway-paper",
            when=_day(2015, 2, 4),
            kind="discussion_paper",
            title="Tailored public services: the gateway proposal, version 2",
            proposals=["gateway", "single-code"],
            meetings=["tps-wg-2"],
            body=[
                "## What changed",
                "",
                "- Objectives are now set in regulations approved by Parliament.",
                "- Only bodies named in a schedule may share; contracted providers can be "
                "named, subject to recorded dissent.",
                "",
                "## Still open",
                "",
                "Whether one code of practice should cover every power.",
            ],
        )

        self.phase(
            _day(2015, 3, 2, 9),
            "drafting-options",
            "Drafting options",
            "Turning the strand proposals into options for ministers.",
        )
        m7 = self.schedule(
            "eag-1",
            title="External Advisory Group meeting 1",
            starts=_day(2015, 3, 18),
            convenor="advisory-group",
        )
        self.hold(
            m7,
            [
                "advisory-group",
                "open-policy-network",
                "cabinet-office",
                "ons",
                "privacy-forum",
                "digital-liberties",
                "health-data-group",
                "data-ethics-institute",
                "research-consortium",
                "ico",
            ],
        )
        self.decide("research-access", "A1", decision="agreed", consensus="banked", meeting=m7)
        self.decide(
            "research-access",
            "A2",
            decision="agreed",
            consensus="banked",
            meeting=m7,
            dissent=["research-consortium"],
            note="Researchers would have liked health data in scope; they accept the "
            "exclusion for now.",
        )
        self.decide(
            "research-access",
            "A3",
            decision="withdrawn",
            consensus="still_to_discuss",
            meeting=m7,
            note="Withdrawn by the Office for National Statistics pending advice on "
            "retention from the Information Commissioner's Office.",
        )
        self.revise(
            "research-access",
            ["A1", "A2"],
            meeting=m7,
            note="Version 2: public-interest panel; health and social care excluded.",
        )
        self.outcome(
            m7,
            [
                self.item(
                    "agreement",
                    "Research access, version 2, is ready for a discussion paper.",
                    consensus="banked",
                    proposal="research-access",
                ),
                self.item(
                    "disagreement",
                    "Whether processors may keep linked datasets.",
                    consensus="still_to_discuss",
                    proposal="research-access",
                    amendment="A3",
                    orgs=["ons", "privacy-forum"],
                ),
                self.item(
                    "action",
                    "Advisory group to publish its own view of the fraud and debt options.",
                    orgs=["advisory-group"],
                ),
            ],
        )
        self.minutes(m7, _day(2015, 3, 27, 11))

        m8 = self.schedule(
            "fed-wg-2",
            title="Fraud, error and debt working group 2",
            starts=_day(2015, 5, 13),
            convenor="cabinet-office",
            strand=FED,
        )
        self.hold(
            m8,
            [
                "cabinet-office",
                "hmrc",
                "dwp",
                "lga",
                "riverside",
                "debt-advice",
                "privacy-forum",
                "digital-liberties",
            ],
        )
        self.decide(
            "fraud-debt-pilots",
            "A2",
            decision="agreed",
            consensus="banked",
            meeting=m8,
            dissent=["privacy-forum", "digital-liberties"],
            note="Tax and benefit debts are in scope from the start; two members dissent.",
        )
        self.revise(
            "fraud-debt-pilots",
            ["A1", "A2", "A3"],
            meeting=m8,
            note="Version 2: sunset clause, wider scope, help for people in difficulty.",
        )
        self.outcome(
            m8,
            [
                self.item(
                    "decision",
                    "Tax and benefit debts are in scope.",
                    consensus="banked",
                    proposal="fraud-debt-pilots",
                    amendment="A2",
                    orgs=["hmrc", "dwp"],
                ),
                self.item(
                    "disagreement",
                    "Privacy Rights Forum and Digital Liberties Trust "
                    "oppose widening scope before pilots report.",
                    consensus="banked",
                    proposal="fraud-debt-pilots",
                    amendment="A2",
                    orgs=["privacy-forum", "digital-liberties"],
                ),
            ],
        )
        self.outcome(
            m8,
            [
                self.item(
                    "action",
                    "Debt Advice Alliance to propose how pilots are reviewed.",
                    orgs=["debt-advice"],
                ),
            ],
        )
        self.minutes(m8, _day(2015, 5, 22, 11))

        m9 = self.schedule(
            "tps-wg-3",
            title="Tailored public services working group 3",
            starts=_day(2015, 6, 17),
            convenor="cabinet-office",
            strand=TPS,
        )
        self.hold(
            m9,
            [
                "cabinet-office",
                "dclg",
                "dwp",
                "lga",
                "riverside",
                "privacy-forum",
                "open-policy-network",
                "ico",
            ],
        )
        self.decide(
            "gateway",
            "A3",
            decision="withdrawn",
            consensus="banked",
            meeting=m9,
            note="Withdrawn by its proposer and re-proposed against version 2.",
        )
        a4 = self.amend(
            "gateway",
            proposer="open-policy-network",
            meeting=m9,
            rationale="Re-proposed against version 2: a code for this power, consulted on and "
            "laid before Parliament.",
            changes=[
                _insert(
                    "code",
                    "Code of practice",
                    "Everyone sharing under the gateway must follow a code of "
                    "practice for this power, consulted on publicly and laid before "
                    "Parliament.",
                    after="safeguards",
                )
            ],
        )
        a5 = self.amend(
            "gateway",
            proposer="ico",
            meeting=m9,
            rationale="People should be able to see what is shared about them and why.",
            changes=[
                _replace(
                    "safeguards",
                    "Before sharing, the bodies involved carry out and publish a "
                    "privacy impact assessment, enter the arrangement in a public "
                    "register and delete the data once the objective is met.",
                )
            ],
        )
        self.decide("gateway", a4, decision="agreed", consensus="banked", meeting=m9)
        self.decide("gateway", a5, decision="agreed", consensus="banked", meeting=m9)
        self.revise(
            "gateway",
            [a4, a5],
            meeting=m9,
            note="Version 3: a code of practice for the power; published impact "
            "assessments and register.",
        )
        self.amend(
            "single-code",
            proposer="health-data-group",
            meeting=m9,
            rationale="If a single code survives, health data needs its own chapter.",
            changes=[
                _insert(
                    "health",
                    "Health data",
                    "A separate chapter covers health and social care data.",
                    after="content",
                )
            ],
        )
        self.decide(
            "single-code",
            "A1",
            decision="withdrawn",
            consensus="banked",
            meeting=m9,
            note="Withdrawn: the group prefers a code per power.",
        )
        self.status(
            "single-code",
            "superseded",
            "The group chose a code for each power; the "
            "gateway now carries its own code (version 3).",
            superseded_by="gateway",
        )
        self.outcome(
            m9,
            [
                self.item(
                    "decision",
                    "A code of practice for each power, starting with the gateway.",
                    consensus="banked",
                    proposal="gateway",
                    amendment=a4,
                ),
                self.item(
                    "decision",
                    "Published privacy impact assessments and a public register.",
                    consensus="banked",
                    proposal="gateway",
                    amendment=a5,
                    orgs=["ico"],
                ),
            ],
        )
        self.minutes(m9, _day(2015, 6, 26, 11))
        self.publish(
            "fraud-debt-paper",
            when=_day(2015, 6, 30),
            kind="discussion_paper",
            title="Fraud and debt: a pilot power with a sunset clause",
            proposals=["fraud-debt-pilots"],
            meetings=["fed-wg-1", "fed-wg-2"],
            body=[
                "Version 2 of the proposal limits the power to pilots, ends it after three "
                "years unless Parliament renews it, and requires pilots to refer people in "
                "difficulty to free advice.",
                "",
                "Two members of the working group dissent from including tax and benefit "
                "debts before the first pilots report.",
            ],
        )

        m10 = self.schedule(
            "rs-wg-2",
            title="Research and statistics working group 2",
            starts=_day(2015, 7, 8, 14),
            convenor="ons",
            strand=RS,
        )
        self.hold(
            m10,
            [
                "ons",
                "uksa",
                "research-consortium",
                "data-ethics-institute",
                "health-data-group",
                "contractors",
                "ico",
            ],
        )
        self.table(
            "statistics-access",
            strand=RS,
            sponsor="uksa",
            meeting=m10,
            title="Statistics authority access to administrative data",
            sections=[
                _section(
                    "purpose",
                    "Purpose",
                    "Give the statistics authority a right of access to data held by "
                    "public bodies, so official statistics can rely less on surveys.",
                ),
                _section(
                    "access",
                    "Access",
                    "Public bodies provide data the authority needs for its statistical "
                    "functions, within data protection law.",
                ),
                _section(
                    "business",
                    "Business data",
                    "The authority may require data from larger businesses to replace "
                    "survey forms.",
                ),
                _section(
                    "statement",
                    "Statement of principles",
                    "The authority publishes the principles and procedures it follows.",
                ),
            ],
        )
        c1 = self.amend(
            "statistics-access",
            proposer="contractors",
            meeting=m10,
            rationale="Businesses need to know the cost of each request before it is made.",
            changes=[
                _replace(
                    "business",
                    "Requests to businesses must be proportionate, and a burden "
                    "assessment is published for every new request.",
                )
            ],
        )
        c2 = self.amend(
            "statistics-access",
            proposer="ico",
            meeting=m10,
            rationale="The statement should be scrutinised, not only published.",
            changes=[
                _replace(
                    "statement",
                    "The authority consults the Information Commissioner and the "
                    "devolved administrations on its statement of principles and "
                    "lays it before Parliament.",
                )
            ],
        )
        self.decide(
            "statistics-access",
            c1,
            decision="disagreed",
            consensus="options",
            meeting=m10,
            dissent=["contractors"],
            note="Options for ministers: a statutory burden test, or a commitment in "
            "the statement of principles.",
        )
        self.decide("statistics-access", c2, decision="agreed", consensus="banked", meeting=m10)
        self.revise(
            "statistics-access",
            [c2],
            meeting=m10,
            note="Version 2: statement of principles consulted on and laid before Parliament.",
        )
        self.status("statistics-access", "discussion", "Tabled at the second working group.")
        self.outcome(
            m10,
            [
                self.item(
                    "option",
                    "Burden on businesses: statutory test or statement commitment.",
                    consensus="options",
                    proposal="statistics-access",
                    amendment=c1,
                ),
                self.item(
                    "decision",
                    "The statement of principles goes before Parliament.",
                    consensus="banked",
                    proposal="statistics-access",
                    amendment=c2,
                ),
            ],
        )
        self.minutes(m10, _day(2015, 7, 17, 11))
        self.publish(
            "research-paper",
            when=_day(2015, 7, 22),
            kind="discussion_paper",
            title="Research and statistics: accredited access and statistics access",
            proposals=["research-access", "statistics-access"],
            meetings=["rs-wg-1", "rs-wg-2"],
            body=[
                "Researchers get de-identified data through accredited processors, for "
                "projects an independent panel judges to be in the public interest. Health "
                "and adult social care data are excluded.",
                "",
                "The statistics authority gains a right of access to administrative data, "
                "under a statement of principles laid before Parliament.",
            ],
        )

        m11 = self.schedule(
            "eag-2",
            title="External Advisory Group meeting 2: the consultation package",
            starts=_day(2015, 10, 14),
            convenor="advisory-group",
        )
        self.hold(
            m11,
            [
                "advisory-group",
                "open-policy-network",
                "cabinet-office",
                "lga",
                "riverside",
                "privacy-forum",
                "digital-liberties",
                "debt-advice",
                "data-ethics-institute",
                "ico",
            ],
        )
        typo = (
            "Riverside Borugh Council and the Local Government Association to test the "
            "draft consultation questions with frontline staff."
        )
        receipt = self.outcome(
            m11,
            [
                self.item(
                    "agreement",
                    "All four live proposals go to public consultation together.",
                    consensus="banked",
                ),
                self.item(
                    "option",
                    "Fraud and debt: consult on the agreed scope, and ask openly "
                    "about the dissenting view.",
                    consensus="options",
                    proposal="fraud-debt-pilots",
                ),
                self.item("action", typo, orgs=["riverside", "lga"]),
            ],
        )
        self.at(_day(2015, 10, 20, 9))
        self._count(
            self.app.record_correction(
                corrects_index=receipt.index,
                actor=self.admin,
                reason="Organisation name misspelt in outcome item 3.",
                correction={
                    "field": "items[2].text",
                    "was": "Riverside Borugh Council",
                    "now": "Riverside Borough Council",
                },
                id=demo_id("correction", "eag-2-organisation-name"),
            )
        )
        # The agreed minutes carry the corrected name; the outcome entry itself never changes.
        m11.items[2] = {
            **m11.items[2],
            "text": typo.replace("Riverside Borugh Council", "Riverside Borough Council"),
        }
        self.minutes(
            m11,
            _day(2015, 10, 23, 11),
            [
                "The outcome entry misspelt an organisation's name in item 3; the ledger "
                "records a correction and these minutes use the correct name.",
            ],
        )

    # chapter 5: public consultation, 2016 ------------------------------------------------

    def consultation(self) -> None:
        self.chapter("Chapter 5 (February-June 2016): public consultation and revisions")
        self.phase(
            _day(2016, 2, 29, 8),
            "public-consultation",
            "Public consultation",
            "The proposals are put to the public for eight weeks.",
        )
        live = ["gateway", "fraud-debt-pilots", "research-access", "statistics-access"]
        for key in live:
            self.status(key, "consultation", "Published for public consultation.")
        body = [
            "## About this consultation",
            "",
            "These proposals were developed in the open with public bodies, local "
            "government, civil society and researchers. We want to hear from anyone with a "
            "view.",
            "",
            "## Questions",
            "",
            "1. Are the objectives of the public services gateway narrow enough?",
            "2. Should tax and benefit debts be in scope of the fraud and debt pilots?",
            "3. Is accreditation of processors, researchers and projects the right model?",
            "4. How should the burden of statistics requests on businesses be limited?",
        ]
        first = self.publish(
            "consultation",
            when=_day(2016, 2, 29, 10),
            kind="consultation_document",
            title="Better use of data: public consultation on data-sharing proposals",
            proposals=live,
            meetings=["eag-2"],
            body=body,
        )
        corrected = self.publish(
            "consultation-corrected",
            when=_day(2016, 3, 7, 10),
            kind="consultation_document",
            title="Better use of data: public consultation on data-sharing proposals "
            "(corrected edition)",
            proposals=live,
            meetings=["eag-2"],
            body=[
                *body,
                "5. Which safeguards should every code of practice contain?",
                "",
                "This edition adds question 5, left out of the first edition.",
            ],
        )
        self.at(_day(2016, 3, 7, 11))
        self._count(
            self.app.supersede_publication(
                first,
                superseded_by=corrected,
                actor=self.publisher,
                reason="Question 5 was missing from the first edition.",
            )
        )

        m12 = self.schedule(
            "consultation-workshop",
            title="Consultation workshop: fraud, error and debt",
            starts=_day(2016, 3, 16),
            convenor="open-policy-network",
            strand=FED,
            disclosure="non_attributed",
        )
        self.hold(
            m12,
            [
                "open-policy-network",
                "cabinet-office",
                "hmrc",
                "dwp",
                "lga",
                "debt-advice",
                "privacy-forum",
                "digital-liberties",
            ],
        )
        self.outcome(
            m12,
            [
                self.item(
                    "disagreement",
                    "Whether the code of practice for the debt pilots should be binding.",
                    consensus="still_to_discuss",
                    proposal="fraud-debt-pilots",
                ),
                self.item(
                    "agreement",
                    "Pilots should be reviewed by a group that includes civil society.",
                    consensus="banked",
                    proposal="fraud-debt-pilots",
                ),
                self.item(
                    "action",
                    "Secretariat to summarise workshop views in the consultation analysis.",
                ),
            ],
        )
        self.minutes(m12, _day(2016, 3, 25, 11))

        m13 = self.schedule(
            "eag-3",
            title="External Advisory Group meeting 3: after the consultation",
            starts=_day(2016, 5, 18),
            convenor="advisory-group",
        )
        self.hold(
            m13,
            [
                "advisory-group",
                "open-policy-network",
                "cabinet-office",
                "hmrc",
                "ons",
                "uksa",
                "privacy-forum",
                "digital-liberties",
                "debt-advice",
                "health-data-group",
                "ico",
            ],
        )
        d6 = self.amend(
            "gateway",
            proposer="cabinet-office",
            meeting=m13,
            rationale="Consultation responses asked what 'wellbeing' means.",
            changes=[
                _replace(
                    "objectives",
                    "Each objective is set in regulations approved by Parliament, "
                    "improves or targets a public service for people or households, "
                    "and supports their wellbeing: their health, learning, work, "
                    "finances or ability to take part in community life.",
                )
            ],
        )
        d7 = self.amend(
            "gateway",
            proposer="digital-liberties",
            meeting=m13,
            rationale="Consultation responses were split on contracted providers.",
            changes=[
                _replace(
                    "bodies",
                    "Public authorities named in a schedule; contracted providers "
                    "are not included.",
                )
            ],
        )
        self.decide("gateway", d6, decision="agreed", consensus="banked", meeting=m13)
        self.decide(
            "gateway",
            d7,
            decision="disagreed",
            consensus="options",
            meeting=m13,
            dissent=["digital-liberties", "privacy-forum"],
            note="Both options go to ministers: keep named contracted providers, or "
            "limit the gateway to public authorities.",
        )
        self.revise(
            "gateway",
            [d6],
            meeting=m13,
            note="Version 4: wellbeing defined after the consultation.",
        )
        e4 = self.amend(
            "fraud-debt-pilots",
            proposer="debt-advice",
            meeting=m13,
            rationale="The consultation workshop agreed pilots need independent review.",
            changes=[
                _replace(
                    "pilots",
                    "Each use starts as a time-limited pilot with a published "
                    "business case; an independent review group that includes "
                    "civil society advises on every pilot, and its advice is "
                    "published before a pilot can continue.",
                )
            ],
        )
        e5 = self.amend(
            "fraud-debt-pilots",
            proposer="hmrc",
            meeting=m13,
            rationale="A fixed end date makes long-term investment in pilots hard.",
            changes=[
                _replace(
                    "review",
                    "A minister reviews how the power has been used and reports to Parliament.",
                    heading="Review",
                )
            ],
        )
        self.decide("fraud-debt-pilots", e4, decision="agreed", consensus="banked", meeting=m13)
        self.decide(
            "fraud-debt-pilots",
            e5,
            decision="disagreed",
            consensus="banked",
            meeting=m13,
            dissent=["hmrc"],
            note="The sunset clause stays.",
        )
        self.revise(
            "fraud-debt-pilots",
            [e4],
            meeting=m13,
            note="Version 3: independent review group for pilots.",
        )
        f4 = self.amend(
            "research-access",
            proposer="ico",
            meeting=m13,
            rationale="Responses asked for the register to be public.",
            changes=[
                _replace(
                    "register",
                    "The statistics authority publishes a register of accredited "
                    "researchers, projects and processors, and the code of practice "
                    "they follow.",
                    heading="Public register",
                )
            ],
        )
        self.decide("research-access", f4, decision="agreed", consensus="banked", meeting=m13)
        self.revise(
            "research-access", [f4], meeting=m13, note="Version 3: the register is published."
        )
        for key in ("gateway", "fraud-debt-pilots", "research-access"):
            self.status(key, "revised", "Revised in the light of consultation responses.")
        self.outcome(
            m13,
            [
                self.item(
                    "decision",
                    "Wellbeing is defined in the gateway.",
                    consensus="banked",
                    proposal="gateway",
                    amendment=d6,
                ),
                self.item(
                    "option",
                    "Contracted providers in or out of the gateway.",
                    consensus="options",
                    proposal="gateway",
                    amendment=d7,
                    orgs=["digital-liberties", "northshire"],
                ),
                self.item(
                    "decision",
                    "Independent review group for fraud and debt pilots.",
                    consensus="banked",
                    proposal="fraud-debt-pilots",
                    amendment=e4,
                    orgs=["debt-advice"],
                ),
                self.item(
                    "decision",
                    "The sunset clause stays.",
                    consensus="banked",
                    proposal="fraud-debt-pilots",
                    amendment=e5,
                ),
                self.item(
                    "decision",
                    "The research register is published.",
                    consensus="banked",
                    proposal="research-access",
                    amendment=f4,
                ),
            ],
        )
        self.minutes(m13, _day(2016, 5, 27, 11))

    # chapter 6: legislation, 2016-2017 ---------------------------------------------------

    def legislation(self) -> None:
        self.chapter("Chapter 6 (July 2016-April 2017): the Bill and the Act")
        self.phase(
            _day(2016, 7, 5, 8),
            "legislation",
            "Legislation",
            "The proposals are carried into a Bill before Parliament.",
        )
        live = ["gateway", "fraud-debt-pilots", "research-access", "statistics-access"]
        for key in live:
            self.status(key, "recommended", "Recommended to ministers and included in the Bill.")
        self.publish(
            "government-response",
            when=_day(2016, 9, 28),
            kind="consultation_response",
            title="Better use of data: government response to the consultation",
            proposals=live,
            meetings=["consultation-workshop", "eag-3"],
            body=[
                "## What we heard",
                "",
                "Most responses supported the aims but asked for tighter objectives, public "
                "registers and independent review of the fraud and debt pilots.",
                "",
                "## What we will do",
                "",
                "- Define wellbeing in the public services gateway.",
                "- Keep the three-year sunset on the fraud and debt pilots and set up an "
                "independent review group.",
                "- Publish the register of accredited research.",
                "- Consult on a code of practice for each power.",
            ],
        )
        m14 = self.schedule(
            "eag-4",
            title="External Advisory Group meeting 4: codes of practice",
            starts=_day(2016, 10, 12),
            convenor="advisory-group",
            disclosure="non_attributed",
        )
        self.hold(
            m14,
            [
                "advisory-group",
                "open-policy-network",
                "cabinet-office",
                "ons",
                "privacy-forum",
                "digital-liberties",
                "debt-advice",
                "ico",
            ],
        )
        self.outcome(
            m14,
            [
                self.item(
                    "agreement",
                    "The group will comment on each draft code of practice.",
                    consensus="banked",
                ),
                self.item(
                    "disagreement",
                    "Whether the codes should be statutory or guidance.",
                    consensus="still_to_discuss",
                ),
                self.item(
                    "action",
                    "Secretariat to share draft codes before Parliament debates "
                    "the Bill's data-sharing Part.",
                ),
            ],
        )
        self.minutes(m14, _day(2016, 10, 21, 11))

        self.at(_day(2017, 4, 27, 16))
        for key in live:
            self.status(
                key,
                "enacted",
                "Carried into the Digital Economy Act 2017, which "
                "received Royal Assent on 27 April 2017.",
            )
        self.link(
            "gateway",
            "Part 5, Chapter 1",
            "Public service delivery: sharing for objectives set in regulations.",
        )
        self.link("fraud-debt-pilots", "Part 5, Chapter 3", "Debt owed to the public sector.")
        self.link("fraud-debt-pilots", "Part 5, Chapter 4", "Fraud against the public sector.")
        self.link("research-access", "Part 5, Chapter 5", "Sharing for research purposes.")
        self.link("statistics-access", "Part 5, Chapter 7", "Statistics.")
        self.publish(
            "closing-report",
            when=_day(2017, 5, 10),
            kind="report",
            title="From open policy process to the Digital Economy Act 2017",
            proposals=[*live, "single-code"],
            meetings=sorted(self.meetings),
            body=[
                f"Over three years, {len(self.orgs)} organisations took part in "
                f"{len(self.meetings)} meetings and shaped {len(self.proposals)} proposals "
                f"through {self.amendment_count} amendments.",
                "",
                "Four proposals were carried into Part 5 of the Digital Economy Act 2017. The "
                "single code of practice was superseded by a code for each power.",
                "",
                "Every decision, dissent and document hash above is in the ledger.",
            ],
        )

    def summary(self) -> DemoSummary:
        return DemoSummary(
            entries=self.entries,
            process_id=self.process_id,
            organisations=len(self.orgs),
            meetings=len(self.meetings),
            proposals=len(self.proposals),
            amendments=self.amendment_count,
            publications=len(self.publications),
            documents=dict(self.documents),
        )


def record_demo(
    app: LedgerApplication, *, progress: Callable[[str], None] | None = None
) -> DemoSummary:
    """Record the demo process into ``app`` (an empty ledger).

    Sets ``app.clock`` to a :class:`DemoClock` starting 2014-05-01 and moves it through
    2014-2017 as the story goes. ``progress`` is called with a message at each chapter.
    """
    story = _Story(app, progress)
    story.set_up()
    story.scoping()
    story.working_groups()
    story.drafting()
    story.consultation()
    story.legislation()
    story.chapter(f"Done: {story.entries} entries recorded.")
    story.side.close()
    return story.summary()
