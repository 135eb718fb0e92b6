"""Export the log as a static C2SP tlog-tiles tree that any web server or CDN can serve.

Layout below the export directory (the same paths the API serves, see api/routes/log.py)::

    checkpoint                      the latest signed note, with its cosignatures, verbatim
    tile/<L>/<N>[.p/<W>]            hash tiles: 256 (or W) hashes of height 8·L, 32 bytes each
    tile/entries/<N>[.p/<W>]        entry bundles: each entry as a big-endian uint16 length
                                    and its verbatim bytes
    sealed/<size>                   only if the log rotated its key: the note that seals each
                                    rotation (tree size = rotation index + 1)

``<N>`` is written in groups of three digits, all but the last prefixed ``x``
(``x001/x234/067``); ``.p/<W>`` marks a partial tile of width W (1–255).

**Incremental.** The existing ``checkpoint`` says which tree size the directory holds; a
second run writes only the full tiles that are new and the partial tiles at the new size.
Full tiles are never rewritten. Every file is written atomically (temporary file, then
rename) and fsynced before ``checkpoint`` is replaced, last, the same way: a reader never
sees a checkpoint whose tiles are missing. Partial tiles are kept while their tile is still
partial, so a reader holding an older (cached) checkpoint still finds the widths it asks
for; once a tile is full, its partial tiles are removed, as C2SP tlog-tiles allows (clients
then read the full tile, which starts with the same hashes).

**Checked before published.** Before the checkpoint moves, the new part of the directory is
read back with the independent auditor's :class:`ledger.audit.TilesSource`: every tile over
the new entries must match the hashes recomputed from the bundles, the tiles must hash to the
checkpoint's root, and (when growing) give a valid consistency proof from the size already
published. A directory whose checkpoint is for another origin, a larger size (a rollback) or
another history is refused and left untouched.

Memory stays bounded: the log is streamed a few tiles at a time.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ledger.audit import (
    TILE_WIDTH,
    AuditError,
    Checkpoint,
    TilesSource,
    encode_bundle,
    hash_leaf,
    parse_checkpoint,
    parse_note,
    tile_path,
    tile_width,
    verify_consistency,
)
from ledger.audit.sources import atomic_write
from ledger.errors import LedgerError
from ledger.proofs import ProofBuilder
from ledger.settings import Settings
from ledger.storage import LogReader, open_reader

__all__ = ["TilesExport", "TilesExportError", "export_tiles"]

CHUNK_TILES = 8
"""Entry bundles read from the store per query (8 × 256 entries)."""

_TREE_NAMES = frozenset({"checkpoint", "tile", "sealed"})


@dataclass(frozen=True)
class TilesExport:
    """What one export did."""

    size: int
    """Tree size of the checkpoint now in the directory."""
    tiles_written: int
    """Hash tiles written (full and partial)."""
    bundles_written: int
    """Entry bundles written (full and partial)."""
    bytes_written: int
    """Bytes of every file written, the checkpoint included."""
    previous_size: int = 0
    """Tree size the directory held before (0 for a new directory)."""
    partials_removed: int = 0
    """Partial tiles removed because their full tile now exists."""


class TilesExportError(LedgerError):
    """The directory cannot take this export (other log, rollback, damage); nothing changed."""


def export_tiles(
    settings: Settings,
    directory: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> TilesExport:
    """Write or update the tlog-tiles tree in ``directory`` for the latest checkpoint.

    ``progress(done, total)`` is called as entries are exported. Raises TilesExportError
    if the log has no checkpoint, the directory holds another log or a larger tree, or the
    written tiles would not verify; StorageError if the store cannot be read.
    """
    reader = open_reader(settings)  # one snapshot: checkpoint, entries and tiles agree
    try:
        return _Exporter(reader, Path(directory), progress).run()
    finally:
        reader.close()


def _read_checkpoint(note: bytes | str, where: str) -> Checkpoint:
    try:
        return parse_checkpoint(parse_note(note)[0])
    except AuditError as exc:
        raise TilesExportError(f"{where} is not a valid checkpoint: {exc}") from exc


class _Exporter:
    def __init__(
        self,
        reader: LogReader,
        directory: Path,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.reader = reader
        self.directory = directory
        self.progress = progress
        self.written: list[Path] = []
        self.tiles = 0
        self.bundles = 0
        self.bytes = 0

    # -- files ---------------------------------------------------------------------

    def _write(self, relative: str, data: bytes) -> None:
        """Write atomically (temporary file, rename); fsynced later by _sync."""
        path = self.directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        self.written.append(path)
        self.bytes += len(data)

    def _sync(self) -> None:
        """Make every written file and its directory durable, before the checkpoint moves."""
        directories = {self.directory}
        for path in self.written:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            directories.update(p for p in path.parents if self.directory in (p, *p.parents))
        for directory in sorted(directories, key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):  # not every OS can fsync a directory
                fd = os.open(directory, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    def _publish(self, note: bytes) -> None:
        """Replace ``checkpoint``, last: temporary file, fsync, rename, fsync the directory."""

        def write(stream: IO[bytes]) -> None:
            stream.write(note)

        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write(self.directory / "checkpoint", write)
        self.bytes += len(note)

    # -- the export ------------------------------------------------------------------

    def _existing(self, store: Checkpoint, size: int) -> tuple[int, bytes | None]:
        """(size, note) the directory already publishes; refuse another log or history."""
        directory = self.directory
        if directory.exists() and not directory.is_dir():
            raise TilesExportError(f"{directory} exists and is not a directory")
        current = directory / "checkpoint"
        try:
            note = current.read_bytes()
        except FileNotFoundError:
            strangers = (
                sorted(
                    p.name
                    for p in directory.iterdir()
                    if p.name not in _TREE_NAMES and not p.name.startswith(".")
                )
                if directory.exists()
                else []
            )
            if strangers:
                raise TilesExportError(
                    f"{directory} is not empty and holds no tiles checkpoint "
                    f"({', '.join(strangers[:3])}…): refusing to write a tiles tree into it"
                ) from None
            return 0, None
        except OSError as exc:
            raise TilesExportError(f"cannot read {current}: {exc.strerror}") from exc
        there = _read_checkpoint(note, str(current))
        if there.origin != store.origin:
            raise TilesExportError(
                f"{current} is for the log {there.origin!r}, not {store.origin!r}: refusing to "
                "mix two logs in one directory"
            )
        if there.size > size:
            raise TilesExportError(
                f"{current} is for tree size {there.size}, but the store's latest checkpoint "
                f"is for size {size}: exporting would roll the mirror back"
            )
        stored_root = (
            store.root if there.size == size else ProofBuilder(self.reader).root(there.size)
        )
        if there.root != stored_root:
            raise TilesExportError(
                f"{current} has another root for size {there.size} than this store: it holds "
                "a different history (a fork, or another store); refusing to overwrite it"
            )
        return there.size, note

    def run(self) -> TilesExport:
        latest = self.reader.checkpoint()
        if latest is None:
            raise TilesExportError("the log has no checkpoint yet: nothing to export")
        size, root, note_text = latest
        note = note_text.encode("utf-8")
        store = _read_checkpoint(note, "the store's latest checkpoint")
        if (store.size, store.root) != (size, root):
            raise TilesExportError("the store's latest checkpoint disagrees with its own row")
        previous, old_note = self._existing(store, size)
        if previous < size:
            self._entries(previous, size)
            for level in range(1, 64):
                if size >> (8 * level) == 0:
                    break
                self._hash_tiles(level, previous, size)
            self._sealed(size)
            self._check(previous, size, note)
        self._sync()
        if note != old_note:
            self._publish(note)
        removed = self._remove_partials(previous, size)
        return TilesExport(
            size=size,
            tiles_written=self.tiles,
            bundles_written=self.bundles,
            bytes_written=self.bytes,
            previous_size=previous,
            partials_removed=removed,
        )

    def _changed(self, level: int | None, previous: int, size: int) -> range:
        """Tile numbers at ``level`` whose width differs between the two tree sizes."""
        count = size >> (8 * (level or 0))
        first = (previous >> (8 * (level or 0))) // TILE_WIDTH
        return range(first, -(-count // TILE_WIDTH))

    def _entries(self, previous: int, size: int) -> None:
        """Entry bundles and level-0 tiles (leaf hashes computed from the entries)."""
        numbers = self._changed(None, previous, size)
        start_entry = numbers.start * TILE_WIDTH
        total = size - start_entry
        for chunk in range(numbers.start, numbers.stop, CHUNK_TILES):
            last = min(chunk + CHUNK_TILES, numbers.stop)
            first_index = chunk * TILE_WIDTH
            entries = self.reader.entries(first_index, min(last * TILE_WIDTH, size))
            for number in range(chunk, last):
                width = tile_width(None, number, size)
                offset = (number - chunk) * TILE_WIDTH
                bundle = entries[offset : offset + width]
                if len(bundle) != width:
                    raise TilesExportError(
                        f"the store returned {len(bundle)} entries for bundle {number}, "
                        f"expected {width}"
                    )
                if width == tile_width(None, number, previous):
                    continue  # already published, unchanged
                self._write(tile_path(None, number, width), encode_bundle(bundle))
                self._write(tile_path(0, number, width), b"".join(hash_leaf(e) for e in bundle))
                self.bundles += 1
                self.tiles += 1
            if self.progress is not None:
                self.progress(min(last * TILE_WIDTH, size) - start_entry, total)

    def _hash_tiles(self, level: int, previous: int, size: int) -> None:
        for number in self._changed(level, previous, size):
            width = tile_width(level, number, size)
            if width == tile_width(level, number, previous):
                continue
            hashes = self.reader.tile(level, number, width)
            if len(hashes) != width or any(len(h) != 32 for h in hashes):
                raise TilesExportError(
                    f"the store has {len(hashes)} of the {width} tree hashes of tile "
                    f"{level}/{number}: run `ledger verify`"
                )
            self._write(tile_path(level, number, width), b"".join(hashes))
            self.tiles += 1

    def _sealed(self, size: int) -> None:
        """The checkpoints sealing key rotations, so an auditor can follow them."""
        for index in self.reader.rotations():
            if index >= size or (self.directory / "sealed" / str(index + 1)).exists():
                continue
            found = self.reader.checkpoint(index + 1)
            if found is not None:
                self._write(f"sealed/{index + 1}", found[2].encode("utf-8"))

    def _check(self, previous: int, size: int, note: bytes) -> None:
        """Read the new part back as an auditor would, before the checkpoint moves."""
        source = TilesSource(self.directory, checkpoint=note)
        store = _read_checkpoint(note, "the store's latest checkpoint")
        try:
            for _ in source.entries(previous, size):
                pass
            if source.root(size) != store.root:
                raise TilesExportError(
                    f"the exported tiles do not hash to the root of size {size}: run "
                    "`ledger verify`"
                )
            if previous:
                old_root = ProofBuilder(self.reader).root(previous)
                proof = source.consistency_proof(previous, size)
                verify_consistency(previous, size, old_root, store.root, proof)
        except AuditError as exc:
            raise TilesExportError(
                f"the exported tiles do not verify, so the checkpoint was not moved: {exc}"
            ) from exc

    def _remove_partials(self, previous: int, size: int) -> int:
        """Delete the partial tiles of tiles that became full (their ``.p`` directory)."""
        removed = 0
        levels: list[int | None] = [None, *range(64)]
        for level in levels:
            if size >> (8 * (level or 0)) == 0:
                break
            for number in self._changed(level, previous, size):
                if tile_width(level, number, size) != TILE_WIDTH:
                    continue
                partials = self.directory / (tile_path(level, number) + ".p")
                if not partials.is_dir():
                    continue
                for child in partials.iterdir():
                    with contextlib.suppress(FileNotFoundError):
                        child.unlink()
                        removed += 1
                with contextlib.suppress(OSError):
                    partials.rmdir()
        return removed
