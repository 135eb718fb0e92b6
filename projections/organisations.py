"""Organisations: who is registered, their memberships of strands and groups, and what they
took part in.

Tables: ``pv_organisations`` (versioned rows) and ``pv_memberships`` (versioned by
organisation, process and group; an ended membership's row gets ``valid_to`` and no
successor). The participation summary reads other views' tables: ``pv_meetings``
(:mod:`projections.meetings`) and ``pv_amendments`` (:mod:`projections.proposals`), so a
runner serving :func:`get_organisation` must run those views too.
Every query takes ``at``: the log index the answer reflects (see ``Runner.as_of_index``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.base import CURRENT, Entry, close_row, from_json, replace_row
from projections.db import Db
from projections.meetings import UNATTRIBUTED as _UNATTRIBUTED_MODES

__all__ = [
    "ATTRIBUTED_ATTENDANCE",
    "OrganisationsView",
    "get_organisation",
    "list_memberships",
    "list_organisations",
]

ATTRIBUTED_ATTENDANCE = ("on_record", "non_attributed")
"""Disclosure modes of the meetings whose attendance counts towards participation."""
UNATTRIBUTED = tuple(sorted(_UNATTRIBUTED_MODES))
"""Disclosure modes of the meetings whose amendments and dissent count for no organisation."""

_DDL = [
    "CREATE TABLE IF NOT EXISTS pv_organisations (id TEXT NOT NULL, valid_from BIGINT NOT NULL, "
    "valid_to BIGINT, name TEXT, org_kind TEXT, registered_index BIGINT, "
    "PRIMARY KEY (id, valid_from))",
    "CREATE TABLE IF NOT EXISTS pv_memberships (org_id TEXT NOT NULL, process_id TEXT NOT NULL, "
    "grp TEXT NOT NULL, valid_from BIGINT NOT NULL, valid_to BIGINT, role TEXT, "
    "PRIMARY KEY (org_id, process_id, grp, valid_from))",
]


class OrganisationsView:
    """Organisations and their memberships."""

    name = "organisations"
    tables = ("pv_organisations", "pv_memberships")
    topics = ("organisation.",)  # the entry types it reads (by prefix)

    def create(self, db: Db) -> None:
        for statement in _DDL:
            db.execute(statement)

    def apply(self, db: Db, entry: Entry) -> None:
        if not entry.type.startswith("organisation."):
            return
        oid, data, at = entry.subject_id, entry.data, entry.index
        kind = entry.type.split(".", 1)[1]
        if kind == "registered":
            replace_row(
                db,
                "pv_organisations",
                {"id": oid},
                at,
                {"name": data["name"], "org_kind": data["org_kind"], "registered_index": at},
            )
        elif kind == "membership_added":
            replace_row(
                db,
                "pv_memberships",
                {"org_id": oid, "process_id": data["process_id"], "grp": data["group"]},
                at,
                {"role": data["role"]},
            )
        elif kind == "membership_ended":
            close_row(
                db,
                "pv_memberships",
                {"org_id": oid, "process_id": data["process_id"], "grp": data["group"]},
                at,
            )


def _listing(db: Db, statement: str, params: list[Any], oid: str) -> int:
    """How many rows of ``statement`` list ``oid`` in the JSON list they select: the
    statement's last condition is a LIKE on that list, which only narrows; the JSON decides."""
    rows = db.all(statement, [*params, f'%"{oid}"%'])
    return sum(1 for r in rows if oid in (from_json(r[0]) or []))


