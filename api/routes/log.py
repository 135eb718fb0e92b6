"""The verifiable log: checkpoints, key, entries, proofs and tlog-tiles, for auditors.

Everything here is public and read-only. Sizes are tree sizes of published checkpoints; a
size beyond the latest checkpoint is a 400, not a guess. Full tiles never change and are
served as immutable.
"""

from __future__ import annotations

import base64
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from api.deps import ReaderDep
from api.errors import ProblemError
from ledger.proofs import TILE_WIDTH, ProofBuilder
from ledger.storage import LogReader

__all__ = [
    "ConsistencyOut",
    "EntryOut",
    "InclusionOut",
    "SubjectEntriesOut",
    "SubjectEntryOut",
    "router",
]

router = APIRouter(tags=["log"])

MAX_ENTRIES_PER_RESPONSE = 1000
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
FRESH = {"Cache-Control": "no-cache"}
_TILE_INDEX = re.compile(r"^((?:x\d{3}/)*)(\d{3})(?:\.p/(\d{1,3}))?$")


MAX = 2**53  # no log is larger; bigger numbers are refused before they reach SQL
Index = Annotated[int, Query(ge=0, le=MAX)]
TEXT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}}
}
BINARY: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The tile's bytes",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class EntryOut(BaseModel):
    index: int
    entry: str = Field(description="the entry's canonical JSON, verbatim")
    tree_size: int
    inclusion_proof: list[str] = Field(description="RFC 9162 audit path, base64, leaf first")
    checkpoint: str | None = Field(description="the signed checkpoint for tree_size")


class InclusionOut(BaseModel):
    index: int
    size: int
    proof: list[str]


class ConsistencyOut(BaseModel):
    old: int
    new: int
    proof: list[str]


def _published_size(reader: LogReader) -> int:
    latest = reader.checkpoint()
    return 0 if latest is None else latest[0]


def _check_size(size: int, published: int, what: str = "size") -> None:
    if not 0 <= size <= published:
        raise ProblemError(
            400,
            "Size out of range",
            f"{what} {size} is not between 0 and the published size {published}",
            published_size=published,
        )


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    responses={**TEXT, 404: {"description": "Nothing recorded yet"}},  # noqa: RUF100
    summary="Latest signed checkpoint",
)
def latest_checkpoint(reader: ReaderDep) -> Response:
    latest = reader.checkpoint()
    if latest is None:
        raise ProblemError(404, "No checkpoint yet", "nothing has been recorded in this log yet")
    return PlainTextResponse(latest[2], headers=FRESH)


@router.get(
    "/checkpoint/{size}",
    response_class=PlainTextResponse,
    responses=TEXT,
    summary="The checkpoint published for a tree size",
)
def checkpoint_at(size: Annotated[int, Path(ge=0, le=MAX)], reader: ReaderDep) -> Response:
    found = reader.checkpoint(size)
    if found is None:
        raise ProblemError(
            404, "No such checkpoint", f"no checkpoint was published for size {size}"
        )
    return PlainTextResponse(found[2], headers=IMMUTABLE)


@router.get(
    "/public-key",
    response_class=PlainTextResponse,
    responses=TEXT,
    summary="The log's verifier key",
)
def public_key(request: Request) -> Response:
    return PlainTextResponse(request.app.state.verifier_key + "\n")


