"""Schemas of the public read API's answers, for OpenAPI (and for tests to check answers).

The routes return plain dicts built by the read models; these models describe them exactly
(``extra="forbid"``), so a test can validate a real answer against its model and catch any
drift between what is served and what is documented. Nested values the log takes as given
(sections, changes, outcome items, entry details) are free-form JSON objects.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Amendment",
    "Answer",
    "Compare",
    "Consultation",
    "ConsultationDetail",
    "ConsultationPage",
    "ConsultationResponse",
    "ExportRegister",
    "Exports",
    "GovernmentResponse",
    "HistoryItem",
    "HistoryPage",
    "LegislativeOutcome",
    "Listing",
    "Meeting",
    "MeetingDetail",
    "MeetingPage",
    "Membership",
    "Minutes",
    "Organisation",
    "OrganisationDetail",
    "OrganisationPage",
    "Outcome",
    "Participation",
    "Phase",
    "PrereleaseGrant",
    "Problem",
    "Process",
    "ProposalDetail",
    "ProposalPage",
    "ProposalSummary",
    "Publication",
    "PublicationDetail",
    "PublicationPage",
    "Question",
    "Recommendation",
    "Review",
    "SearchHit",
    "SearchPage",
    "Strand",
    "TimelineItem",
    "TimelinePage",
    "Version",
    "VersionPage",
]

JsonObject = dict[str, Any]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """An RFC 9457 problem: every error the API returns, as ``application/problem+json``.

    Some problems carry more members (``errors`` for invalid parameters, ``published_size``
    for sizes out of range)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field("about:blank", description="a URI naming the kind of problem")
    title: str = Field(description="a short summary of the kind of problem")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong with this request")
    instance: str = Field(description="the path that was asked for")


class Listing(_Strict):
    """A page of a list: the index it reflects and the cursor of the next page."""

    as_of_index: int = Field(description="the log index every item reflects (-1: before any)")
    next_cursor: str | None = Field(
        description="pass as ``cursor`` for the next page (it keeps this page's index); "
        "null on the last page"
    )


# proposals --------------------------------------------------------------------------------


class LegislativeOutcome(_Strict):
    legislation: str
    provision: str
    note: str
    index: int = Field(description="the log index of the entry that linked it")


class ProposalSummary(_Strict):
    id: str
    title: str
    status: str
    process_id: str
    strand_id: str
    sponsor_org: str
    text_version: int = Field(description="the current text version")
    tabled_index: int
    tabled_time: str
    legislative_outcomes: list[LegislativeOutcome]
    as_of_index: int


class ProposalPage(Listing):
    items: list[ProposalSummary | SearchHit] = Field(
        description="proposals in tabling order; with ``q``, search hits on proposals, best first"
    )


class ProposalDetail(_Strict):
    id: str
    title: str
    status: str
    process_id: str
    strand_id: str
    sponsor_org: str
    text_version: int
    sections: list[JsonObject] = Field(description="the current text, section by section")
    legislative_outcomes: list[LegislativeOutcome]
    tabled_index: int
    individual_sponsors: int = Field(
        default=0,
        description="how many individuals sponsor it alongside the organisation (never who)",
    )
    as_of_index: int
    version: int = Field(
        description="the proposal's version (entries about it) as of ``as_of_index``; also the ETag"
    )


class Amendment(_Strict):
    amendment_id: str
    base_version: int
    changes: list[JsonObject]
    rationale: str
    proposer_org: str | None = Field(
        description="null when raised at a non-attributed, Chatham House or private meeting, "
        "which attributes no one"
    )
    meeting_id: str | None
    proposed_index: int
    decision: str | None = Field(description="null until decided")
    consensus: str | None
    dissenting_orgs: list[str]
    decided_meeting: str | None
    decided_index: int | None
    decision_note: str | None
    incorporated_in: int | None = Field(description="the text version that took it in")


class Version(_Strict):
    text_version: int
    created_index: int
    created_time: str
    sections: list[JsonObject]
    based_on: int | None = Field(description="the version it revised; null for the first")
    amendments: list[Amendment] = Field(description="the amendments it incorporated")
    note: str
    meeting_id: str | None
    actor: dict[str, str]
    as_of_index: int


class VersionPage(Listing):
    items: list[Version]


class Compare(_Strict):
    proposal_id: str
    from_version: int
    to_version: int
    operations: list[JsonObject]
    html: str
    as_of_index: int


class HistoryItem(_Strict):
    index: int
    time: str
    type: str
    actor: dict[str, str]
    detail: JsonObject


class HistoryPage(Listing):
    items: list[HistoryItem]


# meetings ----------------------------------------------------------------------------------


class Minutes(_Strict):
    sha256: str
    size: int
    media_type: str


class Meeting(_Strict):
    id: str
    process_id: str
    strand_id: str | None
    title: str
    starts_at: str
    disclosure: str
    convenor_org: str
    held: bool
    held_at: str | None
    attending_orgs: list[str] | None = Field(
        description="null where the disclosure mode withholds attendance"
    )
    attendance_withheld: bool
    attendee_count: int = Field(
        description="how many organisations attended (0 until held); for Chatham House and "
        "private meetings the only attendance shown: the log holds one salted commitment each"
    )
    attending_individuals: int = Field(
        description="how many individuals attended in person; who they were is personal data, "
        "sealed in the log and never published (officials: GET /meetings/{id}/attendees)"
    )
    minutes: Minutes | None
    scheduled_index: int
    as_of_index: int


class MeetingPage(Listing):
    items: list[Meeting]


class Outcome(_Strict):
    outcome_id: str
    index: int
    time: str
    items: list[JsonObject] = Field(
        description="without ``orgs`` where the disclosure mode does not attribute"
    )


