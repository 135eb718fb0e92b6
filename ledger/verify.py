"""``ledger verify``: check the stored log end to end, straight from the database."""

from __future__ import annotations

from collections.abc import Callable

from ledger.chain import ChainReport, Damage, DamageKind, verify_chain
from ledger.envelope import check_event
from ledger.storage import LogReader

__all__ = ["verify_log"]


def verify_log(reader: LogReader, *, progress: Callable[[int], None] | None = None) -> ChainReport:
    """Recompute every link and leaf, check every event row, and look for unlogged rows."""
    report = verify_chain(
        reader.rows(), head=reader.head(), check_event=check_event, progress=progress
    )
    if not report.ok:
        return report
    unlogged = reader.first_unlogged_event()
    if unlogged is None:
        return report
    event_id, event = unlogged
    damage = Damage(
        report.size,
        DamageKind.UNLOGGED_EVENT,
        f"event row {event_id} ({event.topic} of {event.originator_id} "
        f"v{event.originator_version}) is not in the log",
    )
    return ChainReport(report.size, report.head_hash, None, report.seconds, damage)
