"""A record's entries are found from the hashed entry bytes, not from the event rows (both
stores). Red-team finding 3: re-pointing event rows with SQL hid a record's latest entries
from ``GET /subjects/{id}/entries``; now hiding one means editing hashed bytes."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import LedgerApplication
from ledger.encoding import GENESIS_PREV, encode_entry
from ledger.storage import open_reader
from ledger.storage.postgres import ENTRY_SUBJECT as PG_SUBJECT
from ledger.storage.sqlite import ENTRY_SUBJECT as SQLITE_SUBJECT
from tests.conftest import Store
from tests.helpers import record_sample

_TRICKY = st.sampled_from(['"', "\\", "}", "{", ",", ":", "subject", "id", "prev", "time"])
_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_TEXT = st.lists(st.one_of(_TRICKY, st.text(_CHARS, max_size=8)), max_size=6).map("".join)
_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), _TEXT),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(_TRICKY, _TEXT), inner, max_size=3),
    ),
    max_leaves=12,
)


def _subject_in_db(store: Store, entry: bytes) -> Any:
    """What the store's index expression reads from ``entry`` as its subject id."""
    conn = sqlite3.connect(":memory:") if store.kind == "sqlite" else store.connect()
    try:
        if store.kind == "sqlite":
            sql = f"SELECT {SQLITE_SUBJECT} FROM (SELECT ? AS entry)"
            return conn.execute(sql, (entry,)).fetchone()[0]
        query = PG_SUBJECT.as_string(conn)
        return conn.execute(
            f"SELECT {query} FROM (SELECT %s::bytea AS entry) AS t", (entry,)
        ).fetchone()[0]
    finally:
        conn.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.dictionaries(st.one_of(_TRICKY, _TEXT), _JSON, max_size=4),
    actor=st.dictionaries(_TEXT, _TEXT, max_size=2),
    subject=st.uuids(),
    version=st.integers(1, 2**31),
    kind=st.from_regex(r"[a-z_]{1,20}", fullmatch=True),
)
def test_the_index_reads_the_entrys_own_subject(
    store: Store, data: Any, actor: Any, subject: uuid.UUID, version: int, kind: str
) -> None:
    """Whatever ``data`` and ``actor`` hold (a nested "subject" with another id included),
    the expression finds the entry's own subject."""
    decoy = {
        "prev": "a" * 64,
        "subject": {"id": str(uuid.UUID(int=7)), "kind": kind, "version": 1},
        "time": "2030-01-01T00:00:00.000000Z",
        "type": "decoy",
    }
    entry = encode_entry(
        index=3,
        prev=GENESIS_PREV,
        type=f"{kind}.changed",
        subject={"kind": kind, "id": str(subject), "version": version},
        time="2030-01-01T00:00:00.000000Z",
        actor=actor,
        data={**data, "nested": decoy, "zz": decoy},
    )
    assert _subject_in_db(store, entry) == str(subject)
    assert _subject_in_db(store, b"\xff not json") is None


def test_re_pointed_event_rows_do_not_change_a_records_entries(store: Store) -> None:
    """The insider's SQL of finding 3 moves a record's last event rows to another aggregate:
    the record's entries are still all found (and the row edit is ``ledger verify``'s)."""
    app = LedgerApplication(store.settings)
    sample = record_sample(app, amendments=2)
    app.close()
    subject = str(sample.proposal_id)
    reader = open_reader(store.settings)
    try:
        before = reader.subject_indexes(subject, 10**6, 500)
    finally:
        reader.close()
    assert len(before) >= 3
    real, fake = uuid.UUID(subject), uuid.UUID(int=1)
    stored = (lambda u: u.hex) if store.kind == "sqlite" else (lambda u: u)
    conn = store.connect()
    try:
        conn.execute(
            store.q(
                "UPDATE ledger_events SET originator_id = ? "
                "WHERE originator_id = ? AND originator_version >= ?"
            ),
            (stored(fake), stored(real), len(before) - 1),
        )
    finally:
        conn.close()
    reader = open_reader(store.settings)
    try:
        assert reader.subject_indexes(subject, 10**6, 500) == before
        assert reader.subject_indexes(str(fake), 10**6, 500) == []
        assert reader.subject_indexes(subject, before[-1], 500) == before[:-1]
        assert reader.subject_indexes(subject, 10**6, 1, before[0]) == before[1:2]
    finally:
        reader.close()
