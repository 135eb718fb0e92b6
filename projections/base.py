"""What every read model is: tables in the views' database, fed one entry at a time.

Rows of a read model are versioned by log index: ``valid_from`` is the index of the entry
that made a row true, ``valid_to`` the index that replaced it (NULL while current). So the
state "as of index k" is the rows with ``valid_from <= k`` and no ``valid_to <= k`` — the
same rows a rebuild of entries 0..k would leave — and needs no replay.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from projections.db import Db

__all__ = [
    "CURRENT",
    "Entry",
    "View",
    "as_json",
    "current_row",
    "from_json",
    "replace_row",
]

# Filter for rows in force at index ? (pass the index twice).
CURRENT = "valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"


@dataclass(frozen=True, slots=True)
class Entry:
    """A log entry as the read models see it (parsed once by the runner)."""

    index: int
    type: str
    subject_id: str
    subject_version: int
    time: str
    actor: dict[str, str]
    data: dict[str, Any]


class View(Protocol):
    """A read model: its name, its tables, and how one entry changes them."""

    @property
    def name(self) -> str:
        """Its name, for tracking and ``ledger projections``."""

    @property
    def tables(self) -> Sequence[str]:
        """Its tables, emptied by a rebuild."""

    def create(self, db: Db) -> None:
        """Create its tables and indexes if they do not exist."""

    def apply(self, db: Db, entry: Entry) -> None:
        """Apply one entry (ignore types it does not read)."""


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def current_row(db: Db, table: str, keys: Mapping[str, Any]) -> dict[str, Any] | None:
    """The row in force now (``valid_to IS NULL``) for ``keys``, as a dict."""
    where = " AND ".join(f"{k} = ?" for k in keys)
    cursor = db.execute(
        f"SELECT * FROM {table} WHERE {where} AND valid_to IS NULL", list(keys.values())
    )
    row = cursor.fetchone()
    if row is None:
        return None
    names = [d[0] for d in cursor.description]
    return dict(zip(names, row, strict=True))


def replace_row(
    db: Db, table: str, keys: Mapping[str, Any], index: int, changes: Mapping[str, Any]
) -> None:
    """Close the current row for ``keys`` at ``index`` and insert its successor."""
    row = current_row(db, table, keys) or {}
    where = " AND ".join(f"{k} = ?" for k in keys)
    db.execute(
        f"UPDATE {table} SET valid_to = ? WHERE {where} AND valid_to IS NULL",
        [index, *keys.values()],
    )
    row.update(keys)
    row.update(changes)
    row["valid_from"] = index
    row["valid_to"] = None
    columns = list(row)
    db.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [row[c] for c in columns],
    )
