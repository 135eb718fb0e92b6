"""Meetings: when and how they were held, who attended, their outcomes and agreed minutes.

Tables: ``pv_meetings`` (versioned rows: scheduled, held, minutes agreed) and
``pv_meeting_outcomes`` (one row per recorded outcome, never changed). The tables keep
everything the log says; the queries honour each meeting's disclosure mode: Chatham House
and private meetings do not show who attended (their ``meeting.held_in_confidence`` entry
does not say either: it holds one salted commitment per attendee, so only the number of
attendees is known), and outcome items of non-attributed,
Chatham House and private meetings lose their ``orgs`` (who said what).
Individuals who attended (``meeting.held_with_people``) are personal data, sealed in the
entry (``ledger.vault``): the view never decrypts them and keeps only their number
(``attending_individuals``), so it rebuilds identically before and after an erasure.
Every query takes ``at``: the log index the answer reflects (see ``Runner.as_of_index``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.base import (
    CURRENT,
    Entry,
    add_columns,
    as_json,
    from_json,
    insert_row,
    replace_row,
)
from projections.db import Db

__all__ = [
    "ATTENDANCE_WITHHELD",
    "UNATTRIBUTED",
    "MeetingsView",
    "get_meeting",
    "list_meetings",
]

ATTENDANCE_WITHHELD = frozenset({"chatham_house", "private"})
"""Disclosure modes whose attending organisations are not shown."""

UNATTRIBUTED = frozenset({"non_attributed", "chatham_house", "private"})
"""Disclosure modes whose outcome items are shown without their ``orgs``."""

_DDL = [
    "CREATE TABLE IF NOT EXISTS pv_meetings (id TEXT NOT NULL, valid_from BIGINT NOT NULL, "
    "valid_to BIGINT, process_id TEXT, strand_id TEXT, title TEXT, starts_at TEXT, "
    "disclosure TEXT, convenor_org TEXT, held INTEGER NOT NULL DEFAULT 0, held_at TEXT, "
    "attending_orgs TEXT, minutes TEXT, scheduled_index BIGINT, attendee_count BIGINT, "
    "individual_count BIGINT, PRIMARY KEY (id, valid_from))",
    "CREATE TABLE IF NOT EXISTS pv_meeting_outcomes (meeting_id TEXT NOT NULL, "
    "outcome_id TEXT NOT NULL, idx BIGINT NOT NULL, time TEXT NOT NULL, items TEXT NOT NULL, "
    "PRIMARY KEY (meeting_id, outcome_id))",
    "CREATE INDEX IF NOT EXISTS pv_meetings_starts ON pv_meetings (starts_at)",
]

_COLUMNS = (
    "id, process_id, strand_id, title, starts_at, disclosure, convenor_org, held, held_at, "
    "attending_orgs, minutes, scheduled_index, attendee_count, individual_count"
)


class MeetingsView:
    """Meetings and their outcomes."""

    name = "meetings"
    tables = ("pv_meetings", "pv_meeting_outcomes")
    topics = ("meeting.",)  # the entry types it reads (by prefix)

    def create(self, db: Db) -> None:
        for statement in _DDL:
            db.execute(statement)
        add_columns(db, "pv_meetings", {"attendee_count": "BIGINT", "individual_count": "BIGINT"})

    def apply(self, db: Db, entry: Entry) -> None:
        if not entry.type.startswith("meeting."):
            return
        mid, data, at = entry.subject_id, entry.data, entry.index
        kind = entry.type.split(".", 1)[1]
        if kind == "scheduled":
            replace_row(
                db,
                "pv_meetings",
                {"id": mid},
                at,
                {
                    "process_id": data["process_id"],
                    "strand_id": data["strand_id"],
                    "title": data["title"],
                    "starts_at": data["starts_at"],
                    "disclosure": data["disclosure"],
                    "convenor_org": data["convenor_org"],
                    "held": 0,
                    "held_at": None,
                    "attending_orgs": as_json([]),
                    "minutes": None,
                    "scheduled_index": at,
                    "attendee_count": 0,
                    "individual_count": 0,
                },
            )
        elif kind in ("held", "held_with_people"):
            replace_row(
                db,
                "pv_meetings",
                {"id": mid},
                at,
                {
                    "held": 1,
                    "held_at": data["held_at"],
                    "attending_orgs": as_json(data["attending_orgs"]),
                    "attendee_count": len(data["attending_orgs"]),
                    # sealed personal data: only how many individuals, never who
                    "individual_count": len(data.get("attending_people", [])),
                },
            )
        elif kind == "held_in_confidence":
            replace_row(
                db,
                "pv_meetings",
                {"id": mid},
                at,
                {
                    "held": 1,
                    "held_at": data["held_at"],
                    "attending_orgs": as_json([]),
                    "attendee_count": len(data["attendance_commitments"]),
                },
            )
        elif kind == "outcome_recorded":
            insert_row(
                db,
                "pv_meeting_outcomes",
                {
                    "meeting_id": mid,
                    "outcome_id": data["outcome_id"],
                    "idx": at,
                    "time": entry.time,
                    "items": as_json(data["items"]),
                },
            )
        elif kind == "minutes_agreed":
            minutes = {
                "sha256": data["sha256"],
                "size": data["size"],
                "media_type": data["media_type"],
            }
            replace_row(db, "pv_meetings", {"id": mid}, at, {"minutes": as_json(minutes)})


def _public(row: tuple[Any, ...], at: int) -> dict[str, Any]:
    """One meeting row as the public may see it under its disclosure mode."""
    disclosure = row[5]
    withheld = disclosure in ATTENDANCE_WITHHELD
    attending = from_json(row[9]) or []
    return {
        "id": row[0],
        "process_id": row[1],
        "strand_id": row[2],
        "title": row[3],
        "starts_at": row[4],
        "disclosure": disclosure,
        "convenor_org": row[6],
        "held": bool(row[7]),
        "held_at": row[8],
        "attending_orgs": None if withheld else attending,
        "attendance_withheld": withheld,
        "attendee_count": len(attending) if row[12] is None else int(row[12]),
        "attending_individuals": 0 if row[13] is None else int(row[13]),
        "minutes": from_json(row[10]),
        "scheduled_index": row[11],
        "as_of_index": at,
    }


def _items(items: list[dict[str, Any]], disclosure: str) -> list[dict[str, Any]]:
    if disclosure not in UNATTRIBUTED:
        return items
    return [{k: v for k, v in item.items() if k != "orgs"} for item in items]


def get_meeting(db: Db, meeting_id: str, at: int) -> dict[str, Any] | None:
    """The meeting as of index ``at``, with the outcomes recorded up to ``at``."""
    row = db.one(
        f"SELECT {_COLUMNS} FROM pv_meetings WHERE id = ? AND {CURRENT}", [meeting_id, at, at]
    )
    if row is None:
        return None
    meeting = _public(row, at)
    meeting["outcomes"] = [
        {
            "outcome_id": r[0],
            "index": r[1],
            "time": r[2],
            "items": _items(from_json(r[3]), meeting["disclosure"]),
        }
        for r in db.all(
            "SELECT outcome_id, idx, time, items FROM pv_meeting_outcomes "
            "WHERE meeting_id = ? AND idx <= ? ORDER BY idx",
            [meeting_id, at],
        )
    ]
    return meeting


def list_meetings(
    db: Db,
    at: int,
    *,
    strand_id: str | None = None,
    process_id: str | None = None,
    limit: int | None = None,
    after: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """Every meeting scheduled by ``at`` (optionally by strand and process), by start time.

    Keyset paging: at most ``limit`` meetings, those after the sort key ``after``
    (``(starts_at, scheduled_index, id)`` of the last one of the previous page)."""
    where: list[str] = [CURRENT]
    params: list[Any] = [at, at]
    if strand_id is not None:
        where.append("strand_id = ?")
        params.append(strand_id)
    if process_id is not None:
        where.append("process_id = ?")
        params.append(process_id)
    if after is not None:
        where.append("(starts_at, scheduled_index, id) > (?, ?, ?)")
        params.extend(after)
    tail = ""
    if limit is not None:
        tail = " LIMIT ?"
        params.append(max(0, limit))
    rows = db.all(
        f"SELECT {_COLUMNS} FROM pv_meetings WHERE {' AND '.join(where)} "
        f"ORDER BY starts_at, scheduled_index, id{tail}",
        params,
    )
    return [_public(r, at) for r in rows]
