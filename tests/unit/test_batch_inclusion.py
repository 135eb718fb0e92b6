"""Inclusion proofs for any entry of a batch, computed from the old edge and the batch alone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.integrate import integrate
from ledger.merkle import hash_leaf, inclusion_proof, root_from_leaf_hashes, verify_inclusion
from ledger.sequencer import Sealed


def _sealed(old: int, count: int) -> tuple[Sealed, list[bytes]]:
    leaves = [hash_leaf(b"entry %d" % i) for i in range(old + count)]
    before = integrate(0, [], leaves[:old])
    after = integrate(old, before.edge, leaves[old:])
    entries: list[object] = [object()] * count  # only their number matters here
    return Sealed(entries, leaves[old:], after, None, b"", list(before.edge)), leaves  # type: ignore[arg-type]


@settings(max_examples=300)
@given(st.integers(0, 1100), st.integers(1, 80), st.data())
def test_batch_inclusion_equals_the_reference(old: int, count: int, data: st.DataObject) -> None:
    """Every position's proof equals RFC 9162 PATH over all leaves, and verifies."""
    sealed, leaves = _sealed(old, count)
    root = root_from_leaf_hashes(leaves)
    position = data.draw(st.integers(0, count - 1))
    proof = sealed.inclusion(position)
    assert proof == inclusion_proof(old + position, leaves)
    verify_inclusion(leaves[old + position], old + position, old + count, proof, root)


def test_every_position_of_awkward_sizes() -> None:
    """Exhaustive over small trees: every old size, batch size and position."""
    for old in range(0, 40):
        for count in range(1, 20):
            sealed, leaves = _sealed(old, count)
            for position in range(count):
                assert sealed.inclusion(position) == inclusion_proof(old + position, leaves)


@pytest.mark.parametrize("bad", [-1, 3])
def test_position_out_of_range_is_refused(bad: int) -> None:
    sealed, _ = _sealed(5, 3)
    with pytest.raises(ValueError, match="not in a batch"):
        sealed.inclusion(bad)
