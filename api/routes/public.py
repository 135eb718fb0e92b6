"""Public reads over the read models: no token, every answer names the log index it reflects
(``X-Ledger-Index`` header and ``as_of_index`` in the body), any past state via ``as_of``
(a log index, or an RFC 3339 UTC time such as ``2015-06-01T00:00:00.000000Z``).

Lists come a page at a time: ``limit`` items (default 50, at most 500) and, when more follow,
``next_cursor`` in the body and a ``Link: <…>; rel="next"`` header. A cursor is opaque and
URL-safe; it pins the log index of the first page, so following pages fit with it exactly
however many entries arrive meanwhile, and it is only good for the listing (path and filters)
that made it. A malformed or altered cursor is a 400 problem.

Single records (proposals, meetings, publications, organisations, processes) carry
``version``, the record's aggregate version as of the index the answer reflects (the number
of entries about it so far), also sent as a strong ``ETag``, for ``If-Match`` on writes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel

from api.cache import ReadCache
from api.deps import ReaderDep
from api.errors import PROBLEM_JSON, ProblemError
from api.models_public import (
    Compare,
    ConsultationDetail,
    ConsultationPage,
    HistoryPage,
    MeetingDetail,
    MeetingPage,
    OrganisationDetail,
    OrganisationPage,
    Problem,
    Process,
    ProposalDetail,
    ProposalPage,
    PublicationDetail,
    PublicationPage,
    SearchPage,
    TimelinePage,
    Version,
    VersionPage,
)
from ledger.storage import LogReader
from projections.reader import (
    KEY_SHAPES,
    AsOf,
    CursorError,
    ReadModels,
    decode_cursor,
    encode_cursor,
)

__all__ = ["parse_as_of", "router"]

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
LimitQuery = Annotated[int, Query(ge=1, le=500, description="items per page")]
_NO_NUL = r"^[^\x00]*$"  # no stored text holds NUL (PostgreSQL refuses it)
Id = Annotated[str, Path(pattern=_NO_NUL, description="the record's id")]
Filter = Annotated[str | None, Query(pattern=_NO_NUL)]
Number = Annotated[int, Path(ge=1, le=2**31 - 1, description="a text version, from 1")]
CursorQuery = Annotated[
    str | None,
    Query(
        description="the ``next_cursor`` of the previous page; it pins that page's index, so "
        "``as_of`` is ignored beside it, and it only fits the same path and filters"
    ),
]

# OpenAPI ----------------------------------------------------------------------------------

_PROBLEM = {PROBLEM_JSON: {"schema": Problem.model_json_schema()}}
_INDEX_HEADER = {
    "X-Ledger-Index": {
        "description": "the log index the answer reflects",
        "schema": {"type": "integer"},
    }
}
_LINK_HEADER = {
    "Link": {
        "description": 'the next page, as ``<url>; rel="next"``; absent on the last page',
        "schema": {"type": "string"},
    }
}
_ETAG_HEADER = {
    "ETag": {
        "description": 'the record\'s version as a strong entity tag, e.g. ``"7"``',
        "schema": {"type": "string"},
    }
}


def _docs(
    model: type[BaseModel], *, kind: str = "record", not_found: bool = False
) -> dict[int | str, dict[str, Any]]:
    """The responses a route declares: 200 with ``model``, 400 (and 404) and any other error
    as problem details."""
    headers = dict(_INDEX_HEADER)
    if kind == "listing":
        headers.update(_LINK_HEADER)
    elif kind == "resource":
        headers.update(_ETAG_HEADER)
    docs: dict[int | str, dict[str, Any]] = {
        200: {"model": model, "description": "the answer", "headers": headers},
        400: {
            "description": "invalid parameters (as_of, limit, cursor, …)",
            "content": _PROBLEM,
        },
    }
    if not_found:
        docs[404] = {"description": "nothing by that id at that point", "content": _PROBLEM}
    docs["default"] = {
        "description": "any other error (e.g. 503 while the store is unavailable)",
        "content": _PROBLEM,
    }
    return docs


# Helpers ----------------------------------------------------------------------------------


def parse_as_of(value: str | None) -> AsOf:
    """The ``as_of`` parameter for the read models; a 400 problem when malformed."""
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


def _resource(
    response: Response, reader: LogReader, body: dict[str, Any] | None, what: str, sid: str
) -> Any:
    """A single record with its version (as of the index it reflects) and strong ETag."""
    found = _answer(response, body, what)
    version = reader.subject_version(sid, found["as_of_index"]) or 0
    found["version"] = version
    response.headers["ETag"] = f'"{version}"'
    return found


def _record(
    request: Request,
    models: ReadModels,
    reader: LogReader,
    as_of: str | None,
    what: str,
    sid: str,
    fetch: Callable[[str, int], dict[str, Any] | None],
) -> Response:
    """A single record as of ``as_of``, with its version and ETag, through the read cache."""
    at = models.at(parse_as_of(as_of))
    return _cached(request, at, lambda r: _resource(r, reader, fetch(sid, at), what, sid))


def _cached(request: Request, at: int, build: Callable[[Response], Any]) -> Response:
    """Serve the answer at index ``at`` from the process's read cache (api.cache)."""
    cache: ReadCache = request.app.state.read_cache
    return cache.serve(request, at, build)


