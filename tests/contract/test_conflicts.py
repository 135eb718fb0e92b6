"""A lost race names the record's current version, so a client can decide again at once."""

from __future__ import annotations

import pytest

from ledger.aggregates import Process
from ledger.application import LedgerApplication
from ledger.errors import ConcurrentWriteError
from tests.conftest import Store
from tests.helpers import OFFICIAL, record_sample


def test_a_lost_race_names_the_current_version(store: Store) -> None:
    first = LedgerApplication(store.settings)
    second = LedgerApplication(store.settings)
    try:
        sample = record_sample(first, amendments=0)
        stale = first._get(Process, sample.process_id)  # decided on this version …
        stale.add_strand(
            strand_id="late", title="Late", summary="", actor=OFFICIAL, at=first.clock()
        )
        for n in range(2):  # … while another process records two changes to it
            second.add_strand(sample.process_id, strand_id=f"s{n}", title="S", actor=OFFICIAL)
        with pytest.raises(ConcurrentWriteError) as lost:
            first._commit(stale)
        assert lost.value.current_version == stale.version - 1 + 2
    finally:
        first.close()
        second.close()
