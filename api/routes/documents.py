"""Documents: uploaded by officials, stored by SHA-256, downloaded by the public.

An official uploads the exact bytes first (``POST /documents``, the body is the document,
``Content-Type`` its media type) and then records a publication or minutes naming the
hash. The public downloads a publication's document; ``ETag`` is its SHA-256, so anyone can
check the bytes they got are the bytes the log recorded. Bytes are hashed before a process
first serves them: stored bytes that do not hash to their name are never served (500,
"Stored document damaged").

Access is default-deny and derived from the log: a stored document is readable by every
official (and served by the public route) only if a log entry — its bytes read from the
entries table and checked — publishes it (``publication.published``,
``publication.released``, ``meeting.minutes_agreed``, ``consultation.opened``). Otherwise
only its uploaders (an uploads row carrying the service's MAC), publishers, admins and
officials of organisations granted pre-release access by a log entry of a publication whose
embargo commitment the stored salt opens over these bytes. Tables beside the log and read
models only point at candidate entries: editing or deleting them can hide a document, never
expose one. To anyone else it is "not found", and uploading the same bytes answers exactly
as if they had not been stored. Each read of a document no entry publishes is logged
(logger ``ledger.embargo``, level WARNING), naming the reader.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.auth import PUBLISH, UPLOAD, Principal, authenticate
from api.errors import ProblemError
from api.responses import JSONResponse
from api.routes.writes import WRITE_RESPONSES
from ledger.application import LedgerApplication
from ledger.checkpoint import CheckpointError, verify_note
from ledger.commitments import matches
from ledger.errors import DamagedLogError
from ledger.merkle import ProofError, hash_leaf, verify_inclusion
from ledger.proofs import ProofBuilder
from ledger.storage.base import LogReader
from ledger.storage.side import DamagedDocumentError, Document, SideStore
from projections.reader import ReadModels

__all__ = ["MEDIA_TYPES", "router"]

router = APIRouter(tags=["documents"])

# What may be published. HTML is served as an attachment in a sandbox, never rendered inline.
MEDIA_TYPES = frozenset(
    {
        "application/pdf",
        "application/json",
        "application/xml",
        "application/zip",
        "application/msword",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/octet-stream",
        "text/plain",
        "text/markdown",
        "text/csv",
        "text/html",
        "image/png",
        "image/jpeg",
        "image/svg+xml",
    }
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
embargo_log = logging.getLogger("ledger.embargo")


@dataclass(frozen=True, slots=True)
class _Access:
    """Whether an official may read a stored document, and why."""

    allowed: bool
    embargoed: tuple[str, ...] = ()  # publications still under embargo that commit to it
    media_type: str | None = None  # an uploader's own media type (uploader-only access)
    reason: str = ""


# Entry types that make the document they name public (``data.sha256``).
_PUBLISHING = frozenset({"publication.published", "publication.released", "meeting.minutes_agreed"})
_SUBJECT_ENTRIES = 10_000


def _fields(entry: bytes) -> tuple[str, str, dict[str, Any]] | None:
    """(type, subject id, data) of an entry's bytes; None if they are not an entry."""
    try:
        fields: Any = orjson.loads(entry)
        kind, subject, data = fields["type"], fields["subject"]["id"], fields["data"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(kind, str) or not isinstance(data, dict):
        return None
    return kind, str(subject), data


@dataclass(frozen=True, slots=True)
class _Entry:
    index: int
    raw: bytes
    kind: str
    data: dict[str, Any]


def _subject_entries(log: LogReader, subject: str) -> list[_Entry]:
    """Each entry whose bytes name ``subject`` among those the events table links to it
    (a re-pointed event row can hide an entry, never add one)."""
    found: list[_Entry] = []
    for index in log.subject_indexes(subject, log.extent(), _SUBJECT_ENTRIES):
        for entry in log.entries(index, index + 1):
            fields = _fields(entry)
            if fields is not None and fields[1] == subject:
                found.append(_Entry(index, entry, fields[0], fields[2]))
    return found


def _proven(request: Request, entry: _Entry) -> bool:
    """Whether ``entry``'s bytes are the log's at its index: included in the latest
    checkpoint, whose signature by the log's key is checked. Bytes edited in the entries
    table (and put back later) would otherwise grant a read while the edit is in place."""
    log: LogReader = request.app.state.readers.get()
    latest = log.checkpoint()
    if latest is None:
        return False
    app: LedgerApplication = request.app.state.ledger
    try:
        checkpoint = verify_note(latest[2], app.signer.verifier())
        if entry.index >= checkpoint.size:
            return False
        builder = ProofBuilder(log, request.app.state.tile_cache)
        proof = builder.inclusion(entry.index, checkpoint.size)
        verify_inclusion(hash_leaf(entry.raw), entry.index, checkpoint.size, proof, checkpoint.root)
    except (CheckpointError, ProofError, DamagedLogError, ValueError):
        return False
    return True


def _publishes(kind: str, data: dict[str, Any], sha256: str) -> bool:
    if kind in _PUBLISHING:
        return data.get("sha256") == sha256
    if kind == "consultation.opened":
        documents = data.get("documents")
        return isinstance(documents, list) and sha256 in documents
    return False


def _published(request: Request, sha256: str) -> bool:
    """Whether a log entry publishes the document ``sha256`` (its bytes checked). Read
    models and the salts table only say which records to look at. Once true, always true
    (entries never change): remembered per process."""
    state = request.app.state
    known: set[str] | None = getattr(state, "published_documents", None)
    if known is None:
        known = state.published_documents = set()
    if sha256 in known:
        return True
    side: SideStore = state.side
    db = state.read_models.get().db
    pattern = f'%"{sha256}"%'
    candidates = {
        str(r[0])
        for r in db.all("SELECT DISTINCT id FROM pv_publications WHERE sha256 = ?", [sha256])
    }
    candidates |= {
        str(r[0])
        for r in db.all("SELECT DISTINCT id FROM pv_meetings WHERE minutes LIKE ?", [pattern])
    }
    candidates |= {
        str(r[0])
        for r in db.all(
            "SELECT DISTINCT id FROM pv_consultations WHERE documents LIKE ?", [pattern]
        )
    }
    candidates |= set(side.embargoes_of(sha256))  # fmt: skip
    log: LogReader = state.readers.get()
    for subject in sorted(candidates):
        for entry in _subject_entries(log, subject):
            if _publishes(entry.kind, entry.data, sha256) and _proven(request, entry):
                known.add(sha256)
                return True
    return False


def _embargoes(request: Request, sha256: str) -> tuple[list[str], set[str]]:
    """(publications whose embargo commitment the stored salt opens over these bytes,
    organisations their log entries grant pre-release access). A salt row edited, deleted
    or pointed elsewhere opens nothing: it can only take access away."""
    side: SideStore = request.app.state.side
    publications = side.embargoes_of(sha256)
    if not publications:
        return [], set()
    try:
        found = side.checked_document(sha256)
    except DamagedDocumentError:
        return [], set()
    if found is None or found.content is None:
        return [], set()
    log: LogReader = request.app.state.readers.get()
    embargoed: list[str] = []
    granted: set[str] = set()
    for publication_id in publications:
        salt = side.embargo_salt(publication_id)
        if salt is None:
            continue
        entries = _subject_entries(log, publication_id)
        if not any(
            e.kind == "publication.embargoed"
            and isinstance(e.data.get("commitment"), str)
            and matches(e.data["commitment"], salt.salt, found.content)
            and _proven(request, e)
            for e in entries
        ):
            continue
        embargoed.append(publication_id)
        granted |= {
            str(e.data.get("organisation_id"))
            for e in entries
            if e.kind == "publication.prerelease_access_granted" and _proven(request, e)
        }
    return embargoed, granted


def _access(request: Request, who: Principal, sha256: str) -> _Access:
    """May ``who`` read the stored document ``sha256``? Everyone allowed once a log entry
    publishes it; before that only its uploaders, publishers and admins, and organisations
    a log entry grants pre-release access to an embargo committing to these bytes."""
    if _published(request, sha256):
        return _Access(True)
    side: SideStore = request.app.state.side
    actor = who.actor
    publications, granted = _embargoes(request, sha256)
    embargoed = tuple(publications)
    if actor.role in PUBLISH:
        return _Access(True, embargoed, reason=f"as a {actor.role}")
    own = side.upload_media_type(sha256, actor.id, actor.org)
    if own is not None:
        return _Access(True, embargoed, own, reason="as its uploader")
    if actor.org and actor.org in granted:
        return _Access(True, embargoed, reason="granted pre-release access")
    return _Access(False, embargoed)


def _upload_official(request: Request) -> Principal:
    return authenticate(request, UPLOAD)


def _reading_official(request: Request) -> Principal:
    # A download is not a write: it must not spend the token's write budget.
    return authenticate(request, UPLOAD, write=False)


@router.post(
    "/documents",
    status_code=201,
    summary="Upload a document's exact bytes (before publishing it)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}} for t in sorted(MEDIA_TYPES)
            },
        }
    },
    responses={
        201: {
            "description": "Stored (or already stored: the same bytes are kept once)",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["sha256", "size", "media_type", "created"],
                        "properties": {
                            "sha256": {"type": "string"},
                            "size": {"type": "integer"},
                            "media_type": {"type": "string"},
                            "created": {"type": "boolean"},
                        },
                    }
                }
            },
        },
        **WRITE_RESPONSES,
    },
)
async def upload(
    request: Request,
    who: Annotated[Principal, Depends(_upload_official)],
    sha256: Annotated[
        str | None,
        Query(pattern="^[0-9a-f]{64}$", description="the SHA-256 you expect: checked"),
    ] = None,
) -> JSONResponse:
    media_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        raise ProblemError(
            415,
            "Unsupported media type",
            f"documents may be one of: {', '.join(sorted(MEDIA_TYPES))} (got {media_type!r})",
        )
    content = await request.body()
    if not content:
        raise ProblemError(422, "Empty document", "the request body is the document: it is empty")
    digest = hashlib.sha256(content).hexdigest()
    if sha256 is not None and sha256 != digest:
        raise ProblemError(
            422,
            "Digest mismatch",
            f"the bytes received hash to {digest}, not {sha256}: nothing was stored",
        )
    side: SideStore = request.app.state.side

    def store() -> tuple[bool, str]:
        # Whether the uploader could read stored bytes is decided before they are recorded
        # as an uploader; to one who could not, the answer is that of a first upload.
        access = _access(request, who, digest)
        created = side.put_document(
            digest, media_type, content, uploader=(who.actor.id, who.actor.org, who.token_id)
        )
        if created or not access.allowed:
            return True, media_type
        if access.media_type is not None:
            return False, access.media_type
        # The bytes were stored before, perhaps under another media type: answer with what
        # is kept (and what a publication or minutes naming them will record).
        stored = side.document(digest, content=False)
        return False, stored.media_type if stored is not None else media_type

    created, media_type = await anyio.to_thread.run_sync(store)
    return JSONResponse(
        {"sha256": digest, "size": len(content), "media_type": media_type, "created": created},
        status_code=201,
        headers={"Location": f"/documents/{digest}", "ETag": f'"{digest}"'},
    )


