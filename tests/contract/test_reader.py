"""ReadModels: as_of by index or time, read-your-writes, and every answer names its index."""

from __future__ import annotations

import orjson

from ledger.application import LedgerApplication
from ledger.demo import record_demo
from ledger.storage import open_reader
from projections import all_views
from projections.db import connect_views
from projections.reader import ReadModels
from projections.runner import Runner
from tests.conftest import Store
from tests.helpers import OFFICIAL


def test_as_of_time_index_and_read_your_writes(store: Store) -> None:
    """A timestamp means the last entry at or before it; min_index waits for a fresh write."""
    app = LedgerApplication(store.settings)
    summary = record_demo(app)
    db = connect_views(store.settings)
    log = open_reader(store.settings, snapshot=False)
    try:
        models = ReadModels(Runner(db, log, all_views()))
        models.runner.setup()
        entries = [orjson.loads(e) for e in log.entries(0, summary.entries)]
        for k in (0, 57, 130, summary.entries - 1):
            moment = entries[k]["time"]
            expected = max(e["index"] for e in entries if e["time"] <= moment)
            assert models.at(moment, min_index=summary.entries - 1) == expected
            assert models.proposals(moment) == models.proposals(expected)
            assert models.meetings(moment) == models.meetings(expected)
            assert models.proposals(moment)["as_of_index"] == expected
        assert models.at("2000-01-01T00:00:00.000000Z") == -1
        assert models.proposals("2000-01-01T00:00:00.000000Z")["items"] == []
        first = models.proposals()["items"][0]
        assert models.proposal(first["id"])["as_of_index"] == summary.entries - 1  # type: ignore[index]
        receipt = app.link_legislative_outcome(
            first["id"], legislation="Another Act 2018", provision="s.1", actor=OFFICIAL
        )
        fresh = models.proposal(first["id"], min_index=receipt.index)
        assert fresh is not None
        assert fresh["as_of_index"] >= receipt.index
        assert fresh["legislative_outcomes"][-1]["legislation"] == "Another Act 2018"
        hits = models.search("gateway")
        assert hits["as_of_index"] >= receipt.index
        assert hits["items"]
    finally:
        db.close()
        log.close()
        app.close()
