"""Officials' writes: one endpoint per domain command, each answering a receipt.

Every write needs a bearer token whose role allows it (recorder: the process, organisations,
proposals and meetings; publisher: publications; admin: everything, and corrections and
tokens). Bodies are JSON objects with exactly the fields listed: an unknown field is a 422.
Every answer is the receipt of the one entry the write appended — its index, entry hash and
bytes, the signed checkpoint committed with it and the inclusion proof in that checkpoint —
with ``ETag`` the record's new version (send it back as ``If-Match`` on the next change).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import ADMIN, PUBLISH, RECORD, Principal, authenticate
from api.errors import ProblemError
from api.responses import JSONResponse
from api.writing import receipt_response, run_write, token_checked
from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.storage.side import SideStore

__all__ = [
    "WRITE_RESPONSES",
    "AmendmentIn",
    "AnswerIn",
    "AttendanceProofOut",
    "ChangeIn",
    "ConsultationCloseIn",
    "ConsultationIn",
    "ConsultationResponseIn",
    "CorrectionIn",
    "DecisionIn",
    "EmbargoIn",
    "GovernmentResponseIn",
    "HeldIn",
    "InclusionProof",
    "IndividualSponsorIn",
    "LegislativeOutcomeIn",
    "MeetingIn",
    "MembershipEndIn",
    "MembershipIn",
    "MinutesIn",
    "OrganisationIn",
    "OutcomeIn",
    "PersonIn",
    "PhaseIn",
    "PrereleaseAccessIn",
    "ProcessIn",
    "ProposalIn",
    "PublicationIn",
    "QuestionIn",
    "ReceiptOut",
    "RecommendationIn",
    "ReleaseIn",
    "RespondentIn",
    "ReviewIn",
    "RevisionIn",
    "RevocationIn",
    "SectionIn",
    "StatusIn",
    "StrandIn",
    "Strict",
    "Subject",
    "SupersessionIn",
    "TokenIn",
    "TokenOut",
    "WithdrawalIn",
    "router",
]

router = APIRouter(tags=["officials"])

Text = Annotated[str, Field(max_length=20_000)]
Short = Annotated[str, Field(max_length=500)]
Id = Annotated[str, Field(max_length=100)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InclusionProof(BaseModel):
    tree_size: int
    hashes: list[str]


class Subject(BaseModel):
    id: str
    kind: str
    version: int


class ReceiptOut(BaseModel):
    """The receipt of a write: the entry, the checkpoint that covers it, and the proof."""

    index: int
    entry_hash: str = Field(description="SHA-256 of the entry bytes, hex")
    entry: str = Field(description="the entry's canonical JSON, verbatim")
    checkpoint: str = Field(description="the C2SP signed note committed with the entry")
    inclusion_proof: InclusionProof
    type: str
    subject: Subject
    as_of_index: int


class TokenOut(ReceiptOut):
    token: str = Field(description="the API token: shown once, never stored")
    token_id: str


def _official(roles: frozenset[str]) -> Any:
    def dependency(request: Request) -> Principal:
        return authenticate(request, roles)

    return Depends(dependency)


Recorder = Annotated[Principal, _official(RECORD)]
Publisher = Annotated[Principal, _official(PUBLISH)]
Admin = Annotated[Principal, _official(ADMIN)]


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("Malformed header (If-Match, Idempotency-Key) or parameter"),
    401: _problem("No token, not a token, or a revoked token"),
    403: _problem("The token's role may not do this"),
    404: _problem("A record the command names does not exist"),
    409: _problem("The record changed: If-Match names an older version, or a race was lost"),
    413: _problem("The body is larger than the limit"),
    415: _problem("The body is not application/json"),
    422: _problem("The body does not fit the command, or the process rules refuse it"),
    429: _problem("This token's write budget is spent; see Retry-After"),
    503: _problem("The ledger store is unavailable; nothing was recorded"),
}
CREATED: dict[int | str, dict[str, Any]] = {
    201: {"model": ReceiptOut, "description": "Recorded; Location names the new record"}
}
CHANGED: dict[int | str, dict[str, Any]] = {200: {"model": ReceiptOut, "description": "Recorded"}}


def _body(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


# process -----------------------------------------------------------------------------------


class ProcessIn(Strict):
    title: Short
    summary: Text = ""
    id: UUID | None = None


class StrandIn(Strict):
    strand_id: Id
    title: Short
    summary: Text = ""


class PhaseIn(Strict):
    phase_id: Id
    title: Short
    summary: Text = ""


@router.post(
    "/processes",
    status_code=201,
    responses={**CREATED, **WRITE_RESPONSES},
    summary="Start recording a policy process",
)
def start_process(body: ProcessIn, request: Request, who: Recorder) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, _: int | None) -> Any:
        return app.start_process(title=body.title, summary=body.summary, actor=actor, id=body.id)

    return run_write(request, who, command, body=_body(body), created="/processes")


@router.post(
    "/processes/{process_id}/strands",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Add a policy strand",
)
def add_strand(process_id: Id, body: StrandIn, request: Request, who: Recorder) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.add_strand(
            process_id,
            strand_id=body.strand_id,
            title=body.title,
            summary=body.summary,
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


@router.post(
    "/processes/{process_id}/phases",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Move the process into a new phase",
)
def start_phase(process_id: Id, body: PhaseIn, request: Request, who: Recorder) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.start_phase(
            process_id,
            phase_id=body.phase_id,
            title=body.title,
            summary=body.summary,
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


# organisations -----------------------------------------------------------------------------


class OrganisationIn(Strict):
    name: Short
    org_kind: Id
    id: UUID | None = None


class MembershipIn(Strict):
    process_id: Id
    group: Short
    role: Short = "member"


class MembershipEndIn(Strict):
    process_id: Id
    group: Short
    reason: Text = ""


@router.post(
    "/organisations",
    status_code=201,
    responses={**CREATED, **WRITE_RESPONSES},
    summary="Register a participating organisation",
)
def register_organisation(body: OrganisationIn, request: Request, who: Recorder) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, _: int | None) -> Any:
        return app.register_organisation(
            name=body.name, org_kind=body.org_kind, actor=actor, id=body.id
        )

    return run_write(request, who, command, body=_body(body), created="/organisations")


@router.post(
    "/organisations/{organisation_id}/memberships",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="An organisation joins a strand or group",
)
def add_membership(
    organisation_id: Id, body: MembershipIn, request: Request, who: Recorder
) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.add_membership(
            organisation_id,
            process_id=body.process_id,
            group=body.group,
            role=body.role,
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


@router.post(
    "/organisations/{organisation_id}/memberships/end",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="An organisation leaves a strand or group",
)
def end_membership(
    organisation_id: Id, body: MembershipEndIn, request: Request, who: Recorder
) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.end_membership(
            organisation_id,
            process_id=body.process_id,
            group=body.group,
            reason=body.reason,
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


# proposals ---------------------------------------------------------------------------------


class SectionIn(Strict):
    id: Id
    heading: Short = ""
    text: Text = ""


class ChangeIn(Strict):
    op: Annotated[str, Field(pattern="^(replace|insert|delete)$")]
    section_id: Id
    after: Id | None = None
    heading: Short | None = None
    text: Text | None = None


class ProposalIn(Strict):
    process_id: Id
    strand_id: Id
    title: Short
    sections: Annotated[list[SectionIn], Field(min_length=1, max_length=500)]
    sponsor_org: Id
    meeting_id: Id | None = None
    id: UUID | None = None


class AmendmentIn(Strict):
    base_version: int = Field(
        ge=1, le=2**31, description="the text version the changes are against"
    )
    changes: Annotated[list[ChangeIn], Field(min_length=1, max_length=500)]
    rationale: Text = ""
    proposer_org: Id | None = Field(
        None,
        description="the proposing organisation; leave it out (only) when the amendment was "
        "raised at a non-attributed, Chatham House or private meeting, which attributes no one",
    )
    meeting_id: Id | None = None


class DecisionIn(Strict):
    decision: Id
    consensus: Id
    dissenting_orgs: Annotated[list[Id], Field(max_length=500)] = []
    meeting_id: Id | None = None
    note: Text = ""


class RevisionIn(Strict):
    base_version: int = Field(ge=1, le=2**31, description="the current text version being revised")
    amendment_ids: Annotated[list[Id], Field(max_length=500)] = []
    sections: Annotated[list[SectionIn], Field(min_length=1, max_length=500)] | None = None
    note: Text = ""
    meeting_id: Id | None = None


class StatusIn(Strict):
    new_status: Id
    reason: Text = ""
    superseded_by: Id | None = None


class LegislativeOutcomeIn(Strict):
    legislation: Short
    provision: Short = ""
    note: Text = ""


def _changes(changes: list[ChangeIn]) -> list[dict[str, str]]:
    return [{k: v for k, v in c.model_dump().items() if v is not None} for c in changes]


@router.post(
    "/proposals",
    status_code=201,
    responses={**CREATED, **WRITE_RESPONSES},
    summary="Table a proposal (text version 1)",
)
def table_proposal(body: ProposalIn, request: Request, who: Recorder) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, _: int | None) -> Any:
        return app.table_proposal(
            process_id=body.process_id,
            strand_id=body.strand_id,
            title=body.title,
            sections=[s.model_dump() for s in body.sections],
            sponsor_org=body.sponsor_org,
            meeting_id=body.meeting_id,
            actor=actor,
            id=body.id,
        )

    return run_write(request, who, command, body=_body(body), created="/proposals")


@router.post(
    "/proposals/{proposal_id}/amendments",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Propose an amendment against a named text version",
)
def propose_amendment(
    proposal_id: Id, body: AmendmentIn, request: Request, who: Recorder
) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.propose_amendment(
            proposal_id,
            base_version=body.base_version,
            changes=_changes(body.changes),
            rationale=body.rationale,
            proposer_org=body.proposer_org,
            meeting_id=body.meeting_id,
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


@router.post(
    "/proposals/{proposal_id}/amendments/{amendment_id}/decision",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Decide an amendment: consensus state and dissent",
)
def decide_amendment(
    proposal_id: Id, amendment_id: Id, body: DecisionIn, request: Request, who: Recorder
) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.decide_amendment(
            proposal_id,
            amendment_id=amendment_id,
            decision=body.decision,
            consensus=body.consensus,
            dissenting_orgs=body.dissenting_orgs,
            meeting_id=body.meeting_id,
            note=body.note,
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


@router.post(
    "/proposals/{proposal_id}/revisions",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Consolidate agreed amendments into the next text version",
)
def revise_proposal(
    proposal_id: Id, body: RevisionIn, request: Request, who: Recorder
) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.revise_proposal(
            proposal_id,
            base_version=body.base_version,
            amendment_ids=body.amendment_ids,
            sections=None if body.sections is None else [s.model_dump() for s in body.sections],
            note=body.note,
            meeting_id=body.meeting_id,
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


@router.post(
    "/proposals/{proposal_id}/status",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Move a proposal to a new status",
)
def change_status(proposal_id: Id, body: StatusIn, request: Request, who: Recorder) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.change_proposal_status(
            proposal_id,
            new_status=body.new_status,
            reason=body.reason,
            superseded_by=body.superseded_by,
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


@router.post(
    "/proposals/{proposal_id}/legislative-outcomes",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Link the legislation that carried a proposal",
)
def link_legislative_outcome(
    proposal_id: Id, body: LegislativeOutcomeIn, request: Request, who: Recorder
) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.link_legislative_outcome(
            proposal_id,
            legislation=body.legislation,
            provision=body.provision,
            note=body.note,
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


class IndividualSponsorIn(Strict):
    person_id: Annotated[
        str,
        Field(
            max_length=64,
            description="a UUID or an opaque id (16-64 letters, digits, - or _): it stays in "
            "the log after erasure, so never an e-mail address or a name",
        ),
    ]
    name: Short
    role: Short | None = None


@router.post(
    "/proposals/{proposal_id}/individual-sponsors",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Record an individual sponsoring a proposal (personal data: sealed, never published)",
)
def record_individual_sponsor(
    proposal_id: Id, body: IndividualSponsorIn, request: Request, who: Recorder
) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.record_individual_sponsor(
            proposal_id,
            person=body.model_dump(exclude_none=True),
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


# meetings ----------------------------------------------------------------------------------


class MeetingIn(Strict):
    process_id: Id
    strand_id: Id | None = None
    title: Short
    starts_at: Annotated[str, Field(max_length=40, description="RFC 3339 time")]
    disclosure: Id = "on_record"
    convenor_org: Id
    id: UUID | None = None


class PersonIn(Strict):
    person_id: Annotated[
        str,
        Field(
            max_length=64,
            description="a UUID or an opaque id (16-64 letters, digits, - or _): it stays in "
            "the log after erasure, so never an e-mail address or a name",
        ),
    ]
    name: Short
    role: Short | None = None
    org: Short | None = None


class HeldIn(Strict):
    attending_orgs: Annotated[list[Id], Field(max_length=1000)]
    held_at: Annotated[str, Field(max_length=40, description="RFC 3339 time")]
    attending_people: Annotated[list[PersonIn], Field(max_length=500)] | None = Field(
        default=None,
        description="individuals who attended (on-record and non-attributed meetings): "
        "personal data, sealed in the entry and never published",
    )


class OutcomeIn(Strict):
    items: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=500)]


class MinutesIn(Strict):
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")] = Field(
        description="SHA-256 of minutes already uploaded with POST /documents"
    )


@router.post(
    "/meetings",
    status_code=201,
    responses={**CREATED, **WRITE_RESPONSES},
    summary="Schedule a meeting with its disclosure mode",
)
def schedule_meeting(body: MeetingIn, request: Request, who: Recorder) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, _: int | None) -> Any:
        return app.schedule_meeting(
            process_id=body.process_id,
            strand_id=body.strand_id,
            title=body.title,
            starts_at=body.starts_at,
            disclosure=body.disclosure,
            convenor_org=body.convenor_org,
            actor=actor,
            id=body.id,
        )

    return run_write(request, who, command, body=_body(body), created="/meetings")


@router.post(
    "/meetings/{meeting_id}/held",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Record that a meeting took place, and who attended",
)
def meeting_held(meeting_id: Id, body: HeldIn, request: Request, who: Recorder) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.record_meeting_held(
            meeting_id,
            attending_orgs=body.attending_orgs,
            held_at=body.held_at,
            actor=actor,
            expected_version=expected,
            attending_people=[p.model_dump(exclude_none=True) for p in body.attending_people or []],
        )

    return run_write(request, who, command, body=_body(body))


@router.post(
    "/meetings/{meeting_id}/outcomes",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Record a meeting's decisions, actions, agreements and options",
)
def meeting_outcome(
    meeting_id: Id, body: OutcomeIn, request: Request, who: Recorder
) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.record_meeting_outcome(
            meeting_id, items=body.items, actor=actor, expected_version=expected
        )

    return run_write(request, who, command, body=_body(body))


def _document(request: Request, who: Principal, sha256: str, field: str) -> tuple[int, str]:
    """Size and media type of the stored document ``sha256`` a command names.

    One ``who`` may not read (the read rule of ``api.routes.documents``) is answered exactly
    as one not stored: the answer tells no one whether guessed bytes are held. One under an
    embargo not yet released may be named only by publishers and admins (who may release
    it): minutes, a publication or a consultation naming it would publish it early.
    """
    from api.routes.documents import _access  # it imports this module

    side: SideStore = request.app.state.side
    found = side.document(sha256, content=False)
    access = _access(request, who, sha256)  # also when not stored: the same work, either way
    if found is None or not access.allowed:
        raise ProblemError(
            422,
            "Unknown document",
            f"no uploaded document has SHA-256 {sha256}: upload it with POST /documents first",
            field=field,
        )
    if access.embargoed and who.actor.role not in PUBLISH:
        # Tells one who holds the bytes that they are under embargo: logged, so guessing shows.
        logging.getLogger("ledger.embargo").warning(
            "embargoed document %s (publication %s) named before release by %s of %s (token "
            "%s): refused",
            sha256,
            ", ".join(access.embargoed),
            who.actor.id,
            who.actor.org or "no organisation",
            who.token_id,
        )
        raise ProblemError(
            422,
            "Document under embargo",
            f"document {sha256} is under an embargo not yet released: naming it here would "
            "publish it before its release; a publisher or admin may release it first",
            field=field,
        )
    return found.size, found.media_type


@router.post(
    "/meetings/{meeting_id}/minutes",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Record the agreed minutes (uploaded first) by their SHA-256",
)
def agree_minutes(meeting_id: Id, body: MinutesIn, request: Request, who: Recorder) -> JSONResponse:
    size, media_type = _document(request, who, body.sha256, "sha256")

    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.agree_minutes(
            meeting_id,
            sha256=body.sha256,
            size=size,
            media_type=media_type,
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


# consultations -----------------------------------------------------------------------------


class QuestionIn(Strict):
    id: Id
    text: Text


class ConsultationIn(Strict):
    process_id: Id
    title: Short
    questions: Annotated[list[QuestionIn], Field(min_length=1, max_length=500)]
    documents: Annotated[
        list[Annotated[str, Field(pattern="^[0-9a-f]{64}$")]], Field(max_length=100)
    ] = Field(default=[], description="SHA-256 of documents already uploaded with POST /documents")
    closes_at: Annotated[str, Field(max_length=40, description="RFC 3339 UTC time")]
    id: UUID | None = None


class AnswerIn(Strict):
    question_id: Id
    text: Text


class RespondentIn(Strict):
    person_id: Annotated[
        str,
        Field(
            max_length=64,
            description="a UUID or an opaque id (16-64 letters, digits, - or _): it stays in "
            "the log after erasure, so never an e-mail address or a name",
        ),
    ]
    name: Short
    email: Short | None = None


class ConsultationResponseIn(Strict):
    org_id: Id | None = Field(
        default=None, description="the responding organisation: its answers are public"
    )
    individual: RespondentIn | None = Field(
        default=None,
        description="an individual respondent: personal data, sealed in the entry and never "
        "published; their answers are public only with consent_to_publish",
    )
    consent_to_publish: bool = False
    answers: Annotated[list[AnswerIn], Field(min_length=1, max_length=500)]


class ConsultationCloseIn(Strict):
    note: Text = ""


class RecommendationIn(Strict):
    id: Id
    text: Text


class ReviewIn(Strict):
    reviewer_org: Id = Field(description="the reviewing organisation, e.g. an advisory group")
    findings: Annotated[list[Text], Field(min_length=1, max_length=500)]
    recommendations: Annotated[list[RecommendationIn], Field(max_length=500)] = []


class GovernmentResponseIn(Strict):
    recommendation_id: Id
    response: Annotated[str, Field(description="accepted, partly or rejected")]
    text: Text


@router.post(
    "/consultations",
    status_code=201,
    responses={**CREATED, **WRITE_RESPONSES},
    summary="Open a consultation on its questions and documents",
)
def open_consultation(body: ConsultationIn, request: Request, who: Recorder) -> JSONResponse:
    for i, sha256 in enumerate(body.documents):
        _document(request, who, sha256, f"documents[{i}]")

    def command(app: LedgerApplication, actor: Actor, _: int | None) -> Any:
        return app.open_consultation(
            process_id=body.process_id,
            title=body.title,
            questions=[q.model_dump() for q in body.questions],
            documents=body.documents,
            closes_at=body.closes_at,
            actor=actor,
            id=body.id,
        )

    return run_write(request, who, command, body=_body(body), created="/consultations")


@router.post(
    "/consultations/{consultation_id}/responses",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Record a response: an organisation's (public) or an individual's (sealed)",
)
def consultation_response(
    consultation_id: Id, body: ConsultationResponseIn, request: Request, who: Recorder
) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.record_consultation_response(
            consultation_id,
            answers=[a.model_dump() for a in body.answers],
            org_id=body.org_id,
            individual=body.individual.model_dump(exclude_none=True) if body.individual else None,
            consent_to_publish=body.consent_to_publish,
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


@router.post(
    "/consultations/{consultation_id}/close",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Close a consultation: no more responses",
)
def close_consultation(
    consultation_id: Id, body: ConsultationCloseIn, request: Request, who: Recorder
) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.close_consultation(
            consultation_id, note=body.note, actor=actor, expected_version=expected
        )

    return run_write(request, who, command, body=_body(body))


@router.post(
    "/consultations/{consultation_id}/review",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Record an external review of a closed consultation",
)
def consultation_review(
    consultation_id: Id, body: ReviewIn, request: Request, who: Recorder
) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.record_consultation_review(
            consultation_id,
            reviewer_org=body.reviewer_org,
            findings=body.findings,
            recommendations=[r.model_dump() for r in body.recommendations],
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


@router.post(
    "/consultations/{consultation_id}/government-response",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Record the government's response to one recommendation of the review",
)
def government_response(
    consultation_id: Id, body: GovernmentResponseIn, request: Request, who: Recorder
) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.record_government_response(
            consultation_id,
            recommendation_id=body.recommendation_id,
            response=body.response,
            text=body.text,
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


# publications ------------------------------------------------------------------------------


class PublicationIn(Strict):
    process_id: Id
    pub_kind: Id
    title: Short
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")] = Field(
        description="SHA-256 of the document already uploaded with POST /documents"
    )
    proposal_ids: Annotated[list[Id], Field(max_length=500)] = []
    meeting_ids: Annotated[list[Id], Field(max_length=500)] = []
    id: UUID | None = None


class WithdrawalIn(Strict):
    reason: Text


class SupersessionIn(Strict):
    superseded_by: Id
    reason: Text = ""


@router.post(
    "/publications",
    status_code=201,
    responses={**CREATED, **WRITE_RESPONSES},
    summary="Publish an uploaded document: its hash, size and type are recorded",
)
def publish(body: PublicationIn, request: Request, who: Publisher) -> JSONResponse:
    size, media_type = _document(request, who, body.sha256, "sha256")

    def command(app: LedgerApplication, actor: Actor, _: int | None) -> Any:
        return app.publish(
            process_id=body.process_id,
            pub_kind=body.pub_kind,
            title=body.title,
            sha256=body.sha256,
            size=size,
            media_type=media_type,
            proposal_ids=body.proposal_ids,
            meeting_ids=body.meeting_ids,
            actor=actor,
            id=body.id,
        )

    return run_write(request, who, command, body=_body(body), created="/publications")


@router.post(
    "/publications/{publication_id}/withdrawal",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Withdraw a publication (its record and hash stay in the log)",
)
def withdraw(
    publication_id: Id, body: WithdrawalIn, request: Request, who: Publisher
) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.withdraw_publication(
            publication_id, reason=body.reason, actor=actor, expected_version=expected
        )

    return run_write(request, who, command, body=_body(body))


@router.post(
    "/publications/{publication_id}/supersession",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Mark a publication superseded by a later one",
)
def supersede(
    publication_id: Id, body: SupersessionIn, request: Request, who: Publisher
) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.supersede_publication(
            publication_id,
            superseded_by=body.superseded_by,
            reason=body.reason,
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


# embargoed publications ----------------------------------------------------------------------


class EmbargoIn(Strict):
    process_id: Id
    pub_kind: Id
    title: Short
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")] = Field(
        description="SHA-256 of the document already uploaded with POST /documents; only a "
        "salted commitment to it is recorded until the release"
    )
    release_at: Annotated[str, Field(max_length=40)] = Field(
        description="scheduled release, RFC 3339 UTC (e.g. 2026-03-01T09:30:00Z)"
    )
    proposal_ids: Annotated[list[Id], Field(max_length=500)] = []
    meeting_ids: Annotated[list[Id], Field(max_length=500)] = []
    id: UUID | None = None


class PrereleaseAccessIn(Strict):
    organisation_id: Id
    authorised_by: Short = Field(description="who authorised the access")
    reason: Text


class ReleaseIn(Strict):
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")] = Field(
        description="SHA-256 of the uploaded document to release: it must be the one the "
        "embargo committed to"
    )
    override_reason: Text | None = Field(
        default=None, description="admins only: why it is released before release_at"
    )


def _document_bytes(request: Request, sha256: str) -> tuple[bytes, str]:
    side: SideStore = request.app.state.side
    found = side.document(sha256)
    if found is None or found.content is None:
        raise ProblemError(
            422,
            "Unknown document",
            f"no uploaded document has SHA-256 {sha256}: upload it with POST /documents first",
        )
    return found.content, found.media_type


@router.post(
    "/publications/embargoed",
    status_code=201,
    responses={**CREATED, **WRITE_RESPONSES},
    summary="Record a publication under embargo: only a salted commitment to the document",
)
def embargo(body: EmbargoIn, request: Request, who: Publisher) -> JSONResponse:
    content, _ = _document_bytes(request, body.sha256)

    def command(app: LedgerApplication, actor: Actor, _: int | None) -> Any:
        return app.embargo_publication(
            process_id=body.process_id,
            pub_kind=body.pub_kind,
            title=body.title,
            document=content,
            release_at=body.release_at,
            proposal_ids=body.proposal_ids,
            meeting_ids=body.meeting_ids,
            actor=actor,
            id=body.id,
        )

    return run_write(request, who, command, body=_body(body), created="/publications")


@router.post(
    "/publications/{publication_id}/prerelease-access",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Record that an organisation may see an embargoed document before its release",
)
def prerelease_access(
    publication_id: Id, body: PrereleaseAccessIn, request: Request, who: Publisher
) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.grant_prerelease_access(
            publication_id,
            organisation_id=body.organisation_id,
            authorised_by=body.authorised_by,
            reason=body.reason,
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


@router.post(
    "/publications/{publication_id}/release",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Release an embargoed publication: its hash, size, media type and salt",
)
def release(publication_id: Id, body: ReleaseIn, request: Request, who: Publisher) -> JSONResponse:
    if body.override_reason is not None and who.actor.role != "admin":
        raise ProblemError(
            403,
            "Not allowed",
            f"a {who.actor.role} token cannot release before the scheduled time; an admin "
            "token may, with override_reason",
        )
    content, media_type = _document_bytes(request, body.sha256)

    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.release_publication(
            publication_id,
            document=content,
            media_type=media_type,
            override_reason=body.override_reason,
            actor=actor,
            expected_version=expected,
        )

    return run_write(request, who, command, body=_body(body))


# attendance proofs (admin) ------------------------------------------------------------------


class AttendanceProofOut(BaseModel):
    """That one organisation attended a Chatham House or private meeting, checkably:
    SHA-256(bytes.fromhex(salt) ‖ UTF-8 of organisation) is ``commitment``, which is
    ``attendance_commitments[position]`` of the entry at ``index`` (``entry``, verbatim)."""

    meeting_id: str
    organisation: str
    salt: str = Field(description="the commitment's 32-byte salt, hex")
    commitment: str
    position: int = Field(description="the commitment's place in attendance_commitments")
    index: int = Field(description="the log index of the meeting.held_in_confidence entry")
    entry: str = Field(description="that entry's canonical JSON, verbatim")


def _admin_reading(request: Request) -> Principal:
    return authenticate(request, ADMIN, write=False)


@router.get(
    "/meetings/{meeting_id}/attendance-proof",
    response_model=AttendanceProofOut,
    responses={k: v for k, v in WRITE_RESPONSES.items() if k in (400, 401, 403, 404, 422, 503)},
    summary="Admins: show that an organisation attended a Chatham House or private meeting",
)
def attendance_proof(
    meeting_id: Id,
    request: Request,
    _who: Annotated[Principal, Depends(_admin_reading)],
    organisation: Annotated[str, Query(max_length=100, description="the organisation's id")],
) -> JSONResponse:
    app: LedgerApplication = request.app.state.ledger
    return JSONResponse(app.attendance_proof(meeting_id, organisation))


# corrections and tokens (admin) --------------------------------------------------------------


class CorrectionIn(Strict):
    corrects_index: int = Field(ge=0, le=2**53)
    reason: Text
    correction: dict[str, Any]
    id: UUID | None = None


class TokenIn(Strict):
    principal: Short
    org: Id = ""
    role: Annotated[str, Field(pattern="^(recorder|publisher|admin)$")]
    note: Text = ""


class RevocationIn(Strict):
    reason: Text


@router.post(
    "/corrections",
    status_code=201,
    responses={**CREATED, **WRITE_RESPONSES},
    summary="Correct an earlier entry by a new entry pointing at it",
)
def correct(body: CorrectionIn, request: Request, who: Admin) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, _: int | None) -> Any:
        return app.record_correction(
            corrects_index=body.corrects_index,
            reason=body.reason,
            correction=body.correction,
            actor=actor,
            id=body.id,
        )

    return run_write(request, who, command, body=_body(body), created="/entries/{index}")


@router.post(
    "/tokens",
    status_code=201,
    responses={201: {"model": TokenOut, "description": "Issued"}, **WRITE_RESPONSES},
    summary="Issue an official an API token (shown once)",
)
def issue_token(body: TokenIn, request: Request, who: Admin) -> JSONResponse:
    app: LedgerApplication = request.app.state.ledger
    with token_checked(app, who):  # the admin's token is re-checked under the write lock
        receipt, token = app.issue_token(
            principal=body.principal, org=body.org, role=body.role, note=body.note, actor=who.actor
        )
    # Not idempotent by key: a replay could not show the secret again.
    return receipt_response(
        receipt, status=201, extra={"token": token, "token_id": receipt.subject_id}
    )


@router.post(
    "/tokens/{token_id}/revocation",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Revoke an API token (at once, on every replica)",
)
def revoke_token(token_id: Id, body: RevocationIn, request: Request, who: Admin) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, expected: int | None) -> Any:
        return app.revoke_token(
            token_id, reason=body.reason, actor=actor, expected_version=expected
        )

    return run_write(request, who, command, body=_body(body))
