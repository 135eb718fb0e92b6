"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing, proofs and verification.

Pure Python on top of :mod:`hashlib` only. Names follow RFC 9162 section 2.1 so each
function can be held against the text:

* MTH (section 2.1.1): :func:`root_from_leaf_hashes`, :class:`CompactRange`;
* PATH (section 2.1.3.1) and its verifier (2.1.3.2): :func:`inclusion_proof`,
  :func:`verify_inclusion`;
* PROOF / SUBPROOF (section 2.1.4.1) and its verifier (2.1.4.2):
  :func:`consistency_proof`, :func:`verify_consistency`.

All functions work on *leaf hashes* (``hash_leaf(entry)``), not on raw entries, so a
caller that stores leaf hashes never has to re-read entries to build proofs.

Policy beyond the RFC (which defines proofs only for ``0 <= m < n`` and ``0 < m < n``):

* every hash handed to a verifier must be exactly :data:`HASH_SIZE` bytes;
* a tree of size 0 has exactly one valid root, :data:`EMPTY_ROOT`;
* a consistency proof from size 0, or between equal sizes, is the empty list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "ProofError",
    "consistency_proof",
    "hash_children",
    "hash_leaf",
    "inclusion_proof",
    "largest_power_of_two_smaller_than",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

HASH_SIZE: int = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT: bytes = _sha256(b"").digest()
"""MTH({}) = SHA-256() - the root hash of the empty tree."""


class ProofError(ValueError):
    """An inclusion or consistency proof failed verification."""


def hash_leaf(entry: bytes) -> bytes:
    """Return the leaf hash MTH({d(0)}) = SHA-256(0x00 || entry)."""
    return _sha256(_LEAF_PREFIX + entry).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """Return the interior node hash SHA-256(0x01 || left || right)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def largest_power_of_two_smaller_than(n: int) -> int:
    """Return k, the largest power of two with k < n <= 2k (RFC 9162 section 2.1.1); n > 1."""
    if n < 2:
        raise ValueError(f"n must be greater than 1, got {n}")
    return 1 << ((n - 1).bit_length() - 1)


class CompactRange:
    """Streaming MTH over appended leaf hashes in O(log n) memory.

    Keeps the roots of the perfect subtrees that make up the tree so far, largest
    first: one per set bit of ``size``. Appending merges equal-sized subtrees like
    carrying in a binary counter, so each append costs amortised O(1) hashes.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        """Start an empty range (size 0)."""
        self._size = 0
        self._stack: list[bytes] = []

    @classmethod
    def from_stack(cls, size: int, stack: list[bytes]) -> CompactRange:
        """Rebuild a range from its size and perfect-subtree roots, largest first."""
        if len(stack) != size.bit_count():
            raise ValueError(f"a range of size {size} has {size.bit_count()} subtree roots")
        compact = cls()
        compact._size = size
        compact._stack = list(stack)
        return compact

    @property
    def size(self) -> int:
        """Number of leaf hashes appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash (``hash_leaf(entry)``) to the right edge of the tree."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf_hash)}")
        stack = self._stack
        node = leaf_hash
        carry = self._size
        while carry & 1:
            node = _sha256(_NODE_PREFIX + stack.pop() + node).digest()
            carry >>= 1
        stack.append(node)
        self._size += 1

    def root(self) -> bytes:
        """Return MTH of everything appended so far; EMPTY_ROOT when size is 0."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        node = stack[-1]
        for left in reversed(stack[:-1]):
            node = _sha256(_NODE_PREFIX + left + node).digest()
        return node


