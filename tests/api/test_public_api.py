"""Public reads over the read models: on a real `ledger serve` on loopback, and in-process
through FastAPI's TestClient (paging, versions and ETags, the documented schemas)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api import models_public as m
from api.app import create_app
from ledger.application import LedgerApplication
from ledger.demo import DemoSummary, record_demo
from ledger.storage import open_reader
from tests.api.test_log_api import Server
from tests.conftest import BACKENDS, Store, make_store
from tests.contract.test_pagination import record_more
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


# In-process: paging, versions, schemas ---------------------------------------------------------

PROBLEM_JSON = "application/problem+json"
_NEXT = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


@contextmanager
def demo_api(store: Store) -> Iterator[tuple[DemoSummary, TestClient]]:
    """The demo in ``store`` and the API over it, its views caught up."""
    app = LedgerApplication(store.settings)
    summary = record_demo(app)
    app.close()
    with TestClient(create_app(store.settings)) as client:

        def no_server_errors(response: httpx.Response) -> None:
            assert response.status_code < 500, (response.request.url, response.read())

        client.event_hooks = {"request": [], "response": [no_server_errors]}
        wait_for(client, summary.entries - 1)
        yield summary, client


def wait_for(client: TestClient, index: int) -> None:
    """Return once the public reads reflect log index ``index``."""
    deadline = time.monotonic() + 10
    while client.get("/timeline?limit=1").json()["as_of_index"] < index:
        assert time.monotonic() < deadline, f"views never reached {index}"
        time.sleep(0.05)


@pytest.fixture
def api(store: Store) -> Iterator[tuple[Store, DemoSummary, TestClient]]:
    with demo_api(store) as (summary, client):
        yield store, summary, client


def log_entries(store: Store) -> list[dict[str, Any]]:
    reader = open_reader(store.settings)
    try:
        head = reader.head()
        assert head is not None
        return [orjson.loads(raw) for raw in reader.entries(0, head.size)]
    finally:
        reader.close()


def lists(client: TestClient) -> list[str]:
    """A path for every list endpoint (and the filters that change what they list)."""
    proposals = client.get("/proposals?limit=500").json()["items"]
    pid = proposals[0]["id"]
    return [
        "/proposals",
        "/proposals?status=enacted",
        "/proposals?q=data",
        f"/proposals/{pid}/versions",
        f"/proposals/{pid}/history",
        "/meetings",
        f"/meetings?strand={proposals[0]['strand_id']}",
        "/publications",
        f"/publications?proposal={pid}",
        "/organisations",
        "/organisations?kind=department",
        "/timeline",
        "/search?q=gateway",
        "/search?q=data",
    ]


def with_params(path: str, **params: Any) -> str:
    return path + ("&" if "?" in path else "?") + "&".join(f"{k}={v}" for k, v in params.items())


def page(client: TestClient, url: str, limit: int) -> tuple[dict[str, Any], str | None]:
    """One page of a list, checked: its body and the URL of the next page (from ``Link``)."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.text)
    body = response.json()
    assert set(body) == {"as_of_index", "next_cursor", "items"}
    assert response.headers["X-Ledger-Index"] == str(body["as_of_index"])
    assert len(body["items"]) <= limit
    link = response.headers.get("Link")
    if body["next_cursor"] is None:
        assert link is None
        return body, None
    assert body["items"]
    found = _NEXT.match(link or "")
    assert found is not None, link
    assert f"cursor={body['next_cursor']}" in found["url"]
    assert found["url"].startswith(url.split("?", maxsplit=1)[0] + "?")
    return body, found["url"]