def _participation(db: Db, oid: str, at: int) -> dict[str, int]:
    modes = ", ".join("?" for _ in ATTRIBUTED_ATTENDANCE)
    meetings = _listing(
        db,
        f"SELECT attending_orgs FROM pv_meetings WHERE {CURRENT} AND held = 1 "
        f"AND disclosure IN ({modes}) AND attending_orgs LIKE ?",
        [at, at, *ATTRIBUTED_ATTENDANCE],
        oid,
    )
    # Older entries may name organisations at meetings that attribute no one: not counted.
    silent = ", ".join("?" for _ in UNATTRIBUTED)
    confidential = f"(SELECT id FROM pv_meetings WHERE disclosure IN ({silent}))"
    proposed = db.one(
        f"SELECT COUNT(*) FROM pv_amendments WHERE {CURRENT} AND proposer_org = ? "
        f"AND (meeting_id IS NULL OR meeting_id NOT IN {confidential})",
        [at, at, oid, *UNATTRIBUTED],
    )
    dissents = _listing(
        db,
        f"SELECT dissenting_orgs FROM pv_amendments WHERE {CURRENT} "
        f"AND (decided_meeting IS NULL OR decided_meeting NOT IN {confidential}) "
        "AND dissenting_orgs LIKE ?",
        [at, at, *UNATTRIBUTED],
        oid,
    )
    return {
        "meetings_attended": meetings,
        "amendments_proposed": int(proposed[0]) if proposed else 0,
        "dissents": dissents,
    }


def get_organisation(db: Db, org_id: str, at: int) -> dict[str, Any] | None:
    """The organisation as of index ``at``: its memberships in force and a participation
    summary (meetings attended where attendance is disclosed, amendments it proposed,
    decisions it dissented from)."""
    row = db.one(
        f"SELECT name, org_kind, registered_index FROM pv_organisations WHERE id = ? AND {CURRENT}",
        [org_id, at, at],
    )
    if row is None:
        return None
    memberships = [
        {"process_id": r[0], "group": r[1], "role": r[2], "since_index": r[3]}
        for r in db.all(
            f"SELECT process_id, grp, role, valid_from FROM pv_memberships WHERE org_id = ? "
            f"AND {CURRENT} ORDER BY valid_from, grp",
            [org_id, at, at],
        )
    ]
    return {
        "id": org_id,
        "name": row[0],
        "org_kind": row[1],
        "registered_index": row[2],
        "memberships": memberships,
        "participation": _participation(db, org_id, at),
        "as_of_index": at,
    }


def list_organisations(
    db: Db,
    at: int,
    *,
    org_kind: str | None = None,
    limit: int | None = None,
    after: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """Every organisation registered by ``at`` (optionally of one kind), by registration.

    Keyset paging: at most ``limit`` organisations, those after the sort key ``after``
    (``(registered_index, id)`` of the last one of the previous page)."""
    where: list[str] = [CURRENT]
    params: list[Any] = [at, at]
    if org_kind is not None:
        where.append("org_kind = ?")
        params.append(org_kind)
    if after is not None:
        where.append("(registered_index, id) > (?, ?)")
        params.extend(after)
    tail = ""
    if limit is not None:
        tail = " LIMIT ?"
        params.append(max(0, limit))
    rows = db.all(
        f"SELECT id, name, org_kind, registered_index FROM pv_organisations "
        f"WHERE {' AND '.join(where)} ORDER BY registered_index, id{tail}",
        params,
    )
    return [
        {"id": r[0], "name": r[1], "org_kind": r[2], "registered_index": r[3], "as_of_index": at}
        for r in rows
    ]


def list_memberships(
    db: Db,
    at: int,
    *,
    org_id: str | None = None,
    limit: int | None = None,
    after: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """Every membership in force at ``at`` (optionally of one organisation), in the order
    they began: ``{"org_id", "process_id", "group", "role", "since_index"}``.

    Keyset paging by ``(since_index, org_id, process_id, group)``."""
    where: list[str] = [CURRENT]
    params: list[Any] = [at, at]
    if org_id is not None:
        where.append("org_id = ?")
        params.append(org_id)
    if after is not None:
        where.append("(valid_from, org_id, process_id, grp) > (?, ?, ?, ?)")
        params.extend(after)
    tail = ""
    if limit is not None:
        tail = " LIMIT ?"
        params.append(max(0, limit))
    rows = db.all(
        f"SELECT org_id, process_id, grp, role, valid_from FROM pv_memberships "
        f"WHERE {' AND '.join(where)} ORDER BY valid_from, org_id, process_id, grp{tail}",
        params,
    )
    return [
        {"org_id": r[0], "process_id": r[1], "group": r[2], "role": r[3], "since_index": r[4]}
        for r in rows
    ]
