"""Consultations: questions, responses, closing, the external review and the government's
response to each recommendation.

Tables: ``pv_consultations`` (versioned rows: opened, counts, closed, reviewed, responded)
and ``pv_consultation_responses`` (one row per response, never changed). Organisations'
answers are public. Individuals are personal data sealed in the entry (``ledger.vault``):
the view never decrypts anything and never keeps a respondent's sealed details; it keeps an
individual's answers only where they consented to publication (the entry then holds them
in the open), so it rebuilds identically before and after an erasure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.base import (
    CURRENT,
    Entry,
    as_json,
    current_row,
    from_json,
    insert_row,
    replace_row,
)
from projections.db import Db

__all__ = ["ConsultationsView", "get_consultation", "list_consultations"]

_DDL = [
    "CREATE TABLE IF NOT EXISTS pv_consultations (id TEXT NOT NULL, valid_from BIGINT NOT NULL, "
    "valid_to BIGINT, process_id TEXT, title TEXT, questions TEXT, documents TEXT, "
    "closes_at TEXT, closed INTEGER NOT NULL DEFAULT 0, closed_time TEXT, "
    "opened_index BIGINT, organisation_responses BIGINT, individual_responses BIGINT, "
    "published_individual_responses BIGINT, review TEXT, government_responses TEXT, "
    "PRIMARY KEY (id, valid_from))",
    "CREATE TABLE IF NOT EXISTS pv_consultation_responses (consultation_id TEXT NOT NULL, "
    "response_id TEXT NOT NULL, idx BIGINT NOT NULL, time TEXT NOT NULL, "
    "respondent TEXT NOT NULL, org_id TEXT, answers TEXT, "
    "PRIMARY KEY (consultation_id, response_id))",
]

_COLUMNS = (
    "id, process_id, title, questions, documents, closes_at, closed, closed_time, "
    "opened_index, organisation_responses, individual_responses, "
    "published_individual_responses, review, government_responses"
)


class ConsultationsView:
    """Consultations and their public responses."""

    name = "consultations"
    tables = ("pv_consultations", "pv_consultation_responses")
    topics = ("consultation.",)  # the entry types it reads (by prefix)

    def create(self, db: Db) -> None:
        for statement in _DDL:
            db.execute(statement)

    def apply(self, db: Db, entry: Entry) -> None:
        if not entry.type.startswith("consultation."):
            return
        cid, data, at = entry.subject_id, entry.data, entry.index
        kind = entry.type.split(".", 1)[1]
        keys = {"id": cid}
        if kind == "opened":
            replace_row(
                db,
                "pv_consultations",
                keys,
                at,
                {
                    "process_id": data["process_id"],
                    "title": data["title"],
                    "questions": as_json(data["questions"]),
                    "documents": as_json(data["documents"]),
                    "closes_at": data["closes_at"],
                    "closed": 0,
                    "closed_time": None,
                    "opened_index": at,
                    "organisation_responses": 0,
                    "individual_responses": 0,
                    "published_individual_responses": 0,
                    "review": None,
                    "government_responses": as_json([]),
                },
            )
            return
        row = _current(db, cid)
        if kind == "response_received":
            individual = data["org_id"] is None
            published = data["answers"] is not None
            insert_row(
                db,
                "pv_consultation_responses",
                {
                    "consultation_id": cid,
                    "response_id": data["response_id"],
                    "idx": at,
                    "time": entry.time,
                    "respondent": "individual" if individual else "organisation",
                    "org_id": data["org_id"],
                    # sealed answers (no consent) are never copied here
                    "answers": as_json(data["answers"]) if published else None,
                },
            )
            changes = (
                {
                    "individual_responses": row["individual_responses"] + 1,
                    "published_individual_responses": row["published_individual_responses"]
                    + (1 if published else 0),
                }
                if individual
                else {"organisation_responses": row["organisation_responses"] + 1}
            )
            replace_row(db, "pv_consultations", keys, at, changes)
        elif kind == "closed":
            replace_row(db, "pv_consultations", keys, at, {"closed": 1, "closed_time": entry.time})
        elif kind == "review_recorded":
            review = {
                "reviewer_org": data["reviewer_org"],
                "findings": data["findings"],
                "recommendations": data["recommendations"],
                "index": at,
            }
            replace_row(db, "pv_consultations", keys, at, {"review": as_json(review)})
        elif kind == "government_responded":
            responses = from_json(row["government_responses"]) or []
            responses.append(
                {
                    "recommendation_id": data["recommendation_id"],
                    "response": data["response"],
                    "text": data["text"],
                    "index": at,
                }
            )
            replace_row(
                db, "pv_consultations", keys, at, {"government_responses": as_json(responses)}
            )


def _current(db: Db, cid: str) -> dict[str, Any]:
    row = current_row(db, "pv_consultations", {"id": cid})
    if row is None:
        raise LookupError(f"consultation {cid} was not opened")
    return row


def _public(row: Sequence[Any], at: int) -> dict[str, Any]:
    organisations, individuals, published = (int(v or 0) for v in row[9:12])
    return {
        "id": row[0],
        "process_id": row[1],
        "title": row[2],
        "questions": from_json(row[3]),
        "documents": from_json(row[4]),
        "closes_at": row[5],
        "status": "closed" if row[6] else "open",
        "closed_time": row[7],
        "opened_index": row[8],
        "response_count": organisations + individuals,
        "organisation_responses": organisations,
        "individual_responses": individuals,
        "published_individual_responses": published,
        "as_of_index": at,
    }


def get_consultation(db: Db, consultation_id: str, at: int) -> dict[str, Any] | None:
    """The consultation as of index ``at``: its public responses, review and the
    government's responses. Individuals are "an individual"; unpublished answers absent."""
    row = db.one(
        f"SELECT {_COLUMNS} FROM pv_consultations WHERE id = ? AND {CURRENT}",
        [consultation_id, at, at],
    )
    if row is None:
        return None
    consultation = _public(row, at)
    consultation["responses"] = [
        {
            "response_id": r[0],
            "index": r[1],
            "time": r[2],
            "respondent": "an individual" if r[3] == "individual" else "an organisation",
            "org_id": r[4],
            "answers": from_json(r[5]),
        }
        for r in db.all(
            "SELECT response_id, idx, time, respondent, org_id, answers "
            "FROM pv_consultation_responses WHERE consultation_id = ? AND idx <= ? "
            "AND answers IS NOT NULL ORDER BY idx",
            [consultation_id, at],
        )
    ]
    consultation["review"] = from_json(row[12])
    consultation["government_responses"] = from_json(row[13]) or []
    return consultation


def list_consultations(
    db: Db, at: int, *, limit: int | None = None, after: Sequence[Any] | None = None
) -> list[dict[str, Any]]:
    """Every consultation opened by ``at``, in opening order (keyset paging on
    ``(opened_index, id)``)."""
    where = [CURRENT]
    params: list[Any] = [at, at]
    if after is not None:
        where.append("(opened_index, id) > (?, ?)")
        params.extend(after)
    tail = ""
    if limit is not None:
        tail = " LIMIT ?"
        params.append(max(0, limit))
    rows = db.all(
        f"SELECT {_COLUMNS} FROM pv_consultations WHERE {' AND '.join(where)} "
        f"ORDER BY opened_index, id{tail}",
        params,
    )
    return [_public(r, at) for r in rows]