def _serve(
    request: Request, sha256: str, filename: str, *, media_type: str | None = None
) -> Response:
    etag = f'"{sha256}"'
    # RFC 9110 §13.1.2: If-None-Match compares weakly (a cache may have weakened the tag).
    presented = request.headers.get("if-none-match", "").split(",")
    if etag in [t.strip().removeprefix("W/") for t in presented]:
        return Response(status_code=304, headers={"ETag": etag})
    side: SideStore = request.app.state.side
    try:
        found: Document | None = side.checked_document(sha256)
    except DamagedDocumentError as exc:
        raise ProblemError(
            500, "Stored document damaged", str(exc), headers={"Cache-Control": "no-store"}
        ) from None
    if found is None or found.content is None:
        raise ProblemError(404, "Not found", f"the ledger holds no document {sha256}")
    return Response(
        found.content,
        media_type=media_type or found.media_type,
        headers={
            "ETag": etag,
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "public, max-age=31536000, immutable",
        },
    )


_DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The document's bytes; ETag is their SHA-256",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    304: {"description": "Not modified (If-None-Match matched the SHA-256)"},
}


@router.get(
    "/documents/{sha256}",
    summary="An uploaded document (officials; before an embargo on it is released: its "
    "uploaders, publishers, admins and organisations granted pre-release access)",
    responses={
        **_DOWNLOAD,
        **{k: v for k, v in WRITE_RESPONSES.items() if k in (400, 401, 403, 404)},
    },
)
def official_download(
    sha256: str, request: Request, who: Annotated[Principal, Depends(_reading_official)]
) -> Response:
    if not _SHA256.match(sha256):
        raise ProblemError(400, "Invalid SHA-256", "use 64 lowercase hex digits")
    access = _access(request, who, sha256)
    if not access.allowed:
        # Exactly the answer for bytes the ledger does not hold.
        raise ProblemError(404, "Not found", f"the ledger holds no document {sha256}")
    if access.reason:
        embargo_log.warning(
            "unpublished document %s (embargoed publication %s) read before release by %s "
            "of %s, %s (token %s)",
            sha256,
            ", ".join(access.embargoed) or "none found",
            who.actor.id,
            who.actor.org or "no organisation",
            access.reason,
            who.token_id,
        )
        response = _serve(request, sha256, sha256, media_type=access.media_type)
        # Not for shared caches: this answer depends on who asks.
        response.headers["Cache-Control"] = "private, no-store"
        return response
    return _serve(request, sha256, sha256)