@router.get(
    "/entries",
    summary="Verbatim entries, one per line (NDJSON)",
    response_class=Response,
    responses={
        200: {
            "description": f"Entries start..stop (at most {MAX_ENTRIES_PER_RESPONSE})",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
def entries(
    reader: ReaderDep,
    start: Index = 0,
    stop: Annotated[int | None, Query(ge=0, le=MAX)] = None,
) -> Response:
    published = _published_size(reader)
    stop = published if stop is None else stop
    _check_size(stop, published, "stop")
    if start > stop:
        raise ProblemError(400, "Bad range", f"start {start} is after stop {stop}")
    stop = min(stop, start + MAX_ENTRIES_PER_RESPONSE)
    body = b"".join(e + b"\n" for e in reader.entries(start, stop))
    return Response(
        body,
        media_type="application/x-ndjson",
        headers={"X-Entries-Start": str(start), "X-Entries-Stop": str(stop)},
    )


@router.get(
    "/entries/{index}", response_model=EntryOut, summary="One entry with its inclusion proof"
)
def entry(
    index: Annotated[int, Path(ge=0, le=MAX)],
    request: Request,
    reader: ReaderDep,
    size: Annotated[int | None, Query(ge=0, le=MAX)] = None,
) -> dict[str, Any]:
    latest = reader.checkpoint()
    published = 0 if latest is None else latest[0]
    size = published if size is None else size
    _check_size(size, published)
    if not 0 <= index < size:
        raise ProblemError(
            404, "No such entry", f"there is no entry {index} in a tree of size {size}"
        )
    (entry_bytes,) = reader.entries(index, index + 1)
    checkpoint = reader.checkpoint(size)
    return {
        "index": index,
        "entry": entry_bytes.decode(),
        "tree_size": size,
        "inclusion_proof": _b64(
            ProofBuilder(reader, request.app.state.tile_cache).inclusion(index, size)
        ),
        "checkpoint": None if checkpoint is None else checkpoint[2],
    }


class SubjectEntryOut(BaseModel):
    index: int
    entry: str = Field(description="the entry's canonical JSON, verbatim")
    inclusion_proof: list[str] = Field(description="RFC 9162 audit path to tree_size, base64")


class SubjectEntriesOut(BaseModel):
    subject: str
    tree_size: int
    checkpoint: str | None = Field(description="the signed checkpoint for tree_size")
    entries: list[SubjectEntryOut]
    next_after: int | None = Field(description="pass as ?after= for the next page; null at the end")


MAX_SUBJECT_ENTRIES = 500


@router.get(
    "/subjects/{subject_id}/entries",
    response_model=SubjectEntriesOut,
    summary="Every entry about one record, with inclusion proofs to one checkpoint",
)
def subject_entries(
    subject_id: Annotated[str, Path(max_length=100)],
    request: Request,
    reader: ReaderDep,
    size: Annotated[int | None, Query(ge=0, le=MAX)] = None,
    after: Annotated[int, Query(ge=-1, le=MAX)] = -1,
    limit: Annotated[int, Query(ge=1, le=MAX_SUBJECT_ENTRIES)] = MAX_SUBJECT_ENTRIES,
) -> dict[str, Any]:
    """The entries whose subject is ``subject_id`` (found from the entry bytes themselves,
    not from the event rows or any read model), oldest first, each with its inclusion proof
    to the checkpoint of ``size`` (the latest when omitted). The list is a hint, not a claim:
    a verifier checks each proof and that the record's versions run 1, 2, 3 … without a gap.
    It cannot tell whether the record's latest entries were left out: `ledger verify` on the
    store, or reading the whole log against its checkpoint, finds that."""
    try:
        subject = str(uuid.UUID(subject_id))
    except ValueError:
        raise ProblemError(
            400,
            "Invalid request",
            f"subject_id {subject_id[:100]!r} is not a UUID",
            errors=[{"loc": ["path", "subject_id"], "msg": "not a UUID"}],
        ) from None
    published = _published_size(reader)
    size = published if size is None else size
    _check_size(size, published)
    indexes = reader.subject_indexes(subject, size, limit + 1, after)
    more = len(indexes) > limit
    indexes = indexes[:limit]
    builder = ProofBuilder(reader, request.app.state.tile_cache)
    found = []
    for index in indexes:
        (entry_bytes,) = reader.entries(index, index + 1)
        found.append(
            {
                "index": index,
                "entry": entry_bytes.decode(),
                "inclusion_proof": _b64(builder.inclusion(index, size)),
            }
        )
    checkpoint = reader.checkpoint(size) if size else None
    return {
        "subject": subject,
        "tree_size": size,
        "checkpoint": None if checkpoint is None else checkpoint[2],
        "entries": found,
        "next_after": indexes[-1] if more else None,
    }


@router.get("/proof/inclusion", response_model=InclusionOut, summary="RFC 9162 inclusion proof")
def inclusion(
    request: Request,
    reader: ReaderDep,
    index: Index,
    size: Annotated[int, Query(ge=1, le=MAX)],
) -> dict[str, Any]:
    _check_size(size, _published_size(reader))
    if index >= size:
        raise ProblemError(400, "Index out of range", f"index {index} is not below size {size}")
    return {
        "index": index,
        "size": size,
        "proof": _b64(ProofBuilder(reader, request.app.state.tile_cache).inclusion(index, size)),
    }


@router.get(
    "/proof/consistency", response_model=ConsistencyOut, summary="RFC 9162 consistency proof"
)
def consistency(
    request: Request,
    reader: ReaderDep,
    old: Index,
    new: Index,
) -> dict[str, Any]:
    published = _published_size(reader)
    _check_size(new, published, "new")
    if old > new:
        raise ProblemError(400, "Bad sizes", f"old size {old} is larger than new size {new}")
    return {
        "old": old,
        "new": new,
        "proof": _b64(ProofBuilder(reader, request.app.state.tile_cache).consistency(old, new)),
    }


def _parse_tile_path(path: str) -> tuple[int, int | None]:
    """tlog-tiles ``x001/x234/067[.p/W]`` → (index, partial width or None)."""
    match = _TILE_INDEX.match(path)
    if match is None:
        raise ProblemError(404, "Not a tile path", f"{path!r} is not a tlog-tiles index path")
    groups = [g[1:] for g in match.group(1).split("/") if g] + [match.group(2)]
    if len(groups) > 7:  # 2^63 / 256 has 17 digits: six x-groups and the last
        raise ProblemError(404, "Not a tile path", "the tile index is out of range")
    index = int("".join(groups))
    width = None if match.group(3) is None else int(match.group(3))
    if width is not None and not 1 <= width < TILE_WIDTH:
        raise ProblemError(404, "Not a tile path", f"partial width {width} is not 1..255")
    return index, width


def _tile_response(hashes_or_entries: list[bytes], width: int | None, *, bundle: bool) -> Response:
    wanted = TILE_WIDTH if width is None else width
    if len(hashes_or_entries) < wanted:
        raise ProblemError(404, "Tile not available", "the log has not reached this tile (yet)")
    items = hashes_or_entries[:wanted]
    body = b"".join(len(e).to_bytes(2, "big") + e for e in items) if bundle else b"".join(items)
    headers = IMMUTABLE if width is None else FRESH
    return Response(body, media_type="application/octet-stream", headers=headers)


@router.get(
    "/tile/entries/{path:path}",
    response_class=Response,
    responses=BINARY,
    summary="tlog-tiles entry bundle",
)
def entry_bundle(path: str, reader: ReaderDep) -> Response:
    index, width = _parse_tile_path(path)
    published = _published_size(reader)
    first = index * TILE_WIDTH
    stop = min(first + (TILE_WIDTH if width is None else width), published)
    return _tile_response(reader.entries(first, stop) if stop > first else [], width, bundle=True)


@router.get(
    "/tile/{level}/{path:path}",
    response_class=Response,
    responses=BINARY,
    summary="tlog-tiles hash tile",
)
def hash_tile(level: Annotated[int, Path(ge=0, le=63)], path: str, reader: ReaderDep) -> Response:
    if not 0 <= level <= 63:
        raise ProblemError(404, "Not a tile path", f"level {level} does not exist")
    index, width = _parse_tile_path(path)
    published = _published_size(reader)
    wanted = TILE_WIDTH if width is None else width
    # Only hashes of subtrees inside the published tree are served.
    available = (published >> (8 * level)) - index * TILE_WIDTH
    if available < wanted:
        raise ProblemError(404, "Tile not available", "the log has not reached this tile (yet)")
    return _tile_response(reader.tile(level, index, wanted), width, bundle=False)
