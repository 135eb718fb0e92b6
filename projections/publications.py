"""Publications: every document published, by the hash of its exact bytes, and its fate.

Table: ``pv_publications`` (versioned rows: published, then withdrawn or superseded; or
embargoed, pre-release access granted, then released). Withdrawn and superseded publications
stay in the register with their state and reason. An embargoed publication shows its title,
scheduled release, commitment and grants, but no hash, size or media type until released;
then also the salt, so anyone can check SHA-256(salt ‖ bytes) against the commitment.
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
    replace_row,
)
from projections.db import Db

__all__ = ["PublicationsView", "get_publication", "list_publications"]

_DDL = [
    "CREATE TABLE IF NOT EXISTS pv_publications (id TEXT NOT NULL, valid_from BIGINT NOT NULL, "
    "valid_to BIGINT, process_id TEXT, pub_kind TEXT, title TEXT, sha256 TEXT, size BIGINT, "
    "media_type TEXT, proposal_ids TEXT, meeting_ids TEXT, state TEXT, superseded_by TEXT, "
    "reason TEXT, published_index BIGINT, published_time TEXT, commitment TEXT, release_at TEXT, "
    "salt TEXT, released_index BIGINT, override_reason TEXT, grants TEXT, "
    "PRIMARY KEY (id, valid_from))",
]
_ADDED = {
    "commitment": "TEXT",
    "release_at": "TEXT",
    "salt": "TEXT",
    "released_index": "BIGINT",
    "override_reason": "TEXT",
    "grants": "TEXT",
}

_COLUMNS = (
    "id, process_id, pub_kind, title, sha256, size, media_type, proposal_ids, meeting_ids, "
    "state, superseded_by, reason, published_index, published_time, valid_from, commitment, "
    "release_at, salt, released_index, override_reason, grants"
)


class PublicationsView:
    """The register of publications."""

    name = "publications"
    tables = ("pv_publications",)
    topics = ("publication.",)  # the entry types it reads (by prefix)

    def create(self, db: Db) -> None:
        for statement in _DDL:
            db.execute(statement)
        add_columns(db, "pv_publications", _ADDED)

    def apply(self, db: Db, entry: Entry) -> None:
        if not entry.type.startswith("publication."):
            return
        pub_id, data, at = entry.subject_id, entry.data, entry.index
        kind = entry.type.split(".", 1)[1]
        if kind == "published":
            replace_row(
                db,
                "pv_publications",
                {"id": pub_id},
                at,
                {
                    "process_id": data["process_id"],
                    "pub_kind": data["pub_kind"],
                    "title": data["title"],
                    "sha256": data["sha256"],
                    "size": data["size"],
                    "media_type": data["media_type"],
                    "proposal_ids": as_json(data["proposal_ids"]),
                    "meeting_ids": as_json(data["meeting_ids"]),
                    "state": "published",
                    "superseded_by": None,
                    "reason": None,
                    "published_index": at,
                    "published_time": entry.time,
                },
            )
        elif kind == "embargoed":
            replace_row(
                db,
                "pv_publications",
                {"id": pub_id},
                at,
                {
                    "process_id": data["process_id"],
                    "pub_kind": data["pub_kind"],
                    "title": data["title"],
                    "sha256": None,
                    "size": None,
                    "media_type": None,
                    "proposal_ids": as_json(data["proposal_ids"]),
                    "meeting_ids": as_json(data["meeting_ids"]),
                    "state": "embargoed",
                    "superseded_by": None,
                    "reason": None,
                    "published_index": at,
                    "published_time": entry.time,
                    "commitment": data["commitment"],
                    "release_at": data["release_at"],
                    "salt": None,
                    "released_index": None,
                    "override_reason": None,
                    "grants": as_json([]),
                },
            )
        elif kind == "prerelease_access_granted":
            row = current_row(db, "pv_publications", {"id": pub_id}) or {}
            grants = [
                *(from_json(row.get("grants")) or []),
                {
                    "organisation_id": data["organisation_id"],
                    "authorised_by": data["authorised_by"],
                    "reason": data["reason"],
                    "index": at,
                    "time": entry.time,
                },
            ]
            replace_row(db, "pv_publications", {"id": pub_id}, at, {"grants": as_json(grants)})
        elif kind == "released":
            replace_row(
                db,
                "pv_publications",
                {"id": pub_id},
                at,
                {
                    "state": "published",
                    "sha256": data["sha256"],
                    "size": data["size"],
                    "media_type": data["media_type"],
                    "salt": data["salt"],
                    "released_index": at,
                    "override_reason": data["override_reason"],
                },
            )
        elif kind == "withdrawn":
            replace_row(
                db,
                "pv_publications",
                {"id": pub_id},
                at,
                {"state": "withdrawn", "reason": data["reason"]},
            )
        elif kind == "superseded":
            replace_row(
                db,
                "pv_publications",
                {"id": pub_id},
                at,
                {
                    "state": "superseded",
                    "superseded_by": data["superseded_by"],
                    "reason": data["reason"],
                },
            )


def _public(row: tuple[Any, ...], at: int) -> dict[str, Any]:
    return {
        "id": row[0],
        "process_id": row[1],
        "pub_kind": row[2],
        "title": row[3],
        "sha256": row[4],
        "size": row[5],
        "media_type": row[6],
        "proposal_ids": from_json(row[7]) or [],
        "meeting_ids": from_json(row[8]) or [],
        "state": row[9],
        "superseded_by": row[10],
        "reason": row[11],
        "published_index": row[12],
        "published_time": row[13],
        "state_index": row[14],
        "commitment": row[15],
        "release_at": row[16],
        "salt": row[17],
        "released_index": row[18],
        "override_reason": row[19],
        "prerelease_grants": from_json(row[20]) or [],
        "as_of_index": at,
    }


def get_publication(db: Db, publication_id: str, at: int) -> dict[str, Any] | None:
    """The publication as of index ``at``: what was published, its state and why, and the
    publications it superseded (``supersedes``)."""
    row = db.one(
        f"SELECT {_COLUMNS} FROM pv_publications WHERE id = ? AND {CURRENT}",
        [publication_id, at, at],
    )
    if row is None:
        return None
    publication = _public(row, at)
    publication["supersedes"] = [
        r[0]
        for r in db.all(
            f"SELECT id FROM pv_publications WHERE superseded_by = ? AND {CURRENT} "
            "ORDER BY published_index",
            [publication_id, at, at],
        )
    ]
    return publication


def _lists(db: Db, column: str) -> str:
    """SQL that is true when the JSON list of strings in ``column`` holds the parameter."""
    if db.dialect == "sqlite":
        return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = ?)"
    return f"({column})::jsonb @> jsonb_build_array((?)::text)"


def list_publications(
    db: Db,
    at: int,
    *,
    proposal_id: str | None = None,
    meeting_id: str | None = None,
    pub_kind: str | None = None,
    limit: int | None = None,
    after: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """Every publication made by ``at``, whatever its state (optionally about a proposal or a
    meeting, or of one kind), in publishing order.

    Keyset paging: at most ``limit`` publications, those after the sort key ``after``
    (``(published_index, id)`` of the last one of the previous page)."""
    where: list[str] = [CURRENT]
    params: list[Any] = [at, at]
    if pub_kind is not None:
        where.append("pub_kind = ?")
        params.append(pub_kind)
    if proposal_id is not None:
        where.append(_lists(db, "proposal_ids"))
        params.append(proposal_id)
    if meeting_id is not None:
        where.append(_lists(db, "meeting_ids"))
        params.append(meeting_id)
    if after is not None:
        where.append("(published_index, id) > (?, ?)")
        params.extend(after)
    tail = ""
    if limit is not None:
        tail = " LIMIT ?"
        params.append(max(0, limit))
    rows = db.all(
        f"SELECT {_COLUMNS} FROM pv_publications WHERE {' AND '.join(where)} "
        f"ORDER BY published_index, id{tail}",
        params,
    )
    return [_public(r, at) for r in rows]
