"""Processes: their strands and phases, and the log's "latest changes" feed.

Tables: ``pv_processes`` (versioned rows: title, summary, current phase), ``pv_strands`` and
``pv_phases`` (one row per strand added or phase started, never changed). :func:`timeline`
reads the runner's own ``pv_entries`` index of every entry.
Every query takes ``at``: the log index the answer reflects (see ``Runner.as_of_index``).
"""

from __future__ import annotations

from typing import Any

from projections.base import CURRENT, Entry, insert_row, replace_row
from projections.db import Db

__all__ = [
    "TIMELINE_MAX",
    "ProcessView",
    "entry_summaries",
    "get_process",
    "list_processes",
    "timeline",
]

TIMELINE_MAX = 500
"""The most entries one :func:`timeline` page returns."""

_DDL = [
    "CREATE TABLE IF NOT EXISTS pv_processes (id TEXT NOT NULL, valid_from BIGINT NOT NULL, "
    "valid_to BIGINT, title TEXT, summary TEXT, current_phase TEXT, started_index BIGINT, "
    "started_time TEXT, PRIMARY KEY (id, valid_from))",
    "CREATE TABLE IF NOT EXISTS pv_strands (process_id TEXT NOT NULL, strand_id TEXT NOT NULL, "
    "title TEXT, summary TEXT, added_index BIGINT NOT NULL, "
    "PRIMARY KEY (process_id, strand_id))",
    "CREATE TABLE IF NOT EXISTS pv_phases (process_id TEXT NOT NULL, phase_id TEXT NOT NULL, "
    "title TEXT, summary TEXT, started_index BIGINT NOT NULL, started_time TEXT NOT NULL, "
    "PRIMARY KEY (process_id, phase_id))",
]


class ProcessView:
    """Processes, strands and phases."""

    name = "process"
    tables = ("pv_processes", "pv_strands", "pv_phases")
    topics = ("process.",)  # the entry types it reads (by prefix)

    def create(self, db: Db) -> None:
        for statement in _DDL:
            db.execute(statement)

    def apply(self, db: Db, entry: Entry) -> None:
        if not entry.type.startswith("process."):
            return
        pid, data, at = entry.subject_id, entry.data, entry.index
        kind = entry.type.split(".", 1)[1]
        if kind == "started":
            replace_row(
                db,
                "pv_processes",
                {"id": pid},
                at,
                {
                    "title": data["title"],
                    "summary": data["summary"],
                    "current_phase": None,
                    "started_index": at,
                    "started_time": entry.time,
                },
            )
        elif kind == "strand_added":
            insert_row(
                db,
                "pv_strands",
                {
                    "process_id": pid,
                    "strand_id": data["strand_id"],
                    "title": data["title"],
                    "summary": data["summary"],
                    "added_index": at,
                },
            )
        elif kind == "phase_started":
            insert_row(
                db,
                "pv_phases",
                {
                    "process_id": pid,
                    "phase_id": data["phase_id"],
                    "title": data["title"],
                    "summary": data["summary"],
                    "started_index": at,
                    "started_time": entry.time,
                },
            )
            replace_row(db, "pv_processes", {"id": pid}, at, {"current_phase": data["phase_id"]})


def get_process(db: Db, process_id: str, at: int) -> dict[str, Any] | None:
    """The process as of index ``at``: its strands, and its phases in order, each with when
    it started and when the next one started (``ended_*``, None for the current phase)."""
    row = db.one(
        f"SELECT title, summary, current_phase, started_index, started_time FROM pv_processes "
        f"WHERE id = ? AND {CURRENT}",
        [process_id, at, at],
    )
    if row is None:
        return None
    strands = [
        {"strand_id": r[0], "title": r[1], "summary": r[2], "added_index": r[3]}
        for r in db.all(
            "SELECT strand_id, title, summary, added_index FROM pv_strands "
            "WHERE process_id = ? AND added_index <= ? ORDER BY added_index",
            [process_id, at],
        )
    ]
    started = db.all(
        "SELECT phase_id, title, summary, started_index, started_time FROM pv_phases "
        "WHERE process_id = ? AND started_index <= ? ORDER BY started_index",
        [process_id, at],
    )
    phases = []
    for number, r in enumerate(started):
        after = started[number + 1] if number + 1 < len(started) else None
        phases.append(
            {
                "phase_id": r[0],
                "title": r[1],
                "summary": r[2],
                "started_index": r[3],
                "started_time": r[4],
                "ended_index": after[3] if after else None,
                "ended_time": after[4] if after else None,
            }
        )
    return {
        "id": process_id,
        "title": row[0],
        "summary": row[1],
        "current_phase": row[2],
        "started_index": row[3],
        "started_time": row[4],
        "strands": strands,
        "phases": phases,
        "as_of_index": at,
    }


def list_processes(db: Db, at: int) -> list[dict[str, Any]]:
    """Every process started by ``at``, oldest first."""
    rows = db.all(
        f"SELECT id, title, current_phase, started_index, started_time FROM pv_processes "
        f"WHERE {CURRENT} ORDER BY started_index",
        [at, at],
    )
    return [
        {
            "id": r[0],
            "title": r[1],
            "current_phase": r[2],
            "started_index": r[3],
            "started_time": r[4],
            "as_of_index": at,
        }
        for r in rows
    ]


def _summary(r: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "index": r[0],
        "time": r[1],
        "type": r[2],
        "subject_kind": r[2].split(".", 1)[0],
        "subject_id": r[3],
    }


def timeline(
    db: Db, at: int, *, limit: int = 50, before: int | None = None
) -> list[dict[str, Any]]:
    """The latest entries up to ``at``, newest first: at most ``limit`` (capped at
    :data:`TIMELINE_MAX`), and only those before index ``before`` when given (the next page
    starts before the last index of this one)."""
    limit = max(0, min(limit, TIMELINE_MAX))
    newest = at if before is None else min(at, before - 1)
    rows = db.all(
        "SELECT idx, time, type, subject_id FROM pv_entries WHERE idx <= ? "
        "ORDER BY idx DESC LIMIT ?",
        [newest, limit],
    )
    return [_summary(r) for r in rows]


def entry_summaries(
    db: Db, at: int, *, after: int | None = None, limit: int = TIMELINE_MAX
) -> list[dict[str, Any]]:
    """Entries up to ``at`` in log order, oldest first, summarised as :func:`timeline` does:
    at most ``limit`` of them (not capped), only those after index ``after`` when given."""
    rows = db.all(
        "SELECT idx, time, type, subject_id FROM pv_entries WHERE idx <= ? AND idx > ? "
        "ORDER BY idx LIMIT ?",
        [at, -1 if after is None else after, max(0, limit)],
    )
    return [_summary(r) for r in rows]
