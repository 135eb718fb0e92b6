"""ledger.tokens.issuing_disagreement: a token row against the entry that issued it."""

from __future__ import annotations

import uuid

import orjson
from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import canonical
from ledger.tokens import issuing_disagreement

_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)
_ROLES = st.sampled_from(["recorder", "publisher", "admin"])


def _issued(token_id: str, principal: str, org: str, role: str, kind: str) -> bytes:
    return canonical(
        {
            "actor": {"id": "setup", "org": "", "role": "admin"},
            "data": {"note": "", "org": org, "principal": principal, "role": role},
            "index": 3,
            "prev": "0" * 64,
            "subject": {"id": token_id, "kind": "access_token", "version": 1},
            "time": "2026-01-01T00:00:00.000000Z",
            "type": kind,
        }
    )


@given(principal=_TEXT, org=_TEXT, role=_ROLES, other=_TEXT, field=st.integers(0, 3))
def test_a_row_agrees_only_with_its_own_issuing_entry(
    principal: str, org: str, role: str, other: str, field: int
) -> None:
    token_id = str(uuid.uuid4())
    entry = _issued(token_id, principal, org, role, "access_token.issued")
    assert issuing_disagreement(token_id, principal, org, role, entry) is None
    row = [token_id, principal, org, role]
    if row[field] == other:
        return
    row[field] = other
    why = issuing_disagreement(row[0], row[1], row[2], row[3], entry)
    assert why is not None
    assert ("token id", "holder", "organisation", "role")[field] in why


@given(st.binary(max_size=200))
def test_any_bytes_at_the_index_are_refused_cleanly(entry: bytes) -> None:
    assert issuing_disagreement(str(uuid.uuid4()), "a", "", "admin", entry) is not None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=10,
)


@given(_JSON)
def test_any_json_at_the_index_is_refused_cleanly(value: object) -> None:
    entry = orjson.dumps(value)
    assert issuing_disagreement(str(uuid.uuid4()), "a", "", "admin", entry) is not None


def test_an_entry_of_another_type_or_no_entry_is_refused() -> None:
    token_id = str(uuid.uuid4())
    revoked = _issued(token_id, "a", "", "admin", "access_token.revoked")
    assert "not a token's issue" in str(issuing_disagreement(token_id, "a", "", "admin", revoked))
    assert "no entry" in str(issuing_disagreement(token_id, "a", "", "admin", None))
