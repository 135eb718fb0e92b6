"""Personal data of individuals (``ledger.vault``): officials read it, admins erase it.

Individual attendees of a meeting (and individual sponsors of a proposal, and individual
respondents to a consultation) are in the log only sealed, under a data key of each
person's own; the public answers show how many attended, never who. Officials (recorder or
admin) read them decrypted here; an admin's erasure destroys the person's keys, after which
every copy of their data is noise and this endpoint says they were erased.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import RECORD, Principal, authenticate
from api.responses import JSONResponse
from api.routes.writes import CHANGED, WRITE_RESPONSES, Admin, Id, Short, Strict, Text, _body
from api.writing import run_write
from ledger.actors import Actor
from ledger.application import LedgerApplication

__all__ = [
    "READ_RESPONSES",
    "AttendeeOut",
    "AttendeesOut",
    "ErasureIn",
    "IndividualSponsorOut",
    "IndividualSponsorsOut",
    "RespondentOut",
    "RespondentsOut",
    "router",
]

router = APIRouter(tags=["officials"])


class ErasureIn(Strict):
    legal_basis: Text = Field(description="why the data is erased, e.g. UK GDPR Art. 17(1)(a)")
    authorised_by: Short = Field(description="who authorised the erasure (a role or office)")


class AttendeeOut(BaseModel):
    """One individual attendee: decrypted, or only the id once the person was erased."""

    model_config = ConfigDict(extra="forbid")

    person: str = Field(description="the person's opaque id (the key reference in the entry)")
    erased: bool
    name: str | None = None
    role: str | None = None
    org: str | None = None


class AttendeesOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    meeting_id: str
    attendees: list[AttendeeOut]


READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    k: v for k, v in WRITE_RESPONSES.items() if k in (400, 401, 403, 404, 422, 503)
}


def _private(body: dict[str, Any]) -> JSONResponse:
    """Decrypted personal data: answered, never stored by any cache on the way."""
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _official_reading(request: Request) -> Principal:
    return authenticate(request, RECORD, write=False)


@router.get(
    "/meetings/{meeting_id}/attendees",
    response_model=AttendeesOut,
    responses=READ_RESPONSES,
    summary="Officials: the individuals who attended a meeting, decrypted (personal data)",
)
def meeting_attendees(
    meeting_id: Id,
    request: Request,
    _who: Annotated[Principal, Depends(_official_reading)],
) -> JSONResponse:
    app: LedgerApplication = request.app.state.ledger
    attendees = app.meeting_attendees(meeting_id)
    return _private({"meeting_id": str(app.get_meeting(meeting_id).id), "attendees": attendees})


class RespondentOut(BaseModel):
    """One individual respondent: decrypted, or only the id once the person was erased."""

    model_config = ConfigDict(extra="forbid")

    person: str = Field(description="the person's opaque id (the key reference in the entry)")
    erased: bool
    name: str | None = None
    email: str | None = None


class RespondentsOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    consultation_id: str
    respondents: list[RespondentOut]


@router.get(
    "/consultations/{consultation_id}/respondents",
    response_model=RespondentsOut,
    responses=READ_RESPONSES,
    summary="Officials: the individuals who responded to a consultation, decrypted",
)
def consultation_respondents(
    consultation_id: Id,
    request: Request,
    _who: Annotated[Principal, Depends(_official_reading)],
) -> JSONResponse:
    app: LedgerApplication = request.app.state.ledger
    respondents = app.consultation_respondents(consultation_id)
    return _private(
        {
            "consultation_id": str(app.get_consultation(consultation_id).id),
            "respondents": respondents,
        }
    )


class IndividualSponsorOut(BaseModel):
    """One individual sponsor: decrypted, or only the id once the person was erased."""

    model_config = ConfigDict(extra="forbid")

    person: str = Field(description="the person's opaque id (the key reference in the entry)")
    erased: bool
    name: str | None = None
    role: str | None = None


class IndividualSponsorsOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    proposal_id: str
    individual_sponsors: list[IndividualSponsorOut]


@router.get(
    "/proposals/{proposal_id}/individual-sponsors",
    response_model=IndividualSponsorsOut,
    responses=READ_RESPONSES,
    summary="Officials: the individuals who sponsor a proposal, decrypted (personal data)",
)
def proposal_individual_sponsors(
    proposal_id: Id,
    request: Request,
    _who: Annotated[Principal, Depends(_official_reading)],
) -> JSONResponse:
    app: LedgerApplication = request.app.state.ledger
    sponsors = app.proposal_individual_sponsors(proposal_id)
    return _private(
        {"proposal_id": str(app.get_proposal(proposal_id).id), "individual_sponsors": sponsors}
    )


@router.post(
    "/people/{person_id}/erasure",
    responses={**CHANGED, **WRITE_RESPONSES},
    summary="Admins: erase a person's personal data (destroy their data keys)",
)
def erase_person(person_id: Id, body: ErasureIn, request: Request, who: Admin) -> JSONResponse:
    def command(app: LedgerApplication, actor: Actor, _: int | None) -> Any:
        return app.erase_person(
            person_id,
            legal_basis=body.legal_basis,
            authorised_by=body.authorised_by,
            actor=actor,
        )

    return run_write(request, who, command, body=_body(body))
