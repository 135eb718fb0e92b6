"""Proposals: current text by section, every version and why it exists, the timeline.

Tables: ``pv_proposals`` (versioned rows: status, text version, outcomes), ``pv_versions``
(one row per text version, never changed), ``pv_amendments`` (versioned rows: proposed,
decided, incorporated) and ``pv_proposal_timeline`` (one row per entry about a proposal).
Individuals who sponsor a proposal (``proposal.individual_sponsor_recorded``) are personal
data, sealed in the entry (``ledger.vault``): the view keeps only their number.
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
    current_row,
    from_json,
    insert_row,
    replace_row,
    row_dict,
)
from projections.db import Db
from projections.diff import diff_as_html, diff_as_json, diff_versions

__all__ = [
    "ProposalsView",
    "compare",
    "get_proposal",
    "history",
    "list_amendments",
    "list_proposals",
    "list_versions",
    "version",
    "versions",
]

_DDL = [
    "CREATE TABLE IF NOT EXISTS pv_proposals (id TEXT NOT NULL, valid_from BIGINT NOT NULL, "
    "valid_to BIGINT, process_id TEXT, strand_id TEXT, title TEXT, status TEXT, "
    "text_version INTEGER, sponsor_org TEXT, outcomes TEXT, tabled_index BIGINT, "
    "tabled_time TEXT, PRIMARY KEY (id, valid_from))",
    "CREATE TABLE IF NOT EXISTS pv_versions (proposal_id TEXT NOT NULL, "
    "text_version INTEGER NOT NULL, created_index BIGINT NOT NULL, created_time TEXT, "
    "sections TEXT NOT NULL, based_on INTEGER, amendment_ids TEXT, note TEXT, meeting_id TEXT, "
    "actor TEXT, PRIMARY KEY (proposal_id, text_version))",
    "CREATE TABLE IF NOT EXISTS pv_amendments (proposal_id TEXT NOT NULL, "
    "amendment_id TEXT NOT NULL, valid_from BIGINT NOT NULL, valid_to BIGINT, "
    "base_version INTEGER, changes TEXT, rationale TEXT, proposer_org TEXT, meeting_id TEXT, "
    "proposed_index BIGINT, decision TEXT, consensus TEXT, dissenting_orgs TEXT, "
    "decided_meeting TEXT, decided_index BIGINT, decision_note TEXT, incorporated_in INTEGER, "
    "PRIMARY KEY (proposal_id, amendment_id, valid_from))",
    "CREATE TABLE IF NOT EXISTS pv_proposal_timeline (proposal_id TEXT NOT NULL, "
    "idx BIGINT NOT NULL, time TEXT NOT NULL, type TEXT NOT NULL, actor TEXT NOT NULL, "
    "detail TEXT NOT NULL, PRIMARY KEY (proposal_id, idx))",
]


class ProposalsView:
    """Proposals, their versions, amendments and timelines."""

    name = "proposals"
    tables = ("pv_proposals", "pv_versions", "pv_amendments", "pv_proposal_timeline")
    topics = ("proposal.",)  # the entry types it reads (by prefix)

    def create(self, db: Db) -> None:
        for statement in _DDL:
            db.execute(statement)
        add_columns(db, "pv_proposals", {"individual_sponsors": "BIGINT"})

    def apply(self, db: Db, entry: Entry) -> None:
        if not entry.type.startswith("proposal."):
            return
        pid, data, at = entry.subject_id, entry.data, entry.index
        kind = entry.type.split(".", 1)[1]
        actor = as_json(entry.actor)
        if "sections" in data:
            detail = as_json({k: v for k, v in data.items() if k != "sections"})
        else:
            detail = as_json(data)
        insert_row(
            db,
            "pv_proposal_timeline",
            {
                "proposal_id": pid,
                "idx": at,
                "time": entry.time,
                "type": entry.type,
                "actor": actor,
                "detail": detail,
            },
        )
        if kind == "tabled":
            replace_row(
                db,
                "pv_proposals",
                {"id": pid},
                at,
                {
                    "process_id": data["process_id"],
                    "strand_id": data["strand_id"],
                    "title": data["title"],
                    "status": "draft",
                    "text_version": 1,
                    "sponsor_org": data["sponsor_org"],
                    "outcomes": as_json([]),
                    "tabled_index": at,
                    "tabled_time": entry.time,
                    "individual_sponsors": 0,
                },
            )
            self._version(db, entry, 1, data["sections"], None, [], "", data.get("meeting_id"))
        elif kind == "amendment_proposed":
            replace_row(
                db,
                "pv_amendments",
                {"proposal_id": pid, "amendment_id": data["amendment_id"]},
                at,
                {
                    "base_version": data["base_version"],
                    "changes": as_json(data["changes"]),
                    "rationale": data["rationale"],
                    "proposer_org": data["proposer_org"],
                    "meeting_id": data["meeting_id"],
                    "proposed_index": at,
                },
            )
        elif kind == "amendment_decided":
            replace_row(
                db,
                "pv_amendments",
                {"proposal_id": pid, "amendment_id": data["amendment_id"]},
                at,
                {
                    "decision": data["decision"],
                    "consensus": data["consensus"],
                    "dissenting_orgs": as_json(data["dissenting_orgs"]),
                    "decided_meeting": data["meeting_id"],
                    "decided_index": at,
                    "decision_note": data["note"],
                },
            )
        elif kind == "revised":
            self._version(
                db,
                entry,
                data["text_version"],
                data["sections"],
                data["based_on"],
                data["amendment_ids"],
                data["note"],
                data["meeting_id"],
            )
            replace_row(db, "pv_proposals", {"id": pid}, at, {"text_version": data["text_version"]})
            for amendment_id in data["amendment_ids"]:
                replace_row(
                    db,
                    "pv_amendments",
                    {"proposal_id": pid, "amendment_id": amendment_id},
                    at,
                    {"incorporated_in": data["text_version"]},
                )
        elif kind == "status_changed":
            replace_row(db, "pv_proposals", {"id": pid}, at, {"status": data["new_status"]})
        elif kind == "legislative_outcome_linked":
            row = current_row(db, "pv_proposals", {"id": pid}) or {}
            outcomes = from_json(row.get("outcomes")) or []
            outcomes.append(
                {
                    "legislation": data["legislation"],
                    "provision": data["provision"],
                    "note": data["note"],
                    "index": at,
                }
            )
            replace_row(db, "pv_proposals", {"id": pid}, at, {"outcomes": as_json(outcomes)})
        elif kind == "individual_sponsor_recorded":
            # sealed personal data: only how many individuals sponsor it, never who
            row = current_row(db, "pv_proposals", {"id": pid}) or {}
            count = int(row.get("individual_sponsors") or 0) + 1
            replace_row(db, "pv_proposals", {"id": pid}, at, {"individual_sponsors": count})

    @staticmethod
    def _version(
        db: Db,
        entry: Entry,
        number: int,
        sections: Any,
        based_on: int | None,
        amendment_ids: list[str],
        note: str,
        meeting_id: str | None,
    ) -> None:
        insert_row(
            db,
            "pv_versions",
            {
                "proposal_id": entry.subject_id,
                "text_version": number,
                "created_index": entry.index,
                "created_time": entry.time,
                "sections": as_json(sections),
                "based_on": based_on,
                "amendment_ids": as_json(amendment_ids),
                "note": note,
                "meeting_id": meeting_id,
                "actor": as_json(entry.actor),
            },
        )


def _proposal_row(db: Db, pid: str, at: int) -> dict[str, Any] | None:
    cursor = db.execute(f"SELECT * FROM pv_proposals WHERE id = ? AND {CURRENT}", [pid, at, at])
    row = cursor.fetchone()
    if row is None:
        return None
    return row_dict(cursor, row)


def _limit(limit: int | None) -> tuple[str, list[Any]]:
    """A ``LIMIT ?`` clause and its parameter (nothing when ``limit`` is None)."""
    return ("", []) if limit is None else (" LIMIT ?", [max(0, limit)])


def get_proposal(db: Db, pid: str, at: int) -> dict[str, Any] | None:
    """The proposal as of index ``at``: status, current text by section, outcomes."""
    row = _proposal_row(db, pid, at)
    if row is None:
        return None
    text = version(db, pid, int(row["text_version"]), at)
    return {
        "id": pid,
        "title": row["title"],
        "status": row["status"],
        "process_id": row["process_id"],
        "strand_id": row["strand_id"],
        "sponsor_org": row["sponsor_org"],
        "text_version": row["text_version"],
        "sections": text["sections"] if text else [],
        "legislative_outcomes": from_json(row["outcomes"]) or [],
        "tabled_index": row["tabled_index"],
        "individual_sponsors": int(row.get("individual_sponsors") or 0),
        "as_of_index": at,
    }


def list_proposals(
    db: Db,
    at: int,
    *,
    strand_id: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    after: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """Every proposal in force at ``at`` (optionally by strand and status), by tabling order.

    Keyset paging: at most ``limit`` proposals, only those after the sort key ``after``
    (``(tabled_index, id)`` of the last one of the previous page)."""
    where: list[str] = [CURRENT]
    params: list[Any] = [at, at]
    if strand_id is not None:
        where.append("strand_id = ?")
        params.append(strand_id)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if after is not None:
        where.append("(tabled_index, id) > (?, ?)")
        params.extend(after)
    tail, more = _limit(limit)
    rows = db.all(
        "SELECT id, title, status, process_id, strand_id, sponsor_org, text_version, "
        f"tabled_index, tabled_time, outcomes FROM pv_proposals WHERE {' AND '.join(where)} "
        f"ORDER BY tabled_index, id{tail}",
        [*params, *more],
    )
    return [
        {
            "id": r[0],
            "title": r[1],
            "status": r[2],
            "process_id": r[3],
            "strand_id": r[4],
            "sponsor_org": r[5],
            "text_version": r[6],
            "tabled_index": r[7],
            "tabled_time": r[8],
            "legislative_outcomes": from_json(r[9]) or [],
            "as_of_index": at,
        }
        for r in rows
    ]


_AMENDMENT_COLUMNS = (
    "proposal_id, amendment_id, base_version, changes, rationale, proposer_org, meeting_id, "
    "proposed_index, decision, consensus, dissenting_orgs, decided_meeting, decided_index, "
    "decision_note, incorporated_in"
)


def _amendment_dict(r: Sequence[Any]) -> dict[str, Any]:
    """An amendment row (selected as :data:`_AMENDMENT_COLUMNS`), without its proposal id."""
    return {
        "amendment_id": r[1],
        "base_version": r[2],
        "changes": from_json(r[3]),
        "rationale": r[4],
        "proposer_org": r[5],
        "meeting_id": r[6],
        "proposed_index": r[7],
        "decision": r[8],
        "consensus": r[9],
        "dissenting_orgs": from_json(r[10]) or [],
        "decided_meeting": r[11],
        "decided_index": r[12],
        "decision_note": r[13],
        "incorporated_in": r[14],
    }


def _amendments(
    db: Db, pid: str, at: int, ids: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The proposal's amendments in force at ``at`` by id (only ``ids`` when given)."""
    params: list[Any] = [pid, at, at]
    only = ""
    if ids is not None:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        only = f" AND amendment_id IN ({', '.join('?' * len(wanted))})"
        params.extend(wanted)
    rows = db.all(
        f"SELECT {_AMENDMENT_COLUMNS} FROM pv_amendments WHERE proposal_id = ? AND {CURRENT}"
        f"{only} ORDER BY proposed_index",
        params,
    )
    return {r[1]: _amendment_dict(r) for r in rows}


