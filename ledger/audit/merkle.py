"""RFC 9162 §2.1 Merkle tree hashing and proof verification, for the auditor alone.

* leaf hash ``SHA-256(0x00 || entry)``, node hash ``SHA-256(0x01 || left || right)``,
  empty tree ``SHA-256("")``;
* :func:`verify_inclusion` follows §2.1.3.2 and :func:`verify_consistency` §2.1.4.2 step by
  step (leaf indices from 0);
* :class:`CompactRange` computes the root of a growing tree with one hash per set bit of
  its size, and can be saved and loaded, so an audit resumes where the last one stopped.

Policy beyond the RFC: every hash is exactly 32 bytes; a consistency proof from size 0
(the empty tree is a prefix of every tree) or between equal sizes is the empty list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ledger.audit.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "hash_children",
    "hash_leaf",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def hash_leaf(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the leaf hash of one entry."""
    return hashlib.sha256(b"\x00" + entry).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _require_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be a {HASH_SIZE}-byte hash")


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` sits at ``index`` in the tree ``(size, root)``.

    RFC 9162 §2.1.3.2; raises ProofError on any failure.
    """
    _require_hash(leaf_hash, "leaf hash")
    _require_hash(root, "root")
    for position, node in enumerate(proof):
        _require_hash(node, f"inclusion proof element {position}")
    # 1. leaf_index must be below tree_size.
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not inside a tree of size {size}")
    # 2.-3. fn = leaf_index, sn = tree_size - 1, r = leaf hash.
    fn, sn, r = index, size - 1, leaf_hash
    # 4. For each p in the path:
    for p in proof:
        if sn == 0:  # a. the proof is too long
            raise ProofError(f"inclusion proof for leaf {index} of size {size} is too long")
        if fn & 1 or fn == sn:  # b.
            r = hash_children(p, r)
            while (fn & 1) == 0 and fn != 0:  # b.ii / b.iii
                fn >>= 1
                sn >>= 1
        else:  # b. otherwise
            r = hash_children(r, p)
        fn >>= 1  # c.
        sn >>= 1
    # 5. sn must be 0 and r must equal the root.
    if sn != 0:
        raise ProofError(f"inclusion proof for leaf {index} of size {size} is too short")
    if r != root:
        raise ProofError(f"inclusion proof for leaf {index} of size {size} gives another root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``(new_size, new_root)`` extends ``(old_size, old_root)``.

    RFC 9162 §2.1.4.2, plus the edge cases above; raises ProofError on any failure.
    """
    _require_hash(old_root, "old root")
    _require_hash(new_root, "new root")
    for position, node in enumerate(proof):
        _require_hash(node, f"consistency proof element {position}")
    if old_size < 0 or new_size < 0:
        raise ProofError(f"tree sizes must not be negative ({old_size}, {new_size})")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0:
        if old_root != EMPTY_ROOT:
            raise ProofError("the root of a tree of size 0 must be SHA-256 of nothing")
        if proof:
            raise ProofError("a consistency proof from size 0 must be empty")
        if new_size == 0 and new_root != EMPTY_ROOT:
            raise ProofError("the root of a tree of size 0 must be SHA-256 of nothing")
        return
    if old_size == new_size:
        if proof:
            raise ProofError(f"a consistency proof between equal sizes ({old_size}) is empty")
        if old_root != new_root:
            raise ProofError(f"two trees of size {old_size} have different roots")
        return
    # 1. The proof must not be empty.
    if not proof:
        raise ProofError(f"consistency proof from {old_size} to {new_size} is empty")
    # 2. If first (old_size) is an exact power of 2, prepend first_hash (old_root).
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3. fn = first - 1, sn = second - 1.
    fn, sn = old_size - 1, new_size - 1
    # 4. If LSB(fn) is set, shift fn and sn right until it is not.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr = sr = the first value in the path.
    fr = sr = path[0]
    # 6. For each subsequent value c in the path:
    for c in path[1:]:
        if sn == 0:  # a. the proof is too long
            raise ProofError(f"consistency proof from {old_size} to {new_size} is too long")
        if fn & 1 or fn == sn:  # b.
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            while (fn & 1) == 0 and fn != 0:  # b.ii / b.iii
                fn >>= 1
                sn >>= 1
        else:  # b. otherwise
            sr = hash_children(sr, c)
        fn >>= 1  # c.
        sn >>= 1
    # 7. sn must be 0, fr must equal first_hash and sr second_hash.
    if sn != 0:
        raise ProofError(f"consistency proof from {old_size} to {new_size} is too short")
    if fr != old_root:
        raise ProofError(
            f"consistency proof from {old_size} to {new_size} does not lead to the old root"
        )
    if sr != new_root:
        raise ProofError(
            f"consistency proof from {old_size} to {new_size} does not lead to the new root"
        )


class CompactRange:
    """The roots of the perfect subtrees covering leaves [0, size), largest first.

    There is one root per set bit of ``size``; appending a leaf merges equal-sized
    subtrees like a carry in binary addition. Memory is O(log size).
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        """An empty range (size 0)."""
        self._size = 0
        self._stack: list[bytes] = []

    @classmethod
    def load(cls, size: int, stack: Sequence[bytes]) -> CompactRange:
        """Rebuild a saved range; raises ProofError if the stack cannot be one of ``size``."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ProofError(f"a compact range size must be a non-negative integer: {size!r}")
        if len(stack) != size.bit_count():
            raise ProofError(
                f"a compact range of size {size} has {size.bit_count()} subtree roots, "
                f"got {len(stack)}"
            )
        for position, node in enumerate(stack):
            _require_hash(node, f"compact range node {position}")
        compact = cls()
        compact._size = size
        compact._stack = list(stack)
        return compact

    @property
    def size(self) -> int:
        """Number of leaves covered."""
        return self._size

    @property
    def stack(self) -> list[bytes]:
        """A copy of the subtree roots, largest (leftmost) first: what :meth:`load` takes."""
        return list(self._stack)

    def append(self, leaf_hash: bytes) -> None:
        """Add the next leaf hash on the right."""
        _require_hash(leaf_hash, "leaf hash")
        node, carry = leaf_hash, self._size
        while carry & 1:
            node = hash_children(self._stack.pop(), node)
            carry >>= 1
        self._stack.append(node)
        self._size += 1

    def root(self) -> bytes:
        """The Merkle tree hash of leaves [0, size); EMPTY_ROOT for size 0."""
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            node = hash_children(left, node)
        return node
