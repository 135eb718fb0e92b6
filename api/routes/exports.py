"""Open-data bulk exports: every register whole, as CSV or NDJSON, as of any log index.

``GET /exports`` lists the registers; ``GET /exports/{register}.csv`` and
``GET /exports/{register}.ndjson`` stream one. An export reads at one log index (``as_of``,
default the latest; sent back as ``X-Ledger-Index`` and in the file name) and fetches the
register in keyset pages over its own connection, so memory stays bounded whatever the size
and entries recorded meanwhile do not change it. Registers show what the public reads show:
meetings withhold attendance as their disclosure mode says.

CSV: a header row, then one row per item, the columns always in the listed order; lists and
objects are compact JSON in their cell, null is an empty cell, booleans are ``true`` and
``false``. A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return gets a leading ``'``, so spreadsheets do not run it as a formula (CSV injection).
NDJSON: one JSON object per line with the same members, unaltered.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse

from api.errors import PROBLEM_JSON, ProblemError
from api.models_public import ExportRegister, Exports, Problem
from api.routes.public import AsOfQuery, Models, parse_as_of
from ledger.settings import Settings
from projections import meetings, organisations, process, proposals, publications
from projections.db import Db, connect_views
from projections.reader import SORT_KEYS

__all__ = [
    "CSV_MEDIA_TYPE",
    "NDJSON_MEDIA_TYPE",
    "REGISTERS",
    "csv_cell",
    "export_records",
    "router",
]

router = APIRouter(tags=["exports"])

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
NDJSON_MEDIA_TYPE = "application/x-ndjson"

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_CHUNK = 64 * 1024  # characters of CSV gathered before sending

Fetch = Callable[[Db, int, int, Sequence[Any] | None], list[dict[str, Any]]]


@dataclass(frozen=True)
class _Register:
    name: str
    description: str
    columns: tuple[str, ...]
    fetch: Fetch  # (db, at, limit, after) -> a page of items in sort-key order
    sort_key: str  # the listing in projections.reader.SORT_KEYS
    page: int = 500


def _timeline(db: Db, at: int, limit: int, after: Sequence[Any] | None) -> list[dict[str, Any]]:
    start = None if after is None else int(after[0])
    return process.entry_summaries(db, at, after=start, limit=limit)


REGISTERS: dict[str, _Register] = {
    r.name: r
    for r in (
        _Register(
            "proposals",
            "Every proposal tabled, with its status, current text version and legislative "
            "outcomes, in tabling order",
            (
                "id",
                "title",
                "status",
                "process_id",
                "strand_id",
                "sponsor_org",
                "text_version",
                "tabled_index",
                "tabled_time",
                "legislative_outcomes",
            ),
            lambda db, at, n, after: proposals.list_proposals(db, at, limit=n, after=after),
            "proposals",
        ),
        _Register(
            "versions",
            "Every text version of every proposal, with its sections and why it exists, in "
            "log order",
            (
                "proposal_id",
                "text_version",
                "created_index",
                "created_time",
                "based_on",
                "amendment_ids",
                "note",
                "meeting_id",
                "actor",
                "sections",
            ),
            lambda db, at, n, after: proposals.list_versions(db, at, limit=n, after=after),
            "all_versions",
            page=100,
        ),
        _Register(
            "amendments",
            "Every amendment proposed, with its decision, dissent and the version that took "
            "it in, in the order proposed",
            (
                "proposal_id",
                "amendment_id",
                "base_version",
                "changes",
                "rationale",
                "proposer_org",
                "meeting_id",
                "proposed_index",
                "decision",
                "consensus",
                "dissenting_orgs",
                "decided_meeting",
                "decided_index",
                "decision_note",
                "incorporated_in",
            ),
            lambda db, at, n, after: proposals.list_amendments(db, at, limit=n, after=after),
            "amendments",
        ),
        _Register(
            "meetings",
            "Every meeting scheduled, by start time (attendance withheld where the "
            "disclosure mode says so)",
            (
                "id",
                "process_id",
                "strand_id",
                "title",
                "starts_at",
                "disclosure",
                "convenor_org",
                "held",
                "held_at",
                "attending_orgs",
                "attendance_withheld",
                "attendee_count",
                "attending_individuals",
                "minutes",
                "scheduled_index",
            ),
            lambda db, at, n, after: meetings.list_meetings(db, at, limit=n, after=after),
            "meetings",
        ),
        _Register(
            "publications",
            "Every publication, with the hash of its bytes and its state, in publishing order",
            (
                "id",
                "process_id",
                "pub_kind",
                "title",
                "sha256",
                "size",
                "media_type",
                "proposal_ids",
                "meeting_ids",
                "state",
                "superseded_by",
                "reason",
                "published_index",
                "published_time",
                "state_index",
                "commitment",
                "release_at",
                "salt",
                "released_index",
                "override_reason",
                "prerelease_grants",
            ),
            lambda db, at, n, after: publications.list_publications(db, at, limit=n, after=after),
            "publications",
        ),
        _Register(
            "organisations",
            "Every organisation registered, in registration order",
            ("id", "name", "org_kind", "registered_index"),
            lambda db, at, n, after: organisations.list_organisations(db, at, limit=n, after=after),
            "organisations",
        ),
        _Register(
            "memberships",
            "Every membership of a process group in force, in the order they began",
            ("org_id", "process_id", "group", "role", "since_index"),
            lambda db, at, n, after: organisations.list_memberships(db, at, limit=n, after=after),
            "memberships",
        ),
        _Register(
            "timeline",
            "Every entry of the log, summarised (index, time, type, subject), in log order",
            ("index", "time", "type", "subject_kind", "subject_id"),
            _timeline,
            "entries",
        ),
    )
}
"""The registers an export can hold, by name."""


def csv_cell(value: Any) -> str:
    """One CSV cell: empty for null, ``true``/``false``, numbers as written, lists and
    objects as compact JSON, text with a ``'`` before a leading formula character."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def export_records(
    settings: Settings, name: str, at: int, *, page: int | None = None
) -> Iterator[dict[str, Any]]:
    """The items of register ``name`` at log index ``at``, each with exactly the register's
    columns, fetched ``page`` at a time (default: the register's page size) over a
    connection of its own, opened on the first item asked for and closed when the
    iteration ends or is dropped."""
    register = REGISTERS[name]
    size = register.page if page is None else max(1, page)
    key = SORT_KEYS[register.sort_key]
    db = connect_views(settings)
    try:
        after: Sequence[Any] | None = None
        while True:
            items = register.fetch(db, at, size, after)
            for item in items:
                yield {column: item.get(column) for column in register.columns}
            if len(items) < size:
                return
            after = key(items[-1])
    finally:
        db.close()