def walk(
    client: TestClient, path: str, limit: int, *, start: str | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """Follow ``Link: rel="next"`` from the first page of ``path`` (or from the page at
    ``start``); every page must keep the first one's index. Returns it and every item."""
    url: str | None = start or with_params(path, limit=limit)
    first: int | None = None
    items: list[dict[str, Any]] = []
    for _ in range(10_000):
        if url is None:
            assert first is not None
            return first, items
        body, url = page(client, url, limit)
        first = body["as_of_index"] if first is None else first
        assert body["as_of_index"] == first, url
        items.extend(body["items"])
    raise AssertionError("the pages never ended")


def test_every_list_pages_through_to_the_whole_list(
    api: tuple[Store, DemoSummary, TestClient],
) -> None:
    """Following the links from any page size gives the whole list, in order, once each."""
    _, summary, client = api
    for path in lists(client):
        whole = client.get(with_params(path, limit=500)).json()
        assert whole["next_cursor"] is None, path
        assert whole["items"], path
        assert whole["as_of_index"] == summary.entries - 1
        for limit in (1, 3, 50):
            at, items = walk(client, path, limit)
            assert at == whole["as_of_index"]
            assert items == whole["items"], (path, limit)
            assert len({json.dumps(i, sort_keys=True) for i in items}) == len(items), path
    default = client.get("/timeline").json()
    assert len(default["items"]) == 50
    assert default["next_cursor"] is not None


def test_pages_keep_the_first_index_while_entries_arrive(
    api: tuple[Store, DemoSummary, TestClient],
) -> None:
    """Entries recorded between two pages do not show up in, or disturb, the pages after."""
    store, summary, client = api
    at = summary.entries - 1
    paths = [p for p in lists(client) if store.kind == "postgresql" or "q=" not in p]
    before = {p: client.get(with_params(p, limit=500)).json()["items"] for p in paths}
    firsts = {p: page(client, with_params(p, limit=2), 2) for p in paths}
    receipt = record_more(store)
    wait_for(client, receipt)
    for path in paths:
        body, following = firsts[path]
        assert body["as_of_index"] == at
        assert following is not None, path
        pinned, rest = walk(client, path, 2, start=following)
        assert pinned == at
        assert body["items"] + rest == before[path], path
        again = client.get(with_params(path, limit=500, as_of=at)).json()["items"]
        assert again == before[path], path
    latest = client.get("/organisations?limit=500").json()
    assert latest["as_of_index"] == receipt
    assert len(latest["items"]) > len(before["/organisations"])


def test_bad_cursors_and_limits_are_400_problems(
    api: tuple[Store, DemoSummary, TestClient],
) -> None:
    """A cursor that is garbage, altered, or from another listing or other filters is a 400
    problem, as is a limit out of range."""
    _, _, client = api
    proposals = client.get("/proposals?limit=500").json()["items"]
    cursor = client.get("/proposals?limit=1").json()["next_cursor"]
    assert client.get(f"/proposals?limit=1&cursor={cursor}").status_code == 200
    flipped = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]
    meetings = client.get("/meetings?limit=1").json()["next_cursor"]
    enacted = client.get("/proposals?limit=1&status=enacted").json()["next_cursor"]
    history = client.get(f"/proposals/{proposals[0]['id']}/history?limit=1").json()
    for path in [
        "/proposals?cursor=garbage",
        "/proposals?cursor=",
        "/proposals?cursor=%00%01",
        f"/proposals?cursor={cursor}x",
        f"/proposals?cursor={cursor[:-2]}",
        f"/proposals?cursor={flipped}",
        f"/proposals?cursor={meetings}",
        f"/proposals?status=draft&cursor={enacted}",
        f"/proposals?cursor={enacted}",
        f"/proposals/{proposals[1]['id']}/history?cursor={history['next_cursor']}",
        f"/timeline?cursor={'A' * 5000}",
        "/proposals?limit=0",
        "/proposals?limit=501",
        "/timeline?limit=x",
        f"/search?q=other&cursor={cursor}",
    ]:
        response = client.get(path)
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
        problem = response.json()
        assert problem["status"] == 400
        assert problem["title"]
        assert problem["detail"]
    as_of = client.get(f"/proposals?limit=1&cursor={cursor}&as_of=3").json()
    assert as_of["as_of_index"] == proposals[0]["as_of_index"]  # the cursor pins the index


