"""The personal-data vault: sealed values round-trip, are bound to their person, and are
unreadable forever once the person is erased."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInputError, LedgerError
from ledger.vault import ErasedError, MemoryKeyStore, Sealed, Vault, new_master_key

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
people = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != "")


@settings(max_examples=150)
@given(people, json_values)
def test_seal_then_open_round_trips_and_hides_the_plaintext(person: str, value: object) -> None:
    vault = Vault(new_master_key(), MemoryKeyStore())
    sealed = vault.seal(person, value)
    assert vault.open(sealed) == value
    assert set(sealed.as_entry()) == {"person", "key_id", "nonce", "ciphertext"}
    assert Sealed.from_entry(json.loads(json.dumps(sealed.as_entry()))) == sealed
    if isinstance(value, str) and len(value) >= 4 and value not in person:
        assert value not in json.dumps(sealed.as_entry())


@settings(max_examples=60)
@given(people, json_values)
def test_erasure_makes_every_copy_unreadable_even_after_a_new_key(
    person: str, value: object
) -> None:
    keys = MemoryKeyStore()
    vault = Vault(new_master_key(), keys)
    sealed = [vault.seal(person, value) for _ in range(3)]
    assert vault.erase(person) == 1
    for copy in sealed:
        with pytest.raises(ErasedError):
            vault.open(copy)
    fresh = vault.seal(person, "new data")
    assert fresh.key_id != sealed[0].key_id
    assert vault.open(fresh) == "new data"
    with pytest.raises(ErasedError):
        vault.open(sealed[0])


def test_a_sealed_value_is_bound_to_its_person_and_bytes() -> None:
    vault = Vault(new_master_key(), MemoryKeyStore())
    alice = vault.seal("alice", {"email": "alice@example.org"})
    vault.seal("bob", "x")
    moved = dataclasses.replace(alice, person="bob")
    with pytest.raises((ErasedError, InvalidInputError)):
        vault.open(moved)
    raw = bytearray(base64.b64decode(alice.ciphertext))
    raw[0] ^= 1
    flipped = dataclasses.replace(alice, ciphertext=base64.b64encode(raw).decode())
    with pytest.raises(InvalidInputError, match="altered"):
        vault.open(flipped)


def test_another_master_key_opens_nothing() -> None:
    keys = MemoryKeyStore()
    sealed = Vault(new_master_key(), keys).seal("carol", "secret")
    with pytest.raises(LedgerError, match="master key"):
        Vault(new_master_key(), keys).open(sealed)


@pytest.mark.parametrize(
    "bad",
    [None, {}, {"person": "p"}, {"person": 1, "key_id": "k", "nonce": "n", "ciphertext": "c"}],
)
def test_malformed_sealed_values_are_refused(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        Sealed.from_entry(bad)


def test_master_key_size_and_person_are_checked() -> None:
    with pytest.raises(InvalidInputError):
        Vault(b"short", MemoryKeyStore())
    with pytest.raises(InvalidInputError):
        Vault(new_master_key(), MemoryKeyStore()).seal("  ", "x")
