"""Explicit, past-tense domain events with stable topics.

Each class's ``TOPIC`` is the entry ``type`` written to the log forever: never rename one.
The part before the dot is the subject kind (``proposal.tabled`` → ``proposal``). Event
fields hold JSON values only (str, int, bool, None, lists and objects of those), so the
event's ``data`` in the entry is exactly its fields. Events carry no behaviour beyond
handing themselves to their aggregate's ``when``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.domain import AggregateCreated, AggregateEvent
from eventsourcing.utils import register_topic

__all__ = [
    "ALL_EVENTS",
    "AccessTokenIssued",
    "AccessTokenRevoked",
    "AmendmentDecided",
    "AmendmentProposed",
    "ConsultationClosed",
    "ConsultationGovernmentResponded",
    "ConsultationOpened",
    "ConsultationResponseReceived",
    "ConsultationReviewRecorded",
    "CorrectionRecorded",
    "KeyRotated",
    "LedgerCreated",
    "LedgerEvent",
    "LegislativeOutcomeLinked",
    "MeetingHeld",
    "MeetingHeldInConfidence",
    "MeetingHeldWithPeople",
    "MeetingOutcomeRecorded",
    "MeetingScheduled",
    "MembershipAdded",
    "MembershipEnded",
    "MinutesAgreed",
    "OrganisationRegistered",
    "PersonErased",
    "PhaseStarted",
    "PrereleaseAccessGranted",
    "ProcessStarted",
    "ProposalIndividualSponsorRecorded",
    "ProposalRevised",
    "ProposalStatusChanged",
    "ProposalTabled",
    "PublicationEmbargoed",
    "PublicationPublished",
    "PublicationReleased",
    "PublicationSuperseded",
    "PublicationWithdrawn",
    "StrandAdded",
    "kind_of",
]


class LedgerEvent(AggregateEvent):
    """Base of every ledger event: who did it travels with what was done."""

    TOPIC: ClassVar[str]
    actor: dict[str, str]

    def apply(self, aggregate: Any) -> None:
        aggregate.when(self)


class LedgerCreated(LedgerEvent, AggregateCreated):
    """Base of events that start an aggregate's life."""

    AGGREGATE_TOPIC: ClassVar[str]


def kind_of(topic: str) -> str:
    """The subject kind named by an event topic."""
    return topic.split(".", 1)[0]


# Process -----------------------------------------------------------------------------------


class ProcessStarted(LedgerCreated):
    TOPIC = "process.started"
    AGGREGATE_TOPIC = "process"
    title: str
    summary: str


class StrandAdded(LedgerEvent):
    TOPIC = "process.strand_added"
    strand_id: str
    title: str
    summary: str


class PhaseStarted(LedgerEvent):
    TOPIC = "process.phase_started"
    phase_id: str
    title: str
    summary: str


# Organisation ------------------------------------------------------------------------------


class OrganisationRegistered(LedgerCreated):
    TOPIC = "organisation.registered"
    AGGREGATE_TOPIC = "organisation"
    name: str
    org_kind: str


class MembershipAdded(LedgerEvent):
    TOPIC = "organisation.membership_added"
    process_id: str
    group: str
    role: str


class MembershipEnded(LedgerEvent):
    TOPIC = "organisation.membership_ended"
    process_id: str
    group: str
    reason: str


# Proposal ----------------------------------------------------------------------------------


class ProposalTabled(LedgerCreated):
    TOPIC = "proposal.tabled"
    AGGREGATE_TOPIC = "proposal"
    process_id: str
    strand_id: str
    title: str
    sections: list[dict[str, str]]
    sponsor_org: str
    meeting_id: str | None


class AmendmentProposed(LedgerEvent):
    TOPIC = "proposal.amendment_proposed"
    amendment_id: str
    base_version: int
    changes: list[dict[str, str]]
    rationale: str
    proposer_org: str | None  # None: raised at a meeting that attributes no one
    meeting_id: str | None


class AmendmentDecided(LedgerEvent):
    TOPIC = "proposal.amendment_decided"
    amendment_id: str
    decision: str
    consensus: str
    dissenting_orgs: list[str]
    meeting_id: str | None
    note: str


class ProposalRevised(LedgerEvent):
    TOPIC = "proposal.revised"
    text_version: int
    based_on: int
    amendment_ids: list[str]
    sections: list[dict[str, str]]
    note: str
    meeting_id: str | None