class _Paging:
    """One list request's paging: the listing it is (scope), the index it reads at, and the
    sort key it starts after (from the cursor)."""

    def __init__(
        self,
        request: Request,
        models: ReadModels,
        shape: str,
        as_of: str | None,
        cursor: str | None,
        filters: dict[str, str | None],
    ) -> None:
        self.request = request
        chosen = sorted((k, v) for k, v in filters.items() if v is not None)
        self.scope = f"{request.url.path}?{urlencode(chosen)}"
        self.secret: bytes = request.app.state.cursor_secret
        self.after: Sequence[Any] | None = None
        if cursor is None:
            self.at = models.at(parse_as_of(as_of))
            return
        try:
            at, key = decode_cursor(
                cursor, scope=self.scope, secret=self.secret, shape=KEY_SHAPES[shape]
            )
        except CursorError as exc:
            raise ProblemError(400, "Invalid cursor", str(exc)) from None
        head = models.runner.log.head()
        if at >= (head.size if head is not None else 0):
            raise ProblemError(400, "Invalid cursor", "the cursor is not one this log made")
        self.at = models.at(at, min_index=at if at >= 0 else None)
        self.after = key

    def answer(self, response: Response, page: dict[str, Any]) -> dict[str, Any]:
        """The page as served: ``next_cursor`` in the body, ``Link`` and index headers."""
        after = page.pop("next_after", None)
        cursor = None
        if after is not None:
            cursor = encode_cursor(self.at, after, scope=self.scope, secret=self.secret)
            kept = [
                (k, v)
                for k, v in self.request.query_params.multi_items()
                if k not in ("cursor", "as_of")
            ]
            query = urlencode([*kept, ("cursor", cursor)])
            response.headers["Link"] = f'<{quote(self.request.url.path)}?{query}>; rel="next"'
        body = {"as_of_index": page["as_of_index"], "next_cursor": cursor, "items": page["items"]}
        response.headers["X-Ledger-Index"] = str(body["as_of_index"])
        return body


# Routes -----------------------------------------------------------------------------------