def _models(request: Request) -> ReadModels:
    models: ReadModels = request.app.state.read_models.get()
    return models


@router.get(
    "/publications/{publication_id}/document",
    tags=["public"],
    summary="Download a publication's document (ETag = the SHA-256 in the log)",
    responses={
        **_DOWNLOAD,
        404: WRITE_RESPONSES[404],
        403: {
            **WRITE_RESPONSES[404],
            "description": "The publication is embargoed: its document is not public before "
            "its release",
        },
        410: {**WRITE_RESPONSES[404], "description": "The publication was withdrawn"},
    },
)
def download(publication_id: str, request: Request) -> Response:
    models = _models(request)
    record = models.publication(publication_id)
    if record is None:
        raise ProblemError(404, "Not found", f"no publication {publication_id!r}")
    if record.get("state") == "withdrawn":
        raise ProblemError(
            410,
            "Withdrawn",
            f"this publication was withdrawn: {record.get('reason') or 'no reason given'}",
        )
    if record.get("state") == "embargoed" or record.get("sha256") is None:
        raise ProblemError(
            403,
            "Embargoed",
            f"this publication is embargoed until {record.get('release_at')}: its document "
            "is not public before it is released",
        )
    sha256 = str(record["sha256"])
    if not _published(request, sha256):
        # The read model says published, the log does not: it was edited (or is wrong).
        raise ProblemError(
            404,
            "Not found",
            f"no entry in the log publishes document {sha256}: it is not served",
            headers={"Cache-Control": "no-store"},
        )
    return _serve(request, sha256, f"{publication_id}-{sha256[:12]}")
