"""Public reads over the read models, served by a real `ledger serve` on loopback."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.application import LedgerApplication
from ledger.demo import DemoSummary, record_demo
from tests.api.test_log_api import Server
from tests.conftest import BACKENDS, Store, make_store
from tests.helpers import OFFICIAL


@pytest.fixture(params=BACKENDS)
def demo_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Store, DemoSummary, Server]]:
    """The demo process in a store, and a server over it."""
    for store in make_store(request.param, tmp_path):
        app = LedgerApplication(store.settings)
        summary = record_demo(app)
        app.close()
        server = Server(store)
        try:
            yield store, summary, server
        finally:
            server.stop()


def read(server: Server, path: str, *, wait_for: int | None = None) -> tuple[int, dict[str, Any]]:
    """GET a JSON body, retrying briefly until the views reflect ``wait_for``."""
    deadline = time.monotonic() + 10
    while True:
        status, _, body = server.get(path)
        data = json.loads(body)
        if wait_for is None or (status == 200 and data.get("as_of_index", -1) >= wait_for):
            return status, data
        assert time.monotonic() < deadline, f"views never reached {wait_for}: {data}"
        time.sleep(0.1)


def test_public_reads_name_their_index(demo_server: tuple[Store, DemoSummary, Server]) -> None:
    """Lists and records come back with the log index they reflect, in body and header."""
    _, summary, server = demo_server
    last = summary.entries - 1
    status, listed = read(server, "/proposals", wait_for=last)
    assert status == 200
    assert listed["as_of_index"] == last
    assert len(listed["items"]) == summary.proposals
    pid = listed["items"][0]["id"]
    with urllib.request.urlopen(server.base + f"/proposals/{pid}") as r:
        assert r.headers["X-Ledger-Index"] == str(last)
    _, versions = read(server, f"/proposals/{pid}/versions")
    assert [v["text_version"] for v in versions["items"]] == list(
        range(1, len(versions["items"]) + 1)
    )
    agreed = [a for v in versions["items"] for a in v["amendments"]]
    assert all(a["decision"] == "agreed" for a in agreed)
    _, one = read(server, f"/proposals/{pid}/versions/2")
    assert one["text_version"] == 2
    _, diff = read(server, f"/proposals/{pid}/compare?from=1&to=2")
    assert "<section" in diff["html"]
    assert diff["operations"]
    _, history = read(server, f"/proposals/{pid}/history")
    assert history["items"][0]["type"] == "proposal.tabled"
    for path in (
        "/meetings",
        "/publications",
        "/organisations",
        "/timeline?limit=5",
        "/search?q=gateway",
    ):
        status, body = read(server, path)
        assert status == 200, path
        assert body["as_of_index"] == last
        assert body["items"], path
    _, meetings = read(server, "/meetings")
    withheld = [m for m in meetings["items"] if m["disclosure"] == "chatham_house"]
    assert withheld
    assert all(m["attending_orgs"] is None for m in withheld)


def test_as_of_and_errors(demo_server: tuple[Store, DemoSummary, Server]) -> None:
    """as_of by index or time gives earlier states; bad input is a problem+json 400 or 404."""
    _, summary, server = demo_server
    _, listed = read(server, "/proposals", wait_for=summary.entries - 1)
    pid = listed["items"][0]["id"]
    status, early = read(server, "/proposals?as_of=20")
    assert status == 200
    assert early["as_of_index"] == 20
    assert early["items"] == []
    status, then = read(server, f"/proposals/{pid}?as_of=2015-01-01T00:00:00Z")
    assert status == 200
    assert then["as_of_index"] < summary.entries - 1
    for path, expected in [
        (f"/proposals/{pid}?as_of=yesterday", 400),
        ("/proposals/00000000-0000-4000-8000-000000000000", 404),
        (f"/proposals/{pid}/versions/99", 404),
        (f"/proposals/{pid}/compare?from=0&to=2", 400),
        ("/search", 400),
    ]:
        status, content_type, body = server.get(path)
        assert status == expected, path
        assert content_type == "application/problem+json"
        assert json.loads(body)["status"] == expected


def test_a_new_write_shows_up(demo_server: tuple[Store, DemoSummary, Server]) -> None:
    """The server's follower brings a fresh write into the public reads within seconds."""
    store, summary, server = demo_server
    _, listed = read(server, "/proposals", wait_for=summary.entries - 1)
    pid = listed["items"][0]["id"]
    app = LedgerApplication(store.settings)
    receipt = app.link_legislative_outcome(pid, legislation="Another Act 2030", actor=OFFICIAL)
    app.close()
    _, fresh = read(server, f"/proposals/{pid}", wait_for=receipt.index)
    assert fresh["legislative_outcomes"][-1]["legislation"] == "Another Act 2030"


def test_health_and_readiness(demo_server: tuple[Store, DemoSummary, Server]) -> None:
    """/healthz answers at once; /readyz reports the log size and the read models' lag."""
    _, summary, server = demo_server
    assert read(server, "/healthz") == (200, {"status": "ok"})
    deadline = time.monotonic() + 10
    while True:
        status, body = read(server, "/readyz")
        if status == 200 and body["lag"] == 0:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert body["log_size"] == summary.entries
