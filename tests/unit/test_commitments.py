"""Salted commitments (ledger.commitments): the function, its properties, and the worked
example of docs/VERIFYING.md §13."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.commitments import (
    SALT_BYTES,
    attendance_commitment,
    check_attendance_proof,
    commit,
    matches,
    new_salt,
)

DOCS = Path(__file__).parent.parent.parent / "docs" / "VERIFYING.md"
salts = st.binary(min_size=SALT_BYTES, max_size=SALT_BYTES)
org_ids = st.uuids().map(str)


def _example(name: str) -> str:
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(rf"<!-- example:{name} -->\s*```\n(.*?)\n```", text, re.S)
    assert match, name
    return match.group(1).strip()


def test_the_worked_example_of_verifying_md() -> None:
    salt = bytes.fromhex(_example("commitment-salt"))
    document = b"Budget statement\n"
    assert len(document) == 17
    assert hashlib.sha256(document).hexdigest() == _example("commitment-sha256")
    assert commit(salt, document) == _example("commitment-document")
    assert matches(_example("commitment-document"), salt.hex(), document)
    org = "3f8d3b0e-5c35-5c01-ad87-7f08c331bb84"
    assert attendance_commitment(salt, org) == _example("commitment-attendance")


@given(salt=salts, value=st.binary(max_size=256))
def test_recomputation_round_trips(salt: bytes, value: bytes) -> None:
    c = commit(salt, value)
    assert c == hashlib.sha256(salt + value).hexdigest()
    assert len(c) == 64
    assert matches(c, salt, value)
    assert matches(c, salt.hex(), value)
    assert not matches(c, salt, value + b"x")


@given(a=salts, b=salts, org=org_ids)
def test_distinct_salts_give_distinct_commitments(a: bytes, b: bytes, org: str) -> None:
    if a != b:
        assert attendance_commitment(a, org) != attendance_commitment(b, org)
    else:
        assert attendance_commitment(a, org) == attendance_commitment(b, org)


@given(salt=salts, org=org_ids, other=org_ids)
def test_a_commitment_does_not_fit_another_organisation(salt: bytes, org: str, other: str) -> None:
    if org != other:
        assert not matches(attendance_commitment(salt, org), salt, other.encode())


def test_fresh_salts_and_bad_input() -> None:
    assert len({new_salt() for _ in range(100)}) == 100
    assert all(len(new_salt()) == SALT_BYTES for _ in range(3))
    with pytest.raises(ValueError, match="32 bytes"):
        commit(b"short", b"x")
    assert not matches("0" * 64, "not hex", b"x")
    assert not matches("0" * 64, "00" * 16, b"x")


def _held(commitments: list[str]) -> dict[str, object]:
    return {
        "type": "meeting.held_in_confidence",
        "index": 7,
        "subject": {"id": "m1", "kind": "meeting", "version": 2},
        "data": {"attendance_commitments": sorted(commitments), "held_at": "2026-01-01"},
    }


@given(orgs=st.lists(org_ids, min_size=1, max_size=5, unique=True), pick=st.integers(0, 4))
def test_attendance_proofs(orgs: list[str], pick: int) -> None:
    salted = {org: new_salt() for org in orgs}
    entry = _held([attendance_commitment(s, o) for o, s in salted.items()])
    org = orgs[pick % len(orgs)]
    commitment = attendance_commitment(salted[org], org)
    position = entry["data"]["attendance_commitments"].index(commitment)  # type: ignore[index]
    proof = {
        "meeting_id": "m1",
        "organisation": org,
        "salt": salted[org].hex(),
        "position": position,
        "index": 7,
    }
    assert check_attendance_proof(entry, proof)
    assert check_attendance_proof(json.dumps(entry).encode(), proof)
    assert not check_attendance_proof(entry, {**proof, "organisation": "someone-else"})
    assert not check_attendance_proof(entry, {**proof, "salt": new_salt().hex()})
    assert not check_attendance_proof(entry, {**proof, "position": len(orgs)})
    assert not check_attendance_proof(entry, {**proof, "meeting_id": "m2"})
    assert not check_attendance_proof(entry, {**proof, "index": 8})
    assert not check_attendance_proof({**entry, "type": "meeting.held"}, proof)
