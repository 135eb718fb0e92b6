"""RFC 9162 roots and proofs read from the stored tree, in O(log n) tile reads.

A tile (C2SP tlog-tiles) at level ``L`` and index ``N`` holds the hashes at height ``8·L``
with indexes ``256·N`` up to ``256·N + 255``; level 0 is the leaf hashes. Any complete
subtree of height ``h`` lies inside one tile of level ``h // 8``, so a proof reads at most
a couple of tiles per level and hashes within them. Tiles at or below a size never change,
so reads need no common snapshot as long as the sizes asked for are committed.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Protocol

from ledger.errors import DamagedLogError
from ledger.integrate import TILE_HEIGHT
from ledger.merkle import EMPTY_ROOT, largest_power_of_two_smaller_than

__all__ = ["TILE_WIDTH", "ProofBuilder", "TileCache", "TileSource"]

TILE_WIDTH = 1 << TILE_HEIGHT


class TileSource(Protocol):
    """Reads stored tree hashes: ``width`` hashes of tile ``index`` at tile ``level``."""

    def tile(self, level: int, index: int, width: int) -> list[bytes]: ...


def _children(level: list[bytes]) -> list[bytes]:
    sha256 = hashlib.sha256
    return [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]


class TileCache:
    """A thread-safe LRU of tiles with their in-tile subtree hashes, shared across proofs.

    Stored tiles never change, so an entry keyed by (level, index, width) is valid forever;
    the upper levels, which every proof touches, stay hot. Bounded by an estimate of the
    memory it holds (a full tile with its levels is ~50 KB of Python objects), and a partial
    tile replaces the narrower versions of itself, so a growing log's last tile does not
    pile up one entry per size.
    """

    def __init__(self, capacity: int = 4096, *, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._bytes = 0
        self._items: OrderedDict[tuple[int, int, int], list[list[bytes]]] = OrderedDict()
        self._widths: dict[tuple[int, int], int] = {}  # (level, index) → the width kept
        self._lock = threading.Lock()

    @staticmethod
    def _cost(levels: list[list[bytes]]) -> int:
        return sum(len(level) for level in levels) * 100 + 200

    def __len__(self) -> int:
        return len(self._items)

    @property
    def held_bytes(self) -> int:
        """The estimated memory held."""
        return self._bytes

    def get(self, key: tuple[int, int, int]) -> list[list[bytes]] | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def _drop(self, key: tuple[int, int, int]) -> None:
        levels = self._items.pop(key, None)
        if levels is not None:
            self._bytes -= self._cost(levels)
            if self._widths.get(key[:2]) == key[2]:
                del self._widths[key[:2]]

    def put(self, key: tuple[int, int, int], levels: list[list[bytes]]) -> None:
        with self._lock:
            tile = key[:2]
            kept = self._widths.get(tile)
            if kept is not None and kept != key[2]:
                if kept > key[2]:
                    return  # a wider version of this tile is cached already
                self._drop((*tile, kept))
            self._drop(key)
            self._items[key] = levels
            self._widths[tile] = key[2]
            self._bytes += self._cost(levels)
            while self._items and (
                len(self._items) > self._capacity or self._bytes > self._max_bytes
            ):
                self._drop(next(iter(self._items)))


class ProofBuilder:
    """Roots, inclusion and consistency proofs over a :class:`TileSource`."""

    def __init__(self, tiles: TileSource, cache: TileCache | None = None) -> None:
        self._tiles = tiles
        self._cache = cache if cache is not None else TileCache(64)

    def _tile_levels(self, level: int, index: int, width: int) -> list[list[bytes]]:
        # Read whole tiles where the tree has them, so the cache serves every later proof.
        key = (level, index, width)
        cached = self._cache.get(key) or self._cache.get((level, index, TILE_WIDTH))
        if cached is not None:
            return cached
        hashes = self._tiles.tile(level, index, TILE_WIDTH)
        if len(hashes) < width:
            raise DamagedLogError(
                f"the stored tree's tile {level}/{index} has {len(hashes)} hashes where the "
                f"log's size needs {width}: the database was changed; run `ledger verify`"
            )
        levels = [hashes]
        while len(levels) < TILE_HEIGHT and len(levels[-1]) > 1:
            levels.append(_children(levels[-1]))
        self._cache.put((level, index, len(hashes)), levels)
        return levels

    def perfect(self, height: int, index: int) -> bytes:
        """Hash of the complete subtree of ``height`` at ``index`` (leaves index·2^h …)."""
        level, rest = divmod(height, TILE_HEIGHT)
        first = index << rest  # first node at height 8·level under this subtree
        tile, offset = divmod(first, TILE_WIDTH)
        levels = self._tile_levels(level, tile, offset + (1 << rest))
        return levels[rest][offset >> rest]

    def subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for the ranges RFC 9162's recursion produces."""
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self.perfect(n.bit_length() - 1, start // n)
        k = largest_power_of_two_smaller_than(n)
        left = self.subtree(start, start + k)
        right = self.subtree(start + k, end)
        return hashlib.sha256(b"\x01" + left + right).digest()

    def root(self, size: int) -> bytes:
        return EMPTY_ROOT if size == 0 else self.subtree(0, size)

    def inclusion(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(index, D[size])."""
        if not 0 <= index < size:
            raise ValueError(f"index {index} is not in a tree of size {size}")
        proof: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = largest_power_of_two_smaller_than(end - start)
            if index - start < k:
                proof.append(self.subtree(start + k, end))
                end = start + k
            else:
                proof.append(self.subtree(start, start + k))
                start += k
        proof.reverse()
        return proof

    def consistency(self, old: int, new: int) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(old, D[new]); empty for old 0 or old == new."""
        if not 0 <= old <= new:
            raise ValueError(f"no consistency proof from size {old} to size {new}")
        if old in (0, new):
            return []
        proof: list[bytes] = []
        start, end, m, whole = 0, new, old, True
        while m != end - start:
            k = largest_power_of_two_smaller_than(end - start)
            if m <= k:
                proof.append(self.subtree(start + k, end))
                end = start + k
            else:
                proof.append(self.subtree(start, start + k))
                start += k
                m -= k
                whole = False
        if not whole:
            proof.append(self.subtree(start, end))
        proof.reverse()
        return proof
