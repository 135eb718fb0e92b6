"""The chain scanner on in-memory rows: segments join into the single-pass answer."""

from __future__ import annotations

import time
import uuid

from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.chain import LogHead, LogRow, join_segments, scan_segment, verify_chain
from ledger.encoding import GENESIS_PREV, canonical
from ledger.envelope import check_event, expected_entry, sequence_entries


def make_rows(n: int) -> list[LogRow]:
    """n entries sequenced exactly as a store would, as reader rows."""
    events = [
        StoredEvent(
            originator_id=uuid.UUID(int=k + 1),
            originator_version=1,
            topic="organisation.registered",
            state=canonical(
                {
                    "actor": {"id": "a", "org": "o", "role": "recorder"},
                    "data": {"name": f"Org {k}", "org_kind": "academic"},
                    "time": "2015-01-01T00:00:00.000000Z",
                }
            ),
        )
        for k in range(n)
    ]
    sequenced = sequence_entries(0, bytes.fromhex(GENESIS_PREV), events, list(range(n)))
    return [
        (
            s.index,
            s.entry,
            s.entry_hash,
            str(e.originator_id),
            1,
            e.topic,
            e.state,
            merkle.hash_leaf(s.entry),
        )
        for s, e in zip(sequenced, events, strict=True)
    ]


ROWS = make_rows(300)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), span_bits=st.integers(0, 9))
def test_segments_join_to_the_single_pass_root(n: int, span_bits: int) -> None:
    """Any power-of-two segmentation gives the same root, size and head as one pass."""
    rows = ROWS[:n]
    head = LogHead(n, rows[-1][2] if rows else bytes.fromhex(GENESIS_PREV))
    single = verify_chain(rows, head=head, check_event=check_event, expected_entry=expected_entry)
    span = 1 << span_bits
    segments = []
    for start in range(0, n, span):
        before = [bytes.fromhex(GENESIS_PREV)] * 2 + [r[2] for r in rows[max(0, start - 2) : start]]
        segments.append(
            scan_segment(
                rows[start : start + span],
                start=start,
                prev=before[-1],
                prev_prev=before[-2],
                check_event=check_event,
                expected_entry=expected_entry,
            )
        )
    joined = join_segments(segments, head=head, started=time.perf_counter())
    assert single.ok
    assert joined.ok
    assert (joined.size, joined.root, joined.head_hash) == (
        single.size,
        single.root,
        single.head_hash,
    )
    assert single.root == merkle.root_from_leaf_hashes([merkle.hash_leaf(r[1]) for r in rows])


def test_a_segment_from_a_changed_snapshot_is_refused() -> None:
    """Segments whose boundary hashes disagree cannot be joined into a clean report."""
    rows = ROWS[:8]
    genesis = bytes.fromhex(GENESIS_PREV)
    first = scan_segment(
        rows[:4],
        start=0,
        prev=genesis,
        prev_prev=genesis,
        check_event=check_event,
        expected_entry=expected_entry,
    )
    second = scan_segment(
        rows[4:],
        start=4,
        prev=b"\x01" * 32,
        prev_prev=rows[2][2],
        check_event=check_event,
        expected_entry=expected_entry,
    )
    joined = join_segments([first, second], head=None, started=time.perf_counter())
    assert joined.damage is not None
    assert joined.damage.index == 4
