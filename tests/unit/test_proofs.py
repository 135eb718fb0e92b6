"""Proofs from the stored tree equal RFC 9162's, for every small size and random large ones."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.integrate import integrate, root_of_edge
from ledger.proofs import TILE_WIDTH, ProofBuilder


class MemoryTiles:
    """Tiles kept the way the stores keep them: leaves, plus nodes at levels ≥ 1."""

    def __init__(self, leaves: list[bytes], nodes: list[tuple[int, int, bytes]]) -> None:
        self.leaves = leaves
        self.nodes = {(level, index): h for level, index, h in nodes}
        self.reads = 0

    def tile(self, level: int, index: int, width: int) -> list[bytes]:
        self.reads += 1
        first = index * TILE_WIDTH
        if level == 0:
            return self.leaves[first : first + width]
        out = []
        for i in range(first, first + width):
            if (level, i) not in self.nodes:
                break
            out.append(self.nodes[(level, i)])
        return out


def build(n: int, batch: int = 7) -> tuple[list[bytes], MemoryTiles, list[bytes]]:
    leaves = [merkle.hash_leaf(f"entry {i}".encode()) for i in range(n)]
    size, edge, nodes = 0, [], []
    for start in range(0, n, batch):
        step = integrate(size, edge, leaves[start : start + batch])
        size, edge = step.size, step.edge
        nodes += step.nodes
    return leaves, MemoryTiles(leaves, nodes), edge


ALL = build(300)


@pytest.mark.parametrize("n", range(301))
def test_roots_and_proofs_match_rfc9162_for_every_size_to_300(n: int) -> None:
    """Root, every 7th inclusion proof and consistency from every 13th size match the RFC."""
    leaves, tiles, _ = ALL
    builder = ProofBuilder(tiles)
    assert builder.root(n) == merkle.root_from_leaf_hashes(leaves[:n])
    for i in range(0, n, 7):
        assert builder.inclusion(i, n) == merkle.inclusion_proof(i, leaves[:n])
    for m in range(0, n + 1, 13):
        assert builder.consistency(m, n) == merkle.consistency_proof(m, leaves[:n])


@pytest.mark.parametrize("batch", [1, 3, 256, 1000])
def test_edge_after_any_batching_gives_the_root(batch: int) -> None:
    """The right edge kept with the head folds to the RFC root however appends were batched."""
    leaves, _, edge = build(1500, batch)
    assert root_of_edge(edge) == merkle.root_from_leaf_hashes(leaves)


BIG = build(100_000, batch=500)
REFERENCE_ROOTS: dict[int, bytes] = {}


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_random_large_sizes(data: st.DataObject) -> None:
    """For random sizes up to 100,000, proofs verify against the reference root with few reads."""
    leaves, tiles, _ = BIG
    n = data.draw(st.integers(1, len(leaves)), label="size")
    m = data.draw(st.integers(0, n), label="old size")
    i = data.draw(st.integers(0, n - 1), label="index")
    if n not in REFERENCE_ROOTS:
        REFERENCE_ROOTS[n] = merkle.root_from_leaf_hashes(leaves[:n])
    if m not in REFERENCE_ROOTS:
        REFERENCE_ROOTS[m] = merkle.root_from_leaf_hashes(leaves[:m])
    tiles.reads = 0
    builder = ProofBuilder(tiles)
    root = builder.root(n)
    assert root == REFERENCE_ROOTS[n]
    merkle.verify_inclusion(leaves[i], i, n, builder.inclusion(i, n), root)
    merkle.verify_consistency(m, n, REFERENCE_ROOTS[m], root, builder.consistency(m, n))
    levels = 1 + (n.bit_length() - 1) // 8  # tile levels a tree of size n has
    assert tiles.reads <= 12 * levels  # O(log n): a few tiles per level, never a scan


def test_out_of_range_is_refused() -> None:
    """Asking for an index or size beyond the tree is a clear error."""
    _, tiles, _ = ALL
    builder = ProofBuilder(tiles)
    with pytest.raises(ValueError, match="not in a tree"):
        builder.inclusion(5, 5)
    with pytest.raises(ValueError, match="no consistency proof"):
        builder.consistency(6, 5)
    with pytest.raises(LookupError):
        builder.root(301)


def test_nodes_are_written_once_when_complete() -> None:
    """Integration emits exactly one node per complete 256-leaf (and 65,536-leaf) subtree."""
    _, tiles, _ = BIG
    assert len([k for k in tiles.nodes if k[0] == 1]) == 100_000 // 256
    assert len([k for k in tiles.nodes if k[0] == 2]) == 100_000 // 65_536
    first = tiles.nodes[(1, 0)]
    assert first == merkle.root_from_leaf_hashes(BIG[0][:256])
    assert hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT


def test_tile_cache_is_bounded_by_memory_and_keeps_one_version_of_a_partial_tile() -> None:
    from ledger.proofs import TileCache

    def levels(width: int) -> list[list[bytes]]:
        return [[bytes(32)] * width, [bytes(32)] * (width // 2)]

    cache = TileCache(max_bytes=200_000)
    for index in range(100):
        cache.put((0, index, 256), levels(256))
        assert cache.held_bytes <= 200_000
    assert 0 < len(cache) < 100
    assert cache.get((0, 99, 256)) is not None  # the newest stays
    assert cache.get((0, 0, 256)) is None  # the oldest went

    growing = TileCache()
    for width in range(1, 200):  # the last tile of a growing log, read at every size
        growing.put((0, 7, width), levels(width))
    assert len(growing) == 1
    assert growing.get((0, 7, 199)) is not None
    growing.put((0, 7, 5), levels(5))  # an older, narrower read does not replace it
    assert growing.get((0, 7, 199)) is not None
    assert growing.get((0, 7, 5)) is None
