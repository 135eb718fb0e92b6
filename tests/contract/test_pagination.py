"""Keyset paging of every listing the read models serve, on every store.

Walking the pages of a listing gives exactly the unpaged listing, in order, without
duplicates, whatever the page size; and pages read at one index keep fitting together while
new entries (new rows, and rows the first pages showed being replaced) arrive in between.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from ledger.application import LedgerApplication
from ledger.demo import DemoSummary, record_demo
from ledger.storage import open_reader
from projections import all_views
from projections.db import connect_views
from projections.reader import SORT_KEYS, ReadModels
from projections.runner import Runner
from tests.conftest import Store
from tests.helpers import OFFICIAL, PUBLISHER, record_sample

Page = Callable[[int, int, Sequence[Any] | None], dict[str, Any]]
"""(at, limit, after) -> a page of a listing."""


@dataclass
class Paged:
    store: Store
    summary: DemoSummary
    models: ReadModels

    @property
    def at(self) -> int:
        return self.models.at()


@pytest.fixture
def paged(store: Store) -> Iterator[Paged]:
    """The demo recorded and the read models caught up with it."""
    app = LedgerApplication(store.settings)
    summary = record_demo(app)
    app.close()
    db = connect_views(store.settings)
    log = open_reader(store.settings, snapshot=False)
    runner = Runner(db, log, all_views())
    runner.setup()
    runner.catch_up()
    try:
        yield Paged(store, summary, ReadModels(runner))
    finally:
        db.close()
        log.close()


def record_more(store: Store) -> int:
    """Record entries that touch every register: new rows, and changes to rows the demo
    made (a proposal gets an outcome, a publication is withdrawn). Returns the last index."""
    app = LedgerApplication(store.settings)
    try:
        reader = open_reader(store.settings)
        try:
            head = reader.head()
            assert head is not None
            entries = [orjson.loads(raw) for raw in reader.entries(0, head.size)]
        finally:
            reader.close()
        first = {}
        for e in entries:
            first.setdefault(e["type"], e["subject"]["id"])
        sample = record_sample(app, amendments=2)
        app.add_membership(
            sample.org_ids[1], process_id=sample.process_id, group="research", actor=OFFICIAL
        )
        app.publish(
            process_id=sample.process_id,
            pub_kind="report",
            title="A later gateway report",
            sha256="ab" * 32,
            size=10,
            media_type="text/plain",
            proposal_ids=[sample.proposal_id],
            actor=PUBLISHER,
        )
        app.link_legislative_outcome(
            first["proposal.tabled"], legislation="A Later Act 2031", actor=OFFICIAL
        )
        last = app.withdraw_publication(
            first["publication.published"], reason="replaced later", actor=PUBLISHER
        )
        return last.index
    finally:
        app.close()


def walk(
    page: Page, at: int, limit: int, between: Callable[[], None] | None = None
) -> list[dict[str, Any]]:
    """Every item of a listing at ``at``, a page of ``limit`` at a time (calling ``between``
    once, after the first page)."""
    items: list[dict[str, Any]] = []
    after: Sequence[Any] | None = None
    for _ in range(10_000):  # a listing that never ends fails, not hangs
        got = page(at, limit, after)
        assert got["as_of_index"] == at
        assert len(got["items"]) <= limit
        items.extend(got["items"])
        after = got["next_after"]
        if after is None:
            return items
        assert got["items"], "a page with a next page is never empty"
        if between is not None:
            between()
            between = None
    raise AssertionError("the pages never ended")


def listings(models: ReadModels) -> dict[str, tuple[str, Callable[[int], Any], Page]]:
    """Each listing: its sort key, its unpaged form, and its pages."""
    proposal_ids = [p["id"] for p in models.proposals()["items"]]
    found: dict[str, tuple[str, Callable[[int], Any], Page]] = {
        "proposals": (
            "proposals",
            lambda at: models.proposals(at)["items"],
            lambda at, n, after: models.proposals(at, limit=n, after=after),
        ),
        "proposals by status": (
            "proposals",
            lambda at: models.proposals(at, status="enacted")["items"],
            lambda at, n, after: models.proposals(at, status="enacted", limit=n, after=after),
        ),
        "meetings": (
            "meetings",
            lambda at: models.meetings(at)["items"],
            lambda at, n, after: models.meetings(at, limit=n, after=after),
        ),
        "publications": (
            "publications",
            lambda at: models.publications(at)["items"],
            lambda at, n, after: models.publications(at, limit=n, after=after),
        ),
        "publications about a proposal": (
            "publications",
            lambda at: models.publications(at, proposal_id=proposal_ids[0])["items"],
            lambda at, n, after: models.publications(
                at, proposal_id=proposal_ids[0], limit=n, after=after
            ),
        ),
        "organisations": (
            "organisations",
            lambda at: models.organisations(at)["items"],
            lambda at, n, after: models.organisations(at, limit=n, after=after),
        ),
        "memberships": (
            "memberships",
            lambda at: models.memberships(at)["items"],
            lambda at, n, after: models.memberships(at, limit=n, after=after),
        ),
        "amendments": (
            "amendments",
            lambda at: models.amendments(at)["items"],
            lambda at, n, after: models.amendments(at, limit=n, after=after),
        ),
        "all versions": (
            "all_versions",
            lambda at: models.all_versions(at)["items"],
            lambda at, n, after: models.all_versions(at, limit=n, after=after),
        ),
        "entries": (
            "entries",
            lambda at: models.entries(at)["items"],
            lambda at, n, after: models.entries(at, limit=n, after=after),
        ),
        "timeline": (
            "timeline",
            lambda at: list(reversed(models.entries(at)["items"])),
            lambda at, n, after: models.timeline(at, limit=n, after=after),
        ),
        "search": (
            "search",
            lambda at: models.search("gateway", at, limit=10_000)["items"],
            lambda at, n, after: models.search("gateway", at, limit=n, after=after),
        ),
        "search for proposals": (
            "search",
            lambda at: models.search("data", at, limit=10_000, kinds=["proposal"])["items"],
            lambda at, n, after: models.search(
                "data", at, limit=n, after=after, kinds=["proposal"]
            ),
        ),
    }
    for pid in proposal_ids[:3]:
        found[f"versions of {pid}"] = (
            "versions",
            lambda at, pid=pid: models.versions(pid, at)["items"],
            lambda at, n, after, pid=pid: models.versions(pid, at, limit=n, after=after),
        )
        found[f"history of {pid}"] = (
            "history",
            lambda at, pid=pid: models.history(pid, at)["items"],
            lambda at, n, after, pid=pid: models.history(pid, at, limit=n, after=after),
        )
    return found


def test_pages_join_up_to_the_unpaged_listing(paged: Paged) -> None:
    """For every listing and page size, the pages in turn are the unpaged listing."""
    at = paged.at
    assert at == paged.summary.entries - 1
    for name, (key_name, unpaged, page) in listings(paged.models).items():
        expected = unpaged(at)
        assert expected, name
        key = SORT_KEYS[key_name]
        keys = [key(item) for item in expected]
        assert len(set(keys)) == len(keys), f"{name}: sort keys are not unique"
        for limit in (1, 2, 7, len(expected), len(expected) + 1, 500):
            if limit > 500:
                continue
            walked = walk(page, at, limit)
            assert walked == expected, (name, limit)
        assert page(at, len(expected), None)["next_after"] is None, name
        assert page(at, len(expected) - 1 or 1, None)["next_after"] is not None or (
            len(expected) == 1
        ), name


def test_the_default_listing_is_unpaged(paged: Paged) -> None:
    """Without ``limit`` a listing is whole and has no ``next_after`` (callers unchanged)."""
    models = paged.models
    whole = models.proposals()
    assert set(whole) == {"as_of_index", "items"}
    assert len(whole["items"]) == paged.summary.proposals
    assert len(models.meetings()["items"]) == paged.summary.meetings
    assert len(models.organisations()["items"]) == paged.summary.organisations
    assert len(models.entries()["items"]) == paged.summary.entries
    assert models.proposals(-1)["items"] == []
    assert models.proposals(-1, limit=5) == {"as_of_index": -1, "items": [], "next_after": None}


def test_pages_keep_their_index_while_entries_arrive(paged: Paged) -> None:
    """Entries recorded between pages (new rows and changed rows alike) do not disturb a
    walk pinned at the first page's index."""
    at = paged.at
    found = listings(paged.models)
    expected = {name: unpaged(at) for name, (_, unpaged, _) in found.items()}
    recorded: list[int] = []

    def more() -> None:
        if not recorded:
            recorded.append(record_more(paged.store))
            paged.models.runner.catch_up()
            assert paged.models.at() == recorded[0]

    exact_search = paged.store.kind == "postgresql"  # see projections.search.search
    for name, (_, unpaged, page) in found.items():
        if name.startswith("search") and not exact_search:
            continue
        walked = walk(page, at, 2, between=more)
        assert walked == expected[name], name
        assert unpaged(at) == expected[name], name
    assert recorded
    latest = paged.models.at()
    for name in ("proposals", "publications", "organisations", "memberships", "amendments"):
        assert found[name][1](latest) != expected[name], f"{name} did not change"