def test_single_records_carry_their_version_as_etag(
    api: tuple[Store, DemoSummary, TestClient],
) -> None:
    """``version`` and the strong ETag are the number of entries about the record up to
    the index the answer reflects, now and as of earlier indexes."""
    store, summary, client = api
    entries = log_entries(store)
    listed = {
        "proposals": [p["id"] for p in client.get("/proposals?limit=500").json()["items"]],
        "meetings": [p["id"] for p in client.get("/meetings?limit=500").json()["items"]],
        "publications": [p["id"] for p in client.get("/publications?limit=500").json()["items"]],
        "organisations": [p["id"] for p in client.get("/organisations?limit=500").json()["items"]][
            :6
        ],
        "processes": [summary.process_id],
    }
    checked = 0
    for kind, ids in listed.items():
        assert ids, kind
        for sid in ids:
            about = [e["index"] for e in entries if e["subject"]["id"] == sid]
            for as_of in {None, about[0], about[len(about) // 2], about[-1] - 1}:
                path = f"/{kind}/{sid}" + ("" if as_of is None else f"?as_of={as_of}")
                response = client.get(path)
                if as_of is not None and as_of < about[0]:
                    assert response.status_code == 404
                    continue
                assert response.status_code == 200, (path, response.text)
                body = response.json()
                expected = sum(1 for i in about if i <= body["as_of_index"])
                assert body["version"] == expected, path
                assert response.headers["ETag"] == f'"{expected}"'
                assert response.headers["X-Ledger-Index"] == str(body["as_of_index"])
                checked += 1
    assert checked > 50


def test_answers_fit_their_documented_schemas(
    api: tuple[Store, DemoSummary, TestClient],
) -> None:
    """Every public read validates against the strict model its OpenAPI entry names, and
    every route documents its problems as application/problem+json."""
    _, summary, client = api
    proposals = client.get("/proposals?limit=500").json()["items"]
    pid = proposals[0]["id"]
    meetings = client.get("/meetings?limit=500").json()["items"]
    publications = client.get("/publications?limit=500").json()["items"]
    organisations = client.get("/organisations?limit=500").json()["items"]
    answers: list[tuple[str, type[BaseModel]]] = [
        (path, model)
        for path, model in [
            ("/proposals?limit=500", m.ProposalPage),
            ("/proposals?q=gateway", m.ProposalPage),
            (f"/proposals/{pid}/versions?limit=2", m.VersionPage),
            (f"/proposals/{pid}/versions/1", m.Version),
            (f"/proposals/{pid}/compare?from=1&to=2", m.Compare),
            (f"/proposals/{pid}/history?limit=500", m.HistoryPage),
            ("/timeline?limit=500", m.TimelinePage),
            ("/search?q=gateway", m.SearchPage),
            ("/meetings?limit=500", m.MeetingPage),
            ("/publications?limit=500", m.PublicationPage),
            ("/organisations?limit=500", m.OrganisationPage),
            (f"/processes/{summary.process_id}", m.Process),
            ("/proposals?as_of=-1", m.ProposalPage),
        ]
    ]
    answers += [(f"/proposals/{p['id']}", m.ProposalDetail) for p in proposals]
    answers += [(f"/meetings/{x['id']}", m.MeetingDetail) for x in meetings]
    answers += [(f"/publications/{x['id']}", m.PublicationDetail) for x in publications]
    answers += [(f"/organisations/{x['id']}", m.OrganisationDetail) for x in organisations]
    for path, model in answers:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        model.model_validate(response.json(), strict=False)
    for path in ("/proposals/nope", "/proposals?as_of=yesterday", "/search"):
        response = client.get(path)
        assert response.headers["content-type"] == PROBLEM_JSON
        m.Problem.model_validate(response.json())

    schema = client.get("/openapi.json").json()
    routes = {
        "/proposals": "ProposalPage",
        "/proposals/{proposal_id}": "ProposalDetail",
        "/proposals/{proposal_id}/versions": "VersionPage",
        "/proposals/{proposal_id}/versions/{number}": "Version",
        "/proposals/{proposal_id}/compare": "Compare",
        "/proposals/{proposal_id}/history": "HistoryPage",
        "/meetings": "MeetingPage",
        "/meetings/{meeting_id}": "MeetingDetail",
        "/publications": "PublicationPage",
        "/publications/{publication_id}": "PublicationDetail",
        "/organisations": "OrganisationPage",
        "/organisations/{organisation_id}": "OrganisationDetail",
        "/processes/{process_id}": "Process",
        "/timeline": "TimelinePage",
        "/search": "SearchPage",
    }
    for path, name in routes.items():
        responses = schema["paths"][path]["get"]["responses"]
        ok = responses["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{name}"}, path
        assert name in schema["components"]["schemas"]
        assert "X-Ledger-Index" in responses["200"]["headers"]
        assert list(responses["400"]["content"]) == [PROBLEM_JSON], path
        if "{" in path:
            assert list(responses["404"]["content"]) == [PROBLEM_JSON], path
        if path.endswith("_id}"):
            assert "ETag" in responses["200"]["headers"], path
        params = {p["name"] for p in schema["paths"][path]["get"].get("parameters", [])}
        if name.endswith("Page"):
            assert {"limit", "cursor", "as_of"} <= params, path
            assert "Link" in responses["200"]["headers"], path


def test_odd_input_is_a_problem_never_a_server_error(
    api: tuple[Store, DemoSummary, TestClient],
) -> None:
    """NUL in ids and filters, numbers past any column, odd text: 4xx problems, or empty
    answers, never a 500 (the client fails any 5xx)."""
    _, _, client = api
    pid = client.get("/proposals?limit=1").json()["items"][0]["id"]
    for path, status in [
        ("/proposals/%00", 400),
        (f"/proposals/{pid}%00/history", 400),
        ("/proposals?strand=%00", 400),
        ("/publications?proposal=a%00b", 400),
        ("/organisations?kind=%00", 400),
        (f"/proposals/{pid}/versions/99999999999999999999", 400),
        (f"/proposals/{pid}/compare?from=1&to=99999999999999999999", 400),
        ("/proposals/%E2%80%AE%F0%9F%98%80", 404),
        ("/meetings/'%3B%20DROP%20TABLE%20pv_meetings%3B--", 404),
        ("/publications?proposal=%25", 200),
        ("/search?q=%00%00", 200),
        ("/proposals?q=%22%27*%3A()", 200),
        ("/timeline?as_of=999999999999999999", 200),
    ]:
        response = client.get(path)
        assert response.status_code == status, (path, response.text)
        if status != 200:
            assert response.headers["content-type"] == PROBLEM_JSON