class ProposalStatusChanged(LedgerEvent):
    TOPIC = "proposal.status_changed"
    old_status: str
    new_status: str
    reason: str
    superseded_by: str | None


class LegislativeOutcomeLinked(LedgerEvent):
    TOPIC = "proposal.legislative_outcome_linked"
    legislation: str
    provision: str
    note: str


class ProposalIndividualSponsorRecorded(LedgerEvent):
    """An individual sponsors the proposal alongside its sponsoring organisation. Their
    details (``person_id``, name, role) are personal data: ``sponsor`` is a sealed value
    ``{"person", "key_id", "nonce", "ciphertext"}`` (``ledger.vault``), readable only with
    the person's data key, which ``person.erased`` destroys."""

    TOPIC = "proposal.individual_sponsor_recorded"
    sponsor: dict[str, str]


# Meeting -----------------------------------------------------------------------------------


class MeetingScheduled(LedgerCreated):
    TOPIC = "meeting.scheduled"
    AGGREGATE_TOPIC = "meeting"
    process_id: str
    strand_id: str | None
    title: str
    starts_at: str
    disclosure: str
    convenor_org: str


class MeetingHeld(LedgerEvent):
    TOPIC = "meeting.held"
    attending_orgs: list[str]
    held_at: str


class MeetingHeldInConfidence(LedgerEvent):
    """A Chatham House or private meeting took place. The entry does not say who attended:
    one salted commitment per attending organisation, SHA-256(salt ‖ organisation id) hex,
    sorted; the salts are kept beside the log (``ledger.commitments``)."""

    TOPIC = "meeting.held_in_confidence"
    attendance_commitments: list[str]
    held_at: str


class MeetingHeldWithPeople(LedgerEvent):
    """An on-record or non-attributed meeting took place, attended by these organisations
    and by individuals whose details (name, role, organisation) are personal data: each is a
    sealed value ``{"person", "key_id", "nonce", "ciphertext"}`` (``ledger.vault``), readable
    only with the person's data key, which ``person.erased`` destroys."""

    TOPIC = "meeting.held_with_people"
    attending_orgs: list[str]
    attending_people: list[dict[str, str]]
    held_at: str


class MeetingOutcomeRecorded(LedgerEvent):
    TOPIC = "meeting.outcome_recorded"
    outcome_id: str
    items: list[dict[str, Any]]


class MinutesAgreed(LedgerEvent):
    TOPIC = "meeting.minutes_agreed"
    sha256: str
    size: int
    media_type: str


# Publication -------------------------------------------------------------------------------


class PublicationPublished(LedgerCreated):
    TOPIC = "publication.published"
    AGGREGATE_TOPIC = "publication"
    process_id: str
    pub_kind: str
    title: str
    sha256: str
    size: int
    media_type: str
    proposal_ids: list[str]
    meeting_ids: list[str]


class PublicationEmbargoed(LedgerCreated):
    """A document is committed to before its release: the entry holds a salted commitment,
    SHA-256(salt ‖ document bytes) hex, never the document's own hash, size or media type.
    The salt is kept beside the log until ``publication.released`` reveals it."""

    TOPIC = "publication.embargoed"
    AGGREGATE_TOPIC = "publication"
    process_id: str
    pub_kind: str
    title: str
    commitment: str
    release_at: str
    proposal_ids: list[str]
    meeting_ids: list[str]


class PrereleaseAccessGranted(LedgerEvent):
    TOPIC = "publication.prerelease_access_granted"
    organisation_id: str
    authorised_by: str
    reason: str


class PublicationReleased(LedgerEvent):
    """An embargoed publication is released: its SHA-256, size, media type and the salt,
    so anyone can check SHA-256(salt ‖ bytes) against the embargo entry's commitment.
    ``override_reason`` is set when an admin released it before ``release_at``."""

    TOPIC = "publication.released"
    sha256: str
    size: int
    media_type: str
    salt: str
    override_reason: str | None


class PublicationWithdrawn(LedgerEvent):
    TOPIC = "publication.withdrawn"
    reason: str


class PublicationSuperseded(LedgerEvent):
    TOPIC = "publication.superseded"
    superseded_by: str
    reason: str


# Consultation ------------------------------------------------------------------------------


class ConsultationOpened(LedgerCreated):
    """A public consultation opens: its questions (``{"id", "text"}``), the SHA-256 of each
    consultation document (uploaded beforehand) and when it closes (RFC 3339 UTC)."""

    TOPIC = "consultation.opened"
    AGGREGATE_TOPIC = "consultation"
    process_id: str
    title: str
    questions: list[dict[str, str]]
    documents: list[str]
    closes_at: str


