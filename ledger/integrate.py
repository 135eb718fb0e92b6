"""Integrate: grow the stored Merkle tree as entries are sequenced.

The tree is stored the way C2SP tlog-tiles lays it out: level ``L`` holds the hashes of the
complete subtrees of height ``8·L``. Level 0 is the leaf hashes, kept beside each entry;
levels ≥ 1 are the rows of the nodes table, written once, when the subtree completes. The
right edge of the tree (one perfect-subtree root per set bit of the size, largest first) is
kept with the head, so integrating a batch reads nothing and any root is a fold of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.merkle import EMPTY_ROOT

__all__ = ["TILE_HEIGHT", "Integrated", "integrate", "pack_edge", "root_of_edge", "unpack_edge"]

TILE_HEIGHT = 8  # tlog-tiles: 2^8 = 256 hashes per tile


@dataclass(frozen=True, slots=True)
class Integrated:
    """The tree after a batch: new size, new right edge, nodes completed at tile levels."""

    size: int
    edge: list[bytes]
    nodes: list[tuple[int, int, bytes]]  # (level ≥ 1, index at that level, hash)
    root: bytes


def integrate(size: int, edge: Sequence[bytes], leaf_hashes: Sequence[bytes]) -> Integrated:
    """Append leaf hashes to a tree of ``size`` whose right edge is ``edge``."""
    if len(edge) != size.bit_count():
        raise ValueError(f"a tree of size {size} has {size.bit_count()} edge hashes")
    stack = list(edge)
    nodes: list[tuple[int, int, bytes]] = []
    sha256 = hashlib.sha256
    for leaf in leaf_hashes:
        node = leaf
        carry = size
        height = 0
        while carry & 1:
            node = sha256(b"\x01" + stack.pop() + node).digest()
            carry >>= 1
            height += 1
            if height % TILE_HEIGHT == 0:
                nodes.append((height // TILE_HEIGHT, ((size + 1) >> height) - 1, node))
        stack.append(node)
        size += 1
    return Integrated(size, stack, nodes, root_of_edge(stack))


def root_of_edge(edge: Sequence[bytes]) -> bytes:
    """RFC 9162 root from the right edge (largest subtree first)."""
    if not edge:
        return EMPTY_ROOT
    node = edge[-1]
    for left in reversed(edge[:-1]):
        node = hashlib.sha256(b"\x01" + left + node).digest()
    return node


def pack_edge(edge: Sequence[bytes]) -> bytes:
    return b"".join(edge)


def unpack_edge(blob: bytes) -> list[bytes]:
    if len(blob) % 32:
        raise ValueError("stored tree edge is not a whole number of hashes")
    return [blob[i : i + 32] for i in range(0, len(blob), 32)]
