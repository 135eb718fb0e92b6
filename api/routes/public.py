"""Public reads over the read models: no token, every answer names the log index it reflects
(``X-Ledger-Index`` header and ``as_of_index`` in the body), any past state via ``as_of``
(a log index, or an RFC 3339 UTC time such as ``2015-06-01T00:00:00.000000Z``)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api.errors import ProblemError
from projections.reader import AsOf, ReadModels

__all__ = ["router"]

router = APIRouter(tags=["public"])

_INDEX = re.compile(r"^-?\d{1,18}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


def _models(request: Request) -> ReadModels:
    models: ReadModels = request.app.state.read_models.get()
    return models


Models = Annotated[ReadModels, Depends(_models)]
AsOfQuery = Annotated[
    str | None,
    Query(
        description="a log index, or an RFC 3339 UTC time (the state after the last entry "
        "at or before it); default: the latest"
    ),
]


def _as_of(value: str | None) -> AsOf:
    if value is None:
        return None
    if _INDEX.match(value):
        return int(value)
    if _TIME.match(value):
        seconds, _, fraction = value[:-1].partition(".")
        return f"{seconds}.{(fraction or '0').ljust(6, '0')}Z"
    raise ProblemError(
        400,
        "Invalid as_of",
        f"as_of must be a log index or an RFC 3339 UTC "
        f"time like 2015-06-01T00:00:00Z, not {value!r}",
    )


def _answer(response: Response, body: Any, what: str = "") -> Any:
    if body is None:
        raise ProblemError(404, "Not found", f"no such {what} at that point in the log")
    response.headers["X-Ledger-Index"] = str(body["as_of_index"])
    return body


@router.get("/proposals", summary="Proposals, by strand and status, or found by text")
def proposals(
    response: Response,
    models: Models,
    as_of: AsOfQuery = None,
    strand: str | None = None,
    status: str | None = None,
    q: Annotated[str | None, Query(max_length=500)] = None,
) -> Any:
    if q:
        found = models.search(q, _as_of(as_of))
        found["items"] = [h for h in found["items"] if h["kind"] == "proposal"]
        return _answer(response, found)
    return _answer(response, models.proposals(_as_of(as_of), strand_id=strand, status=status))


@router.get("/proposals/{proposal_id}", summary="A proposal's current text by section")
def proposal(proposal_id: str, response: Response, models: Models, as_of: AsOfQuery = None) -> Any:
    return _answer(response, models.proposal(proposal_id, _as_of(as_of)), "proposal")


@router.get("/proposals/{proposal_id}/versions", summary="Every version, with why it exists")
def versions(proposal_id: str, response: Response, models: Models, as_of: AsOfQuery = None) -> Any:
    return _answer(response, models.versions(proposal_id, _as_of(as_of)))


@router.get("/proposals/{proposal_id}/versions/{number}", summary="One version")
def version(
    proposal_id: str, number: int, response: Response, models: Models, as_of: AsOfQuery = None
) -> Any:
    at = models.at(_as_of(as_of))
    found = next(
        (v for v in models.versions(proposal_id, at)["items"] if v["text_version"] == number), None
    )
    return _answer(response, found, "version")


@router.get("/proposals/{proposal_id}/compare", summary="Word diff between two versions")
def compare(
    proposal_id: str,
    response: Response,
    models: Models,
    old: Annotated[int, Query(alias="from", ge=1)],
    new: Annotated[int, Query(alias="to", ge=1)],
    as_of: AsOfQuery = None,
) -> Any:
    return _answer(response, models.compare(proposal_id, old, new, _as_of(as_of)), "version")


@router.get("/proposals/{proposal_id}/history", summary="Every entry about the proposal")
def proposal_history(
    proposal_id: str, response: Response, models: Models, as_of: AsOfQuery = None
) -> Any:
    return _answer(response, models.history(proposal_id, _as_of(as_of)))


@router.get("/meetings", summary="The meeting register")
def meetings(
    response: Response, models: Models, as_of: AsOfQuery = None, strand: str | None = None
) -> Any:
    return _answer(response, models.meetings(_as_of(as_of), strand_id=strand))


@router.get("/meetings/{meeting_id}", summary="A meeting and its outcomes")
def meeting(meeting_id: str, response: Response, models: Models, as_of: AsOfQuery = None) -> Any:
    return _answer(response, models.meeting(meeting_id, _as_of(as_of)), "meeting")


@router.get("/publications", summary="The publication register")
def publications(
    response: Response, models: Models, as_of: AsOfQuery = None, proposal: str | None = None
) -> Any:
    return _answer(response, models.publications(_as_of(as_of), proposal_id=proposal))


@router.get("/publications/{publication_id}", summary="A publication's record")
def publication(
    publication_id: str, response: Response, models: Models, as_of: AsOfQuery = None
) -> Any:
    return _answer(response, models.publication(publication_id, _as_of(as_of)), "publication")


@router.get("/organisations", summary="The organisations taking part")
def organisations(
    response: Response, models: Models, as_of: AsOfQuery = None, kind: str | None = None
) -> Any:
    return _answer(response, models.organisations(_as_of(as_of), org_kind=kind))


@router.get("/organisations/{organisation_id}", summary="An organisation and its participation")
def organisation(
    organisation_id: str, response: Response, models: Models, as_of: AsOfQuery = None
) -> Any:
    return _answer(response, models.organisation(organisation_id, _as_of(as_of)), "organisation")


@router.get("/processes/{process_id}", summary="A process, its strands and phases")
def process(process_id: str, response: Response, models: Models, as_of: AsOfQuery = None) -> Any:
    return _answer(response, models.process(process_id, _as_of(as_of)), "process")


@router.get("/timeline", summary="The latest entries, newest first")
def timeline(
    response: Response,
    models: Models,
    as_of: AsOfQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    return _answer(response, models.timeline(_as_of(as_of), limit=limit))


@router.get(
    "/search", summary="Full-text search over proposals, amendments, outcomes, publications"
)
def search(
    response: Response,
    models: Models,
    q: Annotated[str, Query(max_length=500)],
    as_of: AsOfQuery = None,
) -> Any:
    return _answer(response, models.search(q, _as_of(as_of)))
