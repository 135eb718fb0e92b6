"""The envelope: stored event rows and entries say the same thing, byte for byte."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ledger.chain import EventRow
from ledger.encoding import canonical, encode_entry
from ledger.envelope import check_event, expected_entry
from ledger.events import ALL_EVENTS
from tests.unit.test_encoding import json_values, text

topics = st.sampled_from([e.TOPIC for e in ALL_EVENTS])
actors = st.fixed_dictionaries({"id": text, "role": text, "org": text})
datas = st.dictionaries(text, json_values, max_size=5)
times = st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(
    lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
)


@given(
    topic=topics,
    actor=actors,
    data=datas,
    time=times,
    index=st.integers(0, 2**53 - 1),
    prev=st.binary(min_size=32, max_size=32),
    version=st.integers(1, 10**6),
)
def test_splice_equals_the_canonical_entry(
    topic: str,
    actor: dict[str, str],
    data: dict[str, Any],
    time: str,
    index: int,
    prev: bytes,
    version: int,
) -> None:
    """Splicing index, prev, subject and type into the state gives encode_entry's bytes."""
    oid = str(uuid.UUID(int=version))
    state = canonical({"actor": actor, "data": data, "time": time})
    entry = encode_entry(
        index=index,
        prev=prev.hex(),
        type=topic,
        subject={"kind": topic.split(".", maxsplit=1)[0], "id": oid, "version": version},
        time=time,
        actor=actor,
        data=data,
    )
    assert expected_entry(state, index, prev.hex(), oid, version, topic) == entry
    fields = __import__("orjson").loads(entry)
    assert check_event(fields, EventRow(oid, version, topic, state)) is None
    assert check_event(fields, EventRow(oid, version + 1, topic, state)) is not None
    assert check_event(fields, None) == "no event row for this entry"


@given(topic=topics, data=datas, version=st.integers(1, 10**9))
def test_size_bound_is_the_longest_possible_entry(
    topic: str, data: dict[str, Any], version: int
) -> None:
    """The mapper's size bound equals the entry's length at the largest possible index."""
    from datetime import UTC, datetime

    from eventsourcing.utils import resolve_topic

    from ledger.encoding import GENESIS_PREV, MAX_SAFE_INTEGER
    from ledger.envelope import EntryMapper
    from ledger.errors import EntryTooLargeError

    cls = resolve_topic(topic)
    event = object.__new__(cls)
    fields = {
        "originator_id": uuid.UUID(int=version),
        "originator_version": version,
        "timestamp": datetime(2015, 1, 1, tzinfo=UTC),
        "actor": {"id": "a"},
        **data,
    }
    object.__setattr__(event, "__dict__", fields)
    try:
        stored = EntryMapper().to_stored_event(event)
    except EntryTooLargeError:
        return
    longest = expected_entry(
        stored.state, MAX_SAFE_INTEGER, GENESIS_PREV, str(uuid.UUID(int=version)), version, topic
    )
    assert len(longest) <= 65_535
