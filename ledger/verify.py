"""``ledger verify``: check the stored log end to end, straight from the database.

Large logs are verified in parallel: the index range is cut into segments aligned to a power
of two, each scanned by its own process with its own read-only connection, and the segments
are joined in order (links across each boundary, subtree roots into one RFC 9162 root). The
first damaged index wins, exactly as a single pass would report it.
"""

from __future__ import annotations

import base64
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor

from ledger.chain import (
    ChainReport,
    Damage,
    DamageKind,
    Segment,
    join_segments,
    scan_segment,
)
from ledger.checkpoint import CheckpointError, Ed25519Verifier, verify_note
from ledger.encoding import GENESIS_PREV, entry_hash
from ledger.envelope import check_event, expected_entry
from ledger.settings import Settings
from ledger.storage import LogReader, open_reader

__all__ = ["PARALLEL_MIN_ENTRIES", "verify_log", "verify_segmented", "verify_store"]

PARALLEL_MIN_ENTRIES = 100_000
_MIN_SEGMENT = 1 << 14


def _scan(
    reader: LogReader, start: int, stop: int | None, progress: Callable[[int], None] | None = None
) -> Segment:
    """Scan ``[start, stop)``; the two entries before ``start`` seed the links."""
    before = reader.entries(max(start - 2, 0), start)
    hashes = [bytes.fromhex(GENESIS_PREV)] * 2 + [entry_hash(e) for e in before]
    segment = scan_segment(
        reader.rows(start, stop),
        start=start,
        prev=hashes[-1],
        prev_prev=hashes[-2],
        check_event=check_event,
        expected_entry=expected_entry,
        progress=progress,
    )
    if segment.damage is None and stop is not None and segment.start + segment.count < stop:
        missing = segment.start + segment.count
        segment.damage = Damage(missing, DamageKind.MISSING_ENTRY, "a gap in the stored indexes")
    return segment


def _scan_in_worker(settings: Settings, start: int, stop: int) -> Segment:
    reader = open_reader(settings)
    try:
        return _scan(reader, start, stop)
    finally:
        reader.close()


def _finish(
    reader: LogReader, report: ChainReport, verifier: Ed25519Verifier | None = None
) -> ChainReport:
    """Finish a clean chain report: stored tree nodes, latest checkpoint, unlogged rows."""
    if not report.ok:
        return report
    damage = _tree_damage(reader, report) or _checkpoint_damage(reader, report, verifier)
    if damage is None:
        unlogged = reader.first_unlogged_event()
        if unlogged is not None:
            event_id, event = unlogged
            damage = Damage(
                report.size,
                DamageKind.UNLOGGED_EVENT,
                f"event row {event_id} ({event.topic} of {event.originator_id} "
                f"v{event.originator_version}) is not in the log",
            )
    if damage is None:
        return report
    return ChainReport(damage.index, None, None, report.seconds, damage)


def _tree_damage(reader: LogReader, report: ChainReport) -> Damage | None:
    """The stored tile-level nodes must be exactly the ones recomputed from the entries."""
    stored = reader.nodes()
    for expected in report.nodes:
        found = next(stored, None)
        if found != expected:
            level, index, _ = expected if found is None or found[:2] >= expected[:2] else found
            completed_at = ((index + 1) << (8 * level)) - 1
            return Damage(
                min(completed_at, max(report.size - 1, 0)),
                DamageKind.TREE_MISMATCH,
                f"tree node {level}/{index} is missing or differs",
            )
    extra = next(stored, None)
    if extra is not None:
        level, index, _ = extra
        return Damage(
            report.size, DamageKind.TREE_MISMATCH, f"unexpected tree node {level}/{index}"
        )
    return None


def _checkpoint_damage(
    reader: LogReader, report: ChainReport, verifier: Ed25519Verifier | None
) -> Damage | None:
    """The latest stored checkpoint must be for the verified tree and signed by the log."""
    latest = reader.checkpoint()
    if latest is None:
        return None
    size, root, note = latest
    if verifier is not None:
        try:
            verify_note(note, verifier)
        except CheckpointError as exc:
            return Damage(
                min(size, report.size),
                DamageKind.CHECKPOINT_MISMATCH,
                f"latest checkpoint is not validly signed by the log key: {exc}",
            )
    body = f"{size}\n{base64.b64encode(root).decode()}\n"
    if size != report.size or root != report.root or body not in note:
        return Damage(
            min(size, report.size),
            DamageKind.CHECKPOINT_MISMATCH,
            f"latest checkpoint is for size {size}, root {root.hex()[:16]}…; "
            f"the entries make size {report.size}",
        )
    return None


def verify_log(
    reader: LogReader,
    *,
    progress: Callable[[int], None] | None = None,
    verifier: Ed25519Verifier | None = None,
) -> ChainReport:
    """Recompute every link and leaf, check every event row, look for unlogged rows: one pass."""
    started = time.perf_counter()
    segment = _scan(reader, 0, None, progress)
    report = join_segments([segment], head=reader.head(), started=started)
    return _finish(reader, report, verifier)


def verify_store(
    settings: Settings,
    *,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
    verifier: Ed25519Verifier | None = None,
) -> ChainReport:
    """Verify the configured store, in parallel when the log is large enough to gain.

    With ``verifier`` (the log's public key) the latest checkpoint's signature is checked too.
    """
    reader = open_reader(settings)
    try:
        extent = reader.extent()
        jobs = jobs or min(os.cpu_count() or 1, 8)
        if jobs < 2 or extent < PARALLEL_MIN_ENTRIES:
            return verify_log(reader, progress=progress, verifier=verifier)
    finally:
        reader.close()
    span = max(_MIN_SEGMENT, 1 << max(0, (extent // (jobs * 4)).bit_length()))
    # Workers are forked (cheap) while this process holds no database connection, and they
    # open their own; where fork is unavailable they are spawned.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        list(pool.map(_ready, range(jobs)))  # start every worker before any connection opens
        reader = open_reader(settings)
        try:
            return verify_segmented(
                settings, reader, pool, span=span, progress=progress, verifier=verifier
            )
        finally:
            reader.close()


def _ready(_: int) -> None:
    """A no-op that makes the pool start its workers now."""


def verify_segmented(
    settings: Settings,
    reader: LogReader,
    pool: Executor,
    *,
    span: int,
    progress: Callable[[int], None] | None = None,
    verifier: Ed25519Verifier | None = None,
) -> ChainReport:
    """Scan ``span``-sized segments (a power of two) on ``pool`` and join them in order."""
    if span & (span - 1):
        raise ValueError("segment span must be a power of two")
    started = time.perf_counter()
    extent = reader.extent()
    bounds = [(a, min(a + span, extent)) for a in range(0, extent, span)] or [(0, 0)]
    starts, stops = zip(*bounds, strict=True)
    segments: list[Segment] = []
    for segment in pool.map(_scan_in_worker, [settings] * len(bounds), starts, stops):
        segments.append(segment)
        if progress is not None:
            progress(segment.start + segment.count)
        if segment.damage is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            break
    report = join_segments(segments, head=reader.head(), started=started)
    return _finish(reader, report, verifier)