class MeetingDetail(Meeting):
    outcomes: list[Outcome]
    version: int = Field(description="the meeting's version as of ``as_of_index``; the ETag")


# consultations -----------------------------------------------------------------------------


class Question(_Strict):
    id: str
    text: str


class Consultation(_Strict):
    id: str
    process_id: str
    title: str
    questions: list[Question]
    documents: list[str] = Field(description="SHA-256 of each consultation document")
    closes_at: str
    status: Literal["open", "closed"]
    closed_time: str | None = Field(description="when it was recorded as closed")
    opened_index: int
    response_count: int
    organisation_responses: int
    individual_responses: int = Field(
        description="how many individuals responded; who they are is never published"
    )
    published_individual_responses: int = Field(
        description="individuals' responses published with their consent"
    )
    as_of_index: int


class ConsultationPage(Listing):
    items: list[Consultation]


class Answer(_Strict):
    question_id: str
    text: str


class ConsultationResponse(_Strict):
    response_id: str
    index: int
    time: str
    respondent: Literal["an organisation", "an individual"]
    org_id: str | None = Field(description="the responding organisation; null for individuals")
    answers: list[Answer]


class Recommendation(_Strict):
    id: str
    text: str


class Review(_Strict):
    reviewer_org: str
    findings: list[str]
    recommendations: list[Recommendation]
    index: int


class GovernmentResponse(_Strict):
    recommendation_id: str
    response: Literal["accepted", "partly", "rejected"]
    text: str
    index: int


class ConsultationDetail(Consultation):
    responses: list[ConsultationResponse] = Field(
        description="organisations' responses, and individuals' where they consented"
    )
    review: Review | None
    government_responses: list[GovernmentResponse]
    version: int = Field(description="the consultation's version as of ``as_of_index``")


# publications ------------------------------------------------------------------------------


class PrereleaseGrant(_Strict):
    organisation_id: str
    authorised_by: str
    reason: str
    index: int = Field(description="the log index of the grant's entry")
    time: str


class Publication(_Strict):
    id: str
    process_id: str
    pub_kind: str
    title: str
    sha256: str | None = Field(description="null while embargoed (not yet released)")
    size: int | None = Field(description="null while embargoed")
    media_type: str | None = Field(description="null while embargoed")
    proposal_ids: list[str]
    meeting_ids: list[str]
    state: Literal["published", "embargoed", "withdrawn", "superseded"]
    superseded_by: str | None
    reason: str | None
    published_index: int = Field(
        description="the log index of its first entry (published, or embargoed)"
    )
    published_time: str
    state_index: int = Field(description="the log index of the entry that last changed it")
    commitment: str | None = Field(
        description="embargoed publications only: SHA-256(salt ‖ document bytes), hex"
    )
    release_at: str | None = Field(description="embargoed publications only: scheduled release")
    salt: str | None = Field(
        description="the commitment's salt (hex), revealed by the release; null before"
    )
    released_index: int | None = Field(description="the log index of the release entry")
    override_reason: str | None = Field(
        description="why an admin released it before release_at, if they did"
    )
    prerelease_grants: list[PrereleaseGrant] = Field(
        description="organisations granted access before release (embargoed publications)"
    )
    as_of_index: int


class PublicationPage(Listing):
    items: list[Publication]


class PublicationDetail(Publication):
    supersedes: list[str]
    version: int = Field(description="the publication's version as of ``as_of_index``; the ETag")


# organisations -----------------------------------------------------------------------------


class Organisation(_Strict):
    id: str
    name: str
    org_kind: str
    registered_index: int
    as_of_index: int


class OrganisationPage(Listing):
    items: list[Organisation]


class Membership(_Strict):
    process_id: str
    group: str
    role: str
    since_index: int


class Participation(_Strict):
    meetings_attended: int
    amendments_proposed: int
    dissents: int


class OrganisationDetail(Organisation):
    memberships: list[Membership]
    participation: Participation
    version: int = Field(description="the organisation's version as of ``as_of_index``; the ETag")


# processes ---------------------------------------------------------------------------------


class Strand(_Strict):
    strand_id: str
    title: str
    summary: str
    added_index: int


class Phase(_Strict):
    phase_id: str
    title: str
    summary: str
    started_index: int
    started_time: str
    ended_index: int | None = Field(description="null for the current phase")
    ended_time: str | None


class Process(_Strict):
    id: str
    title: str
    summary: str
    current_phase: str | None
    started_index: int
    started_time: str
    strands: list[Strand]
    phases: list[Phase]
    as_of_index: int
    version: int = Field(description="the process's version as of ``as_of_index``; the ETag")


# timeline and search -----------------------------------------------------------------------


class TimelineItem(_Strict):
    index: int
    time: str
    type: str
    subject_kind: str
    subject_id: str


class TimelinePage(Listing):
    items: list[TimelineItem] = Field(description="newest first")


class SearchHit(_Strict):
    kind: Literal["proposal", "amendment", "outcome", "publication"]
    ref_id: str
    sub_id: str
    title: str
    snippet: str = Field(description="matched words between « and »")
    index: int
    rank: float = Field(description="higher is better; comparable within one listing only")


class SearchPage(Listing):
    items: list[SearchHit]


# exports -----------------------------------------------------------------------------------


class ExportRegister(_Strict):
    name: str
    description: str
    columns: list[str] = Field(description="the CSV header, in order; the NDJSON members")
    csv: str = Field(description="path of the CSV download")
    ndjson: str = Field(description="path of the NDJSON download")


class Exports(_Strict):
    registers: list[ExportRegister]


ProposalPage.model_rebuild()