def _csv(register: _Register, records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(register.columns)
    for record in records:
        writer.writerow([csv_cell(value) for value in record.values()])
        if buffer.tell() >= _CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _ndjson(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    lines: list[bytes] = []
    size = 0
    for record in records:
        line = orjson.dumps(record) + b"\n"
        lines.append(line)
        size += len(line)
        if size >= _CHUNK:
            yield b"".join(lines)
            lines.clear()
            size = 0
    yield b"".join(lines)


def _register(name: str) -> _Register:
    found = REGISTERS.get(name)
    if found is None:
        raise ProblemError(
            404,
            "No such register",
            f"there is no register {name!r} to export (have {', '.join(REGISTERS)})",
        )
    return found


def _export(
    request: Request, models: Models, name: str, as_of: str | None, suffix: str
) -> StreamingResponse:
    register = _register(name)
    at = models.at(parse_as_of(as_of))
    records = export_records(request.app.state.settings, register.name, at)
    body, media_type = (
        (_csv(register, records), CSV_MEDIA_TYPE)
        if suffix == "csv"
        else (_ndjson(records), NDJSON_MEDIA_TYPE)
    )
    headers = {
        "X-Ledger-Index": str(at),
        "Content-Disposition": f'attachment; filename="{register.name}-as-of-{at}.{suffix}"',
    }
    return StreamingResponse(body, media_type=media_type, headers=headers)


# OpenAPI ----------------------------------------------------------------------------------

_PROBLEM = {PROBLEM_JSON: {"schema": Problem.model_json_schema()}}
_EXPORT_HEADERS = {
    "X-Ledger-Index": {
        "description": "the log index the export reflects",
        "schema": {"type": "integer"},
    },
    "Content-Disposition": {
        "description": '``attachment; filename="{register}-as-of-{index}.{format}"``',
        "schema": {"type": "string"},
    },
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "an invalid as_of", "content": _PROBLEM},
    404: {"description": "no such register", "content": _PROBLEM},
    "default": {"description": "any other error", "content": _PROBLEM},
}
RegisterPath = Annotated[str, Path(description=f"the register: one of {', '.join(REGISTERS)}")]


@router.get(
    "/exports",
    summary="The registers available as open-data exports",
    response_model=None,
    responses={200: {"model": Exports, "description": "every register with its downloads"}},
)
def exports() -> dict[str, Any]:
    return {
        "registers": [
            ExportRegister(
                name=r.name,
                description=r.description,
                columns=list(r.columns),
                csv=f"/exports/{r.name}.csv",
                ndjson=f"/exports/{r.name}.ndjson",
            ).model_dump()
            for r in REGISTERS.values()
        ]
    }


@router.get(
    "/exports/{register}.csv",
    summary="A register as CSV",
    description="A header row, then one row per item; columns in a fixed order (see "
    "``GET /exports``); lists and objects as compact JSON; null as an empty cell. A text "
    "cell starting with =, +, -, @, a tab or a carriage return is prefixed with a single "
    "quote (') so spreadsheets do not evaluate it as a formula (CSV injection).",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the register, streamed",
            "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
            "headers": _EXPORT_HEADERS,
        },
        **_ERRORS,
    },
)
def export_csv(
    register: RegisterPath, request: Request, models: Models, as_of: AsOfQuery = None
) -> StreamingResponse:
    return _export(request, models, register, as_of, "csv")


@router.get(
    "/exports/{register}.ndjson",
    summary="A register as NDJSON",
    description="One JSON object per line, with the members listed by ``GET /exports``.",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the register, streamed",
            "content": {NDJSON_MEDIA_TYPE: {"schema": {"type": "string"}}},
            "headers": _EXPORT_HEADERS,
        },
        **_ERRORS,
    },
)
def export_ndjson(
    register: RegisterPath, request: Request, models: Models, as_of: AsOfQuery = None
) -> StreamingResponse:
    return _export(request, models, register, as_of, "ndjson")