@router.get(
    "/proposals",
    summary="Proposals, by strand and status, or found by text",
    response_model=None,
    responses=_docs(ProposalPage, kind="listing"),
)
def proposals(
    request: Request,
    response: Response,
    models: Models,
    as_of: AsOfQuery = None,
    strand: Filter = None,
    status: Filter = None,
    q: Annotated[
        str | None,
        Query(max_length=500, description="search words: hits on proposals, best first"),
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Any:
    filters = {"strand": strand, "status": status, "q": q or None}
    paging = _Paging(request, models, "search" if q else "proposals", as_of, cursor, filters)
    if q:
        found = models.search(q, paging.at, limit=limit, after=paging.after, kinds=["proposal"])
        return paging.answer(response, found)
    return _cached(
        request,
        paging.at,
        lambda r: paging.answer(
            r,
            models.proposals(
                paging.at, strand_id=strand, status=status, limit=limit, after=paging.after
            ),
        ),
    )


@router.get(
    "/proposals/{proposal_id}",
    summary="A proposal's current text by section",
    response_model=None,
    responses=_docs(ProposalDetail, kind="resource", not_found=True),
)
def proposal(
    proposal_id: Id,
    request: Request,
    models: Models,
    reader: ReaderDep,
    as_of: AsOfQuery = None,
) -> Any:
    return _record(request, models, reader, as_of, "proposal", proposal_id, models.proposal)


@router.get(
    "/proposals/{proposal_id}/versions",
    summary="Every version, with why it exists",
    response_model=None,
    responses=_docs(VersionPage, kind="listing"),
)
def versions(
    proposal_id: Id,
    request: Request,
    models: Models,
    as_of: AsOfQuery = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Any:
    paging = _Paging(request, models, "versions", as_of, cursor, {})
    return _cached(
        request,
        paging.at,
        lambda r: paging.answer(
            r, models.versions(proposal_id, paging.at, limit=limit, after=paging.after)
        ),
    )


@router.get(
    "/proposals/{proposal_id}/versions/{number}",
    summary="One version",
    response_model=None,
    responses=_docs(Version, not_found=True),
)
def version(
    proposal_id: Id, number: Number, response: Response, models: Models, as_of: AsOfQuery = None
) -> Any:
    return _answer(response, models.version(proposal_id, number, parse_as_of(as_of)), "version")


@router.get(
    "/proposals/{proposal_id}/compare",
    summary="Word diff between two versions",
    response_model=None,
    responses=_docs(Compare, not_found=True),
)
def compare(
    proposal_id: Id,
    response: Response,
    models: Models,
    old: Annotated[int, Query(alias="from", ge=1, le=2**31 - 1)],
    new: Annotated[int, Query(alias="to", ge=1, le=2**31 - 1)],
    as_of: AsOfQuery = None,
) -> Any:
    return _answer(response, models.compare(proposal_id, old, new, parse_as_of(as_of)), "version")


@router.get(
    "/proposals/{proposal_id}/history",
    summary="Every entry about the proposal",
    response_model=None,
    responses=_docs(HistoryPage, kind="listing"),
)
def proposal_history(
    proposal_id: Id,
    request: Request,
    models: Models,
    as_of: AsOfQuery = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Any:
    paging = _Paging(request, models, "history", as_of, cursor, {})
    return _cached(
        request,
        paging.at,
        lambda r: paging.answer(
            r, models.history(proposal_id, paging.at, limit=limit, after=paging.after)
        ),
    )


@router.get(
    "/meetings",
    summary="The meeting register",
    response_model=None,
    responses=_docs(MeetingPage, kind="listing"),
)
def meetings(
    request: Request,
    models: Models,
    as_of: AsOfQuery = None,
    strand: Filter = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Any:
    paging = _Paging(request, models, "meetings", as_of, cursor, {"strand": strand})
    return _cached(
        request,
        paging.at,
        lambda r: paging.answer(
            r, models.meetings(paging.at, strand_id=strand, limit=limit, after=paging.after)
        ),
    )


@router.get(
    "/meetings/{meeting_id}",
    summary="A meeting and its outcomes",
    response_model=None,
    responses=_docs(MeetingDetail, kind="resource", not_found=True),
)
def meeting(
    meeting_id: Id,
    request: Request,
    models: Models,
    reader: ReaderDep,
    as_of: AsOfQuery = None,
) -> Any:
    return _record(request, models, reader, as_of, "meeting", meeting_id, models.meeting)


@router.get(
    "/consultations",
    summary="The consultation register",
    response_model=None,
    responses=_docs(ConsultationPage, kind="listing"),
)
def consultations(
    request: Request,
    models: Models,
    as_of: AsOfQuery = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Any:
    paging = _Paging(request, models, "consultations", as_of, cursor, {})
    return _cached(
        request,
        paging.at,
        lambda r: paging.answer(
            r, models.consultations(paging.at, limit=limit, after=paging.after)
        ),
    )


@router.get(
    "/consultations/{consultation_id}",
    summary="A consultation: questions, public responses, review and government response",
    response_model=None,
    responses=_docs(ConsultationDetail, kind="resource", not_found=True),
)
def consultation(
    consultation_id: Id,
    request: Request,
    models: Models,
    reader: ReaderDep,
    as_of: AsOfQuery = None,
) -> Any:
    return _record(
        request, models, reader, as_of, "consultation", consultation_id, models.consultation
    )


@router.get(
    "/publications",
    summary="The publication register",
    response_model=None,
    responses=_docs(PublicationPage, kind="listing"),
)
def publications(
    request: Request,
    models: Models,
    as_of: AsOfQuery = None,
    proposal: Filter = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Any:
    paging = _Paging(request, models, "publications", as_of, cursor, {"proposal": proposal})
    return _cached(
        request,
        paging.at,
        lambda r: paging.answer(
            r,
            models.publications(paging.at, proposal_id=proposal, limit=limit, after=paging.after),
        ),
    )


@router.get(
    "/publications/{publication_id}",
    summary="A publication's record",
    response_model=None,
    responses=_docs(PublicationDetail, kind="resource", not_found=True),
)
def publication(
    publication_id: Id,
    request: Request,
    models: Models,
    reader: ReaderDep,
    as_of: AsOfQuery = None,
) -> Any:
    return _record(
        request, models, reader, as_of, "publication", publication_id, models.publication
    )


@router.get(
    "/organisations",
    summary="The organisations taking part",
    response_model=None,
    responses=_docs(OrganisationPage, kind="listing"),
)
def organisations(
    request: Request,
    models: Models,
    as_of: AsOfQuery = None,
    kind: Filter = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Any:
    paging = _Paging(request, models, "organisations", as_of, cursor, {"kind": kind})
    return _cached(
        request,
        paging.at,
        lambda r: paging.answer(
            r, models.organisations(paging.at, org_kind=kind, limit=limit, after=paging.after)
        ),
    )


@router.get(
    "/organisations/{organisation_id}",
    summary="An organisation and its participation",
    response_model=None,
    responses=_docs(OrganisationDetail, kind="resource", not_found=True),
)
def organisation(
    organisation_id: Id,
    request: Request,
    models: Models,
    reader: ReaderDep,
    as_of: AsOfQuery = None,
) -> Any:
    return _record(
        request, models, reader, as_of, "organisation", organisation_id, models.organisation
    )


@router.get(
    "/processes/{process_id}",
    summary="A process, its strands and phases",
    response_model=None,
    responses=_docs(Process, kind="resource", not_found=True),
)
def process(
    process_id: Id,
    request: Request,
    models: Models,
    reader: ReaderDep,
    as_of: AsOfQuery = None,
) -> Any:
    return _record(request, models, reader, as_of, "process", process_id, models.process)


@router.get(
    "/timeline",
    summary="The latest entries, newest first",
    response_model=None,
    responses=_docs(TimelinePage, kind="listing"),
)
def timeline(
    request: Request,
    models: Models,
    as_of: AsOfQuery = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Any:
    paging = _Paging(request, models, "timeline", as_of, cursor, {})
    return _cached(
        request,
        paging.at,
        lambda r: paging.answer(r, models.timeline(paging.at, limit=limit, after=paging.after)),
    )


@router.get(
    "/search",
    summary="Full-text search over proposals, amendments, outcomes, publications",
    description="Hits best first. On PostgreSQL pages read at one index are exact; on SQLite "
    "a rank also depends on text indexed after that index, so text recorded between two "
    "pages can, rarely, repeat or skip a hit at a page boundary.",
    response_model=None,
    responses=_docs(SearchPage, kind="listing"),
)
def search(
    request: Request,
    response: Response,
    models: Models,
    q: Annotated[str, Query(max_length=500)],
    as_of: AsOfQuery = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Any:
    paging = _Paging(request, models, "search", as_of, cursor, {"q": q})
    return paging.answer(response, models.search(q, paging.at, limit=limit, after=paging.after))
