"""The boundary between domain events, stored event rows and log entries.

A stored event row keeps ``topic`` (= entry ``type``), ``originator_id`` and
``originator_version`` (= entry ``subject``) and ``state``: the canonical JSON of
``{"actor", "data", "time"}``. Its entry adds ``index`` and ``prev`` at sequencing. The
aggregates load the row and the auditors check the entry; ``check_event`` proves the two say
the same thing, so there is one truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

import orjson
from eventsourcing.domain import CanInitAggregate, DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic, resolve_topic

from ledger.chain import EventRow
from ledger.encoding import (
    GENESIS_PREV,
    MAX_ENTRY_BYTES,
    MAX_SAFE_INTEGER,
    canonical,
    entry_hash,
    format_time,
    parse_time,
)
from ledger.errors import EntryTooLargeError
from ledger.events import kind_of

__all__ = [
    "EntryMapper",
    "SequencedEntry",
    "check_event",
    "expected_entry",
    "sequence_entries",
]

_ENVELOPE_FIELDS = ("originator_id", "originator_version", "timestamp", "actor")


class _NoTranscoder(Transcoder):
    """The entry mapper writes canonical JSON itself; nothing else may transcode."""

    def encode(self, obj: Any) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError


class EntryMapper(Mapper[UUID]):
    """Maps domain events to stored rows whose state is the entry's actor, data and time."""

    def __init__(self) -> None:
        super().__init__(transcoder=_NoTranscoder())

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        fields = dict(vars(domain_event))
        originator_id = fields.pop("originator_id")
        originator_version = fields.pop("originator_version")
        timestamp = fields.pop("timestamp")
        actor = fields.pop("actor")
        fields.pop("originator_topic", None)
        topic = get_topic(type(domain_event))
        time = format_time(timestamp)
        state = canonical({"actor": actor, "data": fields, "time": time})
        # Refuse an oversize entry now, before anything is written: with the largest index
        # this is the exact length of the longest entry this event can become.
        kind = topic.partition(".")[0]
        longest = (
            len(state)
            + _ENTRY_OVERHEAD
            + len(str(originator_id))
            + len(kind)
            + len(str(originator_version))
            + len(topic)
        )
        if longest > MAX_ENTRY_BYTES:
            raise EntryTooLargeError(
                f"entry would be up to {longest} bytes; the limit is {MAX_ENTRY_BYTES}. "
                "Store large documents outside the log and record their SHA-256."
            )
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        envelope = orjson.loads(stored_event.state)
        fields: dict[str, Any] = dict(envelope["data"])
        fields["actor"] = envelope["actor"]
        fields["timestamp"] = parse_time(envelope["time"])
        originator_id = stored_event.originator_id
        fields["originator_id"] = (
            originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        )
        fields["originator_version"] = stored_event.originator_version
        if issubclass(cls, CanInitAggregate):
            fields["originator_topic"] = cls.AGGREGATE_TOPIC
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", fields)
        return cast(DomainEventProtocol[UUID], domain_event)


@dataclass(frozen=True, slots=True)
class SequencedEntry:
    """An entry as sequenced: its index, bytes, hash and the event row it covers."""

    index: int
    entry: bytes
    entry_hash: bytes
    event_id: int


def _subject(topic: str, originator_id: UUID | str, version: int) -> dict[str, Any]:
    return {"kind": kind_of(topic), "id": str(originator_id), "version": version}


def sequence_entries(
    size: int,
    head_hash: bytes,
    stored_events: Sequence[StoredEvent],
    event_ids: Sequence[int],
) -> list[SequencedEntry]:
    """Give each stored event the next dense index and its link to the entry before."""
    sequenced = []
    prev = head_hash
    for offset, (stored, event_id) in enumerate(zip(stored_events, event_ids, strict=True)):
        # The state is canonical (the mapper wrote it), so splicing in index, prev, subject
        # and type yields the canonical entry; the tests hold this against encode_entry.
        entry = expected_entry(
            stored.state,
            size + offset,
            prev.hex(),
            str(stored.originator_id),
            stored.originator_version,
            stored.topic,
        )
        prev = entry_hash(entry)
        sequenced.append(SequencedEntry(size + offset, entry, prev, event_id))
    return sequenced


def check_event(entry: dict[str, Any], event: EventRow | None) -> str | None:
    """Say how the event row differs from its entry, or None when they agree."""
    if event is None:
        return "no event row for this entry"
    if event.topic != entry["type"]:
        return f"event topic {event.topic!r} but entry type {entry['type']!r}"
    if entry["subject"] != _subject(event.topic, event.originator_id, event.originator_version):
        return "event originator or version differs from the entry subject"
    try:
        envelope = orjson.loads(event.state)
    except orjson.JSONDecodeError:
        return "event state is not valid JSON"
    if envelope != {"actor": entry["actor"], "data": entry["data"], "time": entry["time"]}:
        return "event state differs from the entry's actor, data or time"
    return None


_TIME_KEY = b',"time":'
# Bytes an entry adds to its state besides the id, kind, version and type values, at the
# largest index: ,"index":N,"prev":"<64>","subject":{"id":"","kind":"","version":},"type":""
_ENTRY_OVERHEAD = len(
    b',"index":%d,"prev":"%s","subject":{"id":"","kind":"","version":},"type":""'
    % (MAX_SAFE_INTEGER, GENESIS_PREV.encode())
)


def expected_entry(
    state: bytes, index: int, prev_hex: str, originator_id: str, version: int, topic: str
) -> bytes:
    """The entry bytes an event row must have, spliced without parsing (verify's fast path).

    Canonical key order puts ``index``, ``prev`` and ``subject`` between the state's
    ``data`` and ``time``, and ``type`` last; ``time`` is the state's last key, so its last
    ``,"time":`` is the top-level one (any quote inside a string is escaped). A row whose
    state is not in this shape yields bytes that cannot match, and the slow path explains.
    """
    cut = state.rfind(_TIME_KEY)
    return b"".join(
        (
            state[:cut],
            b',"index":%d,"prev":"%s","subject":{"id":"%s","kind":"%s","version":%d}'
            % (
                index,
                prev_hex.encode(),
                originator_id.encode(),
                topic.partition(".")[0].encode(),
                version,
            ),
            state[cut:-1],
            b',"type":"%s"}' % topic.encode(),
        )
    )