class ConsultationResponseReceived(LedgerEvent):
    """A response arrived, from an organisation (``org_id``, its ``answers`` public) or from
    an individual: ``respondent`` is their personal details sealed under their data key
    (``ledger.vault``), and their ``answers`` are public only with ``consent_to_publish``;
    without it they are in ``sealed_answers`` (sealed the same way) and ``answers`` is null.
    Answers are ``{"question_id", "text"}``."""

    TOPIC = "consultation.response_received"
    response_id: str
    org_id: str | None
    respondent: dict[str, str] | None
    consent_to_publish: bool | None
    answers: list[dict[str, str]] | None
    sealed_answers: dict[str, str] | None


class ConsultationClosed(LedgerEvent):
    TOPIC = "consultation.closed"
    note: str


class ConsultationReviewRecorded(LedgerEvent):
    """An external review (e.g. an advisory group's) of a closed consultation: its findings
    and its recommendations (``{"id", "text"}``)."""

    TOPIC = "consultation.review_recorded"
    reviewer_org: str
    findings: list[str]
    recommendations: list[dict[str, str]]


class ConsultationGovernmentResponded(LedgerEvent):
    """The government's response to one recommendation: accepted, partly or rejected."""

    TOPIC = "consultation.government_responded"
    recommendation_id: str
    response: str
    text: str


# Correction --------------------------------------------------------------------------------


class CorrectionRecorded(LedgerCreated):
    TOPIC = "correction.recorded"
    AGGREGATE_TOPIC = "correction"
    corrects_index: int
    corrects_type: str
    reason: str
    correction: dict[str, Any]


# The log itself ----------------------------------------------------------------------------


class KeyRotated(LedgerCreated):
    """The log's signing key changes: this entry's checkpoint is signed by ``old_key``,
    every later checkpoint by ``new_key`` (verifier key lines, DESIGN §3)."""

    TOPIC = "log.key_rotated"
    AGGREGATE_TOPIC = "log"
    old_key: str
    new_key: str
    reason: str


# Personal data -----------------------------------------------------------------------------


class PersonErased(LedgerCreated):
    """A person's personal data was erased: their data keys were destroyed, so every value
    sealed for them (in any entry, copy or backup) is unreadable. Names no personal data:
    the person's opaque id, the legal basis and who authorised it."""

    TOPIC = "person.erased"
    AGGREGATE_TOPIC = "person"
    person_id: str
    legal_basis: str
    authorised_by: str
    keys_destroyed: int


# Officials' API tokens ---------------------------------------------------------------------


class AccessTokenIssued(LedgerCreated):
    """An API token was issued to ``principal`` acting for ``org`` in ``role``.

    The token's secret is never in the log: only its id (this entry's subject) is, and the
    store keeps a salted hash beside the log to authenticate it.
    """

    TOPIC = "access_token.issued"
    AGGREGATE_TOPIC = "access_token"
    principal: str
    org: str
    role: str
    note: str


class AccessTokenRevoked(LedgerEvent):
    TOPIC = "access_token.revoked"
    reason: str


ALL_EVENTS: tuple[type[LedgerEvent], ...] = (
    ProcessStarted,
    StrandAdded,
    PhaseStarted,
    OrganisationRegistered,
    MembershipAdded,
    MembershipEnded,
    ProposalTabled,
    AmendmentProposed,
    AmendmentDecided,
    ProposalRevised,
    ProposalStatusChanged,
    LegislativeOutcomeLinked,
    ProposalIndividualSponsorRecorded,
    MeetingScheduled,
    MeetingHeld,
    MeetingHeldInConfidence,
    MeetingHeldWithPeople,
    MeetingOutcomeRecorded,
    MinutesAgreed,
    PublicationPublished,
    PublicationEmbargoed,
    PrereleaseAccessGranted,
    PublicationReleased,
    PublicationWithdrawn,
    PublicationSuperseded,
    ConsultationOpened,
    ConsultationResponseReceived,
    ConsultationClosed,
    ConsultationReviewRecorded,
    ConsultationGovernmentResponded,
    CorrectionRecorded,
    KeyRotated,
    AccessTokenIssued,
    AccessTokenRevoked,
    PersonErased,
)

for _event_class in ALL_EVENTS:
    register_topic(_event_class.TOPIC, _event_class)