def _subtree_root(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """Return MTH(D[start:end]) from leaf hashes, iteratively and without copying."""
    if start == end:
        return EMPTY_ROOT
    stack: list[bytes] = []
    for count, index in enumerate(range(start, end)):
        node = leaf_hashes[index]
        if len(node) != HASH_SIZE:
            raise ValueError(f"leaf hash {index} must be {HASH_SIZE} bytes, got {len(node)}")
        carry = count
        while carry & 1:
            node = _sha256(_NODE_PREFIX + stack.pop() + node).digest()
            carry >>= 1
        stack.append(node)
    node = stack.pop()
    while stack:
        node = _sha256(_NODE_PREFIX + stack.pop() + node).digest()
    return node


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return MTH(D[n]) for the given leaf hashes in O(n) time; EMPTY_ROOT when empty."""
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return PATH(m, D[n]) (RFC 9162 section 2.1.3.1), ordered from the leaf up.

    ``m`` is ``index`` and ``n`` is ``len(leaf_hashes)``; requires 0 <= m < n.
    """
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is out of range for a tree of size {size}")
    # Walk down from the root; each split contributes the root of the other side.
    path: list[bytes] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = largest_power_of_two_smaller_than(end - start)
        if m < k:
            path.append(_subtree_root(leaf_hashes, start + k, end))
            end = start + k
        else:
            path.append(_subtree_root(leaf_hashes, start, start + k))
            start += k
            m -= k
    path.reverse()
    return path


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return PROOF(m, D[n]) = SUBPROOF(m, D[n], true) (RFC 9162 section 2.1.4.1).

    ``m`` is ``old_size`` and ``n`` is ``len(leaf_hashes)``. For m == 0 or m == n the
    proof is empty; m < 0 or m > n raises ValueError.
    """
    size = len(leaf_hashes)
    if not 0 <= old_size <= size:
        raise ValueError(f"old size {old_size} is out of range for a tree of size {size}")
    if old_size in (0, size):
        return []
    # Iterative SUBPROOF: walk down while m < n, collecting the nodes that the
    # recursion would append after the sub-proof, then emit them deepest first.
    tail: list[bytes] = []
    start, end, m, complete = 0, size, old_size, True
    while m != end - start:
        k = largest_power_of_two_smaller_than(end - start)
        if m <= k:
            tail.append(_subtree_root(leaf_hashes, start + k, end))
            end = start + k
        else:
            tail.append(_subtree_root(leaf_hashes, start, start + k))
            start += k
            m -= k
            complete = False
    # SUBPROOF(m, D[m], true) = {}, SUBPROOF(m, D[m], false) = {MTH(D[m])}.
    proof = [] if complete else [_subtree_root(leaf_hashes, start, end)]
    proof.extend(reversed(tail))
    return proof


def _check_hash(name: str, value: bytes) -> None:
    """Raise ProofError unless value is a HASH_SIZE-byte hash."""
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} must be {HASH_SIZE} bytes, got {len(value)}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    """Raise ProofError unless every proof element is a HASH_SIZE-byte hash."""
    for position, node in enumerate(proof):
        _check_hash(f"proof element {position}", node)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Verify an inclusion proof (RFC 9162 section 2.1.3.2); raise ProofError on failure."""
    if index < 0 or size < 0:
        raise ProofError(f"leaf index ({index}) and tree size ({size}) must not be negative")
    # Step 1.
    if index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root", root)
    _check_proof_hashes(proof)
    # Steps 2-3.
    fn, sn = index, size - 1
    r = leaf_hash
    # Step 4.
    for p in proof:
        if sn == 0:  # 4a
            raise ProofError(
                f"inclusion proof for leaf {index} in tree size {size} is too long "
                f"({len(proof)} elements)"
            )
        if fn & 1 or fn == sn:  # 4b
            r = hash_children(p, r)
            while fn and not fn & 1:  # 4b.ii (a no-op when LSB(fn) is set)
                fn >>= 1
                sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1  # 4c
        sn >>= 1
    # Step 5.
    if sn != 0:
        raise ProofError(
            f"inclusion proof for leaf {index} in tree size {size} is too short "
            f"({len(proof)} elements)"
        )
    if r != root:
        raise ProofError(
            f"inclusion proof for leaf {index} does not lead to the given root of tree size "
            f"{size}: computed {r.hex()}, expected {root.hex()}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Verify a consistency proof (RFC 9162 section 2.1.4.2); raise ProofError on failure.

    Beyond the RFC: old_size == new_size needs an empty proof and equal roots;
    old_size == 0 needs an empty proof and old_root == EMPTY_ROOT (the empty tree is a
    prefix of every tree, so any well-formed new root is consistent with it).
    """
    if old_size < 0 or new_size < 0:
        raise ProofError(f"tree sizes ({old_size}, {new_size}) must not be negative")
    if old_size > new_size:
        raise ProofError(f"old tree size {old_size} is greater than new tree size {new_size}")
    _check_hash("old root", old_root)
    _check_hash("new root", new_root)
    _check_proof_hashes(proof)
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise ProofError("the root of the empty tree must be EMPTY_ROOT (SHA-256 of nothing)")
    if old_size == new_size:
        if proof:
            raise ProofError(f"tree sizes are equal ({old_size}) but the proof is not empty")
        if old_root != new_root:
            raise ProofError(f"tree sizes are equal ({old_size}) but the roots differ")
        return
    if old_size == 0:
        if proof:
            raise ProofError("a consistency proof from the empty tree must be empty")
        return
    # Step 1.
    if not proof:
        raise ProofError(f"consistency proof from size {old_size} to {new_size} is empty")
    # Step 2: if first is an exact power of 2, prepend first_hash.
    path = list(proof)
    if (old_size & (old_size - 1)) == 0:
        path.insert(0, old_root)
    # Step 3.
    fn, sn = old_size - 1, new_size - 1
    # Step 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:  # 6a
            raise ProofError(
                f"consistency proof from size {old_size} to {new_size} is too long "
                f"({len(proof)} elements)"
            )
        if fn & 1 or fn == sn:  # 6b
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            while fn and not fn & 1:  # 6b.iii (a no-op when LSB(fn) is set)
                fn >>= 1
                sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1  # 6c
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise ProofError(
            f"consistency proof from size {old_size} to {new_size} is too short "
            f"({len(proof)} elements)"
        )
    if fr != old_root:
        raise ProofError(
            f"consistency proof does not lead to the old root of size {old_size}: "
            f"computed {fr.hex()}, expected {old_root.hex()}"
        )
    if sr != new_root:
        raise ProofError(
            f"consistency proof does not lead to the new root of size {new_size}: "
            f"computed {sr.hex()}, expected {new_root.hex()}"
        )