def list_amendments(
    db: Db,
    at: int,
    *,
    proposal_id: str | None = None,
    limit: int | None = None,
    after: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """Every amendment proposed by ``at`` to any proposal (or to ``proposal_id``), with its
    decision and incorporation as of ``at``, in the order they were proposed.

    Keyset paging by ``(proposed_index, proposal_id, amendment_id)``."""
    where: list[str] = [CURRENT]
    params: list[Any] = [at, at]
    if proposal_id is not None:
        where.append("proposal_id = ?")
        params.append(proposal_id)
    if after is not None:
        where.append("(proposed_index, proposal_id, amendment_id) > (?, ?, ?)")
        params.extend(after)
    tail, more = _limit(limit)
    rows = db.all(
        f"SELECT {_AMENDMENT_COLUMNS} FROM pv_amendments WHERE {' AND '.join(where)} "
        f"ORDER BY proposed_index, proposal_id, amendment_id{tail}",
        [*params, *more],
    )
    return [{"proposal_id": r[0], **_amendment_dict(r)} for r in rows]


_VERSION_COLUMNS = (
    "text_version, created_index, created_time, sections, based_on, amendment_ids, note, "
    "meeting_id, actor"
)


def _version_dict(
    row: tuple[Any, ...], amendments: dict[str, dict[str, Any]], at: int
) -> dict[str, Any]:
    ids = from_json(row[5]) or []
    return {
        "text_version": row[0],
        "created_index": row[1],
        "created_time": row[2],
        "sections": from_json(row[3]),
        "based_on": row[4],
        "amendments": [amendments[i] for i in ids if i in amendments],
        "note": row[6],
        "meeting_id": row[7],
        "actor": from_json(row[8]),
        "as_of_index": at,
    }


def _amendment_ids(rows: Sequence[tuple[Any, ...]]) -> list[str]:
    return [i for row in rows for i in from_json(row[5]) or []]


def version(db: Db, pid: str, number: int, at: int) -> dict[str, Any] | None:
    """One text version as of ``at``: its sections and why it exists."""
    row = db.one(
        f"SELECT {_VERSION_COLUMNS} FROM pv_versions WHERE proposal_id = ? AND text_version = ? "
        "AND created_index <= ?",
        [pid, number, at],
    )
    if row is None:
        return None
    return _version_dict(row, _amendments(db, pid, at, _amendment_ids([row])), at)


def versions(
    db: Db,
    pid: str,
    at: int,
    *,
    limit: int | None = None,
    after: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """Every text version as of ``at``, oldest first, with provenance (two queries).

    Keyset paging: at most ``limit`` versions, those after ``after`` (``(text_version,)``)."""
    params: list[Any] = [pid, at]
    later = ""
    if after is not None:
        later = " AND text_version > ?"
        params.extend(after)
    tail, more = _limit(limit)
    rows = db.all(
        f"SELECT {_VERSION_COLUMNS} FROM pv_versions WHERE proposal_id = ? AND created_index <= ?"
        f"{later} ORDER BY text_version{tail}",
        [*params, *more],
    )
    amendments = _amendments(db, pid, at, _amendment_ids(rows))
    return [_version_dict(row, amendments, at) for row in rows]


def list_versions(
    db: Db, at: int, *, limit: int | None = None, after: Sequence[Any] | None = None
) -> list[dict[str, Any]]:
    """Every text version of every proposal made by ``at``, in log order, with the ids of
    the amendments it incorporates (see :func:`list_amendments` for those).

    Keyset paging by ``(created_index, proposal_id, text_version)``."""
    params: list[Any] = [at]
    later = ""
    if after is not None:
        later = " AND (created_index, proposal_id, text_version) > (?, ?, ?)"
        params.extend(after)
    tail, more = _limit(limit)
    rows = db.all(
        f"SELECT proposal_id, {_VERSION_COLUMNS} FROM pv_versions WHERE created_index <= ?"
        f"{later} ORDER BY created_index, proposal_id, text_version{tail}",
        [*params, *more],
    )
    return [
        {
            "proposal_id": r[0],
            "text_version": r[1],
            "created_index": r[2],
            "created_time": r[3],
            "based_on": r[5],
            "amendment_ids": from_json(r[6]) or [],
            "note": r[7],
            "meeting_id": r[8],
            "actor": from_json(r[9]),
            "sections": from_json(r[4]),
        }
        for r in rows
    ]


def compare(db: Db, pid: str, old: int, new: int, at: int) -> dict[str, Any] | None:
    """Section-aware word diff between two versions, as JSON operations and HTML."""
    a, b = version(db, pid, old, at), version(db, pid, new, at)
    if a is None or b is None:
        return None
    diffs = diff_versions(a["sections"], b["sections"])
    return {
        "proposal_id": pid,
        "from_version": old,
        "to_version": new,
        "operations": diff_as_json(diffs),
        "html": diff_as_html(diffs),
        "as_of_index": at,
    }


def history(
    db: Db,
    pid: str,
    at: int,
    *,
    limit: int | None = None,
    after: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """Every entry about the proposal up to ``at``: when, who, what, with the amendments'
    decisions, meetings and dissent where they apply.

    Keyset paging: at most ``limit`` entries, those after ``after`` (``(index,)``)."""
    params: list[Any] = [pid, at]
    later = ""
    if after is not None:
        later = " AND idx > ?"
        params.extend(after)
    tail, more = _limit(limit)
    rows = db.all(
        "SELECT idx, time, type, actor, detail FROM pv_proposal_timeline "
        f"WHERE proposal_id = ? AND idx <= ?{later} ORDER BY idx{tail}",
        [*params, *more],
    )
    return [
        {
            "index": r[0],
            "time": r[1],
            "type": r[2],
            "actor": from_json(r[3]),
            "detail": from_json(r[4]),
        }
        for r in rows
    ]
