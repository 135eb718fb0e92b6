"""Open-data exports: every register as CSV and NDJSON, on SQLite and PostgreSQL.

Sizes are computed from the log's entries themselves; contents are checked against the JSON
API's answers for the same index.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from api.routes.exports import REGISTERS, export_records
from ledger import events as ev
from ledger.aggregates import Organisation
from ledger.application import LedgerApplication
from ledger.demo import DemoSummary
from tests.api.test_public_api import PROBLEM_JSON, TestClient, demo_api, log_entries, wait_for
from tests.conftest import Store
from tests.helpers import OFFICIAL

FORMULAS = ["=1+2", "+SUM(A1:A2)", "-2+3", "@cmd", "\tTabbed", "\rReturned"]
HARMLESS = ["Plain name", " =spaced", "a=b", "'quoted"]


@pytest.fixture
def api(store: Store) -> Iterator[tuple[Store, DemoSummary, TestClient]]:
    with demo_api(store) as (summary, client):
        yield store, summary, client


def sizes(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Each register's size, straight from the entries."""

    def count(*types: str) -> int:
        return sum(1 for e in entries if e["type"] in types)

    memberships: set[tuple[str, str, str]] = set()
    for e in entries:
        key = (e["subject"]["id"], e["data"].get("process_id"), e["data"].get("group"))
        if e["type"] == "organisation.membership_added":
            memberships.add(key)
        elif e["type"] == "organisation.membership_ended":
            memberships.discard(key)
    return {
        "proposals": count("proposal.tabled"),
        "versions": count("proposal.tabled", "proposal.revised"),
        "amendments": count("proposal.amendment_proposed"),
        "meetings": len({e["subject"]["id"] for e in entries if e["type"] == "meeting.scheduled"}),
        "publications": count("publication.published"),
        "organisations": count("organisation.registered"),
        "memberships": len(memberships),
        "timeline": len(entries),
    }


def csv_rows(client: TestClient, path: str) -> tuple[list[str], list[dict[str, str]], Any]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    reader = csv.reader(io.StringIO(response.content.decode("utf-8"), newline=""))
    header, *rows = list(reader)
    assert all(len(row) == len(header) for row in rows)
    return header, [dict(zip(header, row, strict=True)) for row in rows], response


def ndjson(client: TestClient, path: str) -> tuple[list[dict[str, Any]], Any]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    text = response.content.decode("utf-8")
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()], response


def test_the_index_lists_every_register(api: tuple[Store, DemoSummary, TestClient]) -> None:
    _, _, client = api
    listed = client.get("/exports").json()["registers"]
    assert [r["name"] for r in listed] == [
        "proposals",
        "versions",
        "amendments",
        "meetings",
        "publications",
        "organisations",
        "memberships",
        "timeline",
    ]
    for register in listed:
        assert register["csv"] == f"/exports/{register['name']}.csv"
        assert register["ndjson"] == f"/exports/{register['name']}.ndjson"
        assert register["columns"] == list(REGISTERS[register["name"]].columns)
        assert register["description"]


def test_csv_has_a_header_and_a_row_per_item(api: tuple[Store, DemoSummary, TestClient]) -> None:
    """Every register's CSV parses, its header is the listed columns, and it has one row per
    item of the register as the log tells it; NDJSON has the same records."""
    store, summary, client = api
    expected = sizes(log_entries(store))
    at = summary.entries - 1
    for register in client.get("/exports").json()["registers"]:
        name = register["name"]
        header, rows, response = csv_rows(client, register["csv"])
        assert header == register["columns"], name
        assert len(rows) == expected[name], name
        assert rows, name
        assert response.headers["X-Ledger-Index"] == str(at)
        assert response.headers["Content-Disposition"] == (
            f'attachment; filename="{name}-as-of-{at}.csv"'
        )
        records, response = ndjson(client, register["ndjson"])
        assert response.headers["X-Ledger-Index"] == str(at)
        assert response.headers["Content-Disposition"] == (
            f'attachment; filename="{name}-as-of-{at}.ndjson"'
        )
        assert len(records) == len(rows), name
        for record, row in zip(records, rows, strict=True):
            assert list(record) == header, name
            for column, value in record.items():
                if value is None:
                    assert row[column] == ""
                elif isinstance(value, bool):
                    assert row[column] == ("true" if value else "false")
                elif isinstance(value, list | dict):
                    assert json.loads(row[column]) == value
                elif isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
                    assert row[column] == "'" + value
                else:
                    assert row[column] == str(value), (name, column)


def test_ndjson_matches_the_json_api(api: tuple[Store, DemoSummary, TestClient]) -> None:
    """Each register's records are the JSON API's items for the same index."""
    _, summary, client = api
    at = summary.entries - 1

    def listing(path: str) -> list[dict[str, Any]]:
        body = client.get(path + ("&" if "?" in path else "?") + f"limit=500&as_of={at}").json()
        assert body["next_cursor"] is None
        return [{k: v for k, v in item.items() if k != "as_of_index"} for item in body["items"]]

    for name, path in [
        ("proposals", "/proposals"),
        ("meetings", "/meetings"),
        ("publications", "/publications"),
        ("organisations", "/organisations"),
    ]:
        records, _ = ndjson(client, f"/exports/{name}.ndjson")
        assert records == listing(path), name
    timeline, _ = ndjson(client, "/exports/timeline.ndjson")
    assert timeline == list(reversed(listing("/timeline")))
    versions, _ = ndjson(client, "/exports/versions.ndjson")
    amendments, _ = ndjson(client, "/exports/amendments.ndjson")
    by_id = {(a["proposal_id"], a["amendment_id"]): a for a in amendments}
    seen = []
    for proposal in listing("/proposals"):
        pid = proposal["id"]
        for item in listing(f"/proposals/{pid}/versions"):
            record = next(
                v
                for v in versions
                if v["proposal_id"] == pid and v["text_version"] == item["text_version"]
            )
            seen.append(record)
            incorporated = item.pop("amendments")
            assert record["amendment_ids"] == [a["amendment_id"] for a in incorporated]
            for amendment in incorporated:
                assert by_id[(pid, amendment["amendment_id"])] == {"proposal_id": pid, **amendment}
            assert {
                k: v for k, v in record.items() if k not in ("proposal_id", "amendment_ids")
            } == (item)
    assert sorted(seen, key=lambda v: v["created_index"]) == versions
    memberships, _ = ndjson(client, "/exports/memberships.ndjson")
    for organisation in listing("/organisations"):
        detail = client.get(f"/organisations/{organisation['id']}?as_of={at}").json()
        mine = [
            {k: v for k, v in r.items() if k != "org_id"}
            for r in memberships
            if r["org_id"] == organisation["id"]
        ]
        assert sorted(mine, key=json.dumps) == sorted(detail["memberships"], key=json.dumps)


def test_formula_cells_are_neutralised(api: tuple[Store, DemoSummary, TestClient]) -> None:
    """A text cell starting with =, +, -, @, tab or CR gets a leading quote in CSV; NDJSON
    and the JSON API keep the text as recorded. Names with a tab or CR are refused today
    (ledger.text), so they are written as a log from before that rule may hold them."""
    store, _, client = api
    app = LedgerApplication(store.settings)
    try:
        for name in FORMULAS + HARMLESS:
            record = Organisation._create(
                ev.OrganisationRegistered,
                id=uuid.uuid4(),
                actor=OFFICIAL.as_entry(),
                timestamp=app.clock(),
                name=name,
                org_kind="business",
            )
            last = app._commit(record)
    finally:
        app.close()
    wait_for(client, last.index)
    _, rows, _ = csv_rows(client, "/exports/organisations.csv")
    names = [row["name"] for row in rows]
    for name in FORMULAS:
        assert "'" + name in names
        assert name not in names
    for name in HARMLESS:
        assert name in names
    records, _ = ndjson(client, "/exports/organisations.ndjson")
    assert {r["name"] for r in records} >= set(FORMULAS + HARMLESS)
    listed = client.get("/organisations?limit=500").json()["items"]
    assert {o["name"] for o in listed} >= set(FORMULAS + HARMLESS)


def test_as_of_is_honoured(api: tuple[Store, DemoSummary, TestClient]) -> None:
    """An export as of an index holds the register as it was then, and says so."""
    store, summary, client = api
    entries = log_entries(store)
    for at in (0, 10, 57, summary.entries - 1):
        expected = sizes(entries[: at + 1])
        for name in REGISTERS:
            _, rows, response = csv_rows(client, f"/exports/{name}.csv?as_of={at}")
            assert len(rows) == expected[name], (name, at)
            assert response.headers["X-Ledger-Index"] == str(at)
            assert f"-as-of-{at}.csv" in response.headers["Content-Disposition"]
        orgs, _ = ndjson(client, f"/exports/organisations.ndjson?as_of={at}")
        listed = client.get(f"/organisations?as_of={at}&limit=500").json()["items"]
        assert orgs == [{k: v for k, v in o.items() if k != "as_of_index"} for o in listed]
    moment = entries[40]["time"]
    timed = max(e["index"] for e in entries if e["time"] <= moment)
    _, rows, response = csv_rows(client, f"/exports/timeline.csv?as_of={moment}")
    assert response.headers["X-Ledger-Index"] == str(timed)
    assert len(rows) == timed + 1
    header, rows, _ = csv_rows(client, "/exports/proposals.csv?as_of=-1")
    assert header
    assert rows == []
    records, _ = ndjson(client, "/exports/proposals.ndjson?as_of=-1")
    assert records == []


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/exports/nothing.csv", 404),
        ("/exports/nothing.ndjson", 404),
        ("/exports/proposals.xml", 404),
        ("/exports/proposals", 404),
        ("/exports/proposals.csv?as_of=yesterday", 400),
        ("/exports/timeline.ndjson?as_of=-5", 400),
    ],
)
def test_errors_are_problems(
    api: tuple[Store, DemoSummary, TestClient], path: str, status: int
) -> None:
    _, _, client = api
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["status"] == status


def test_exports_page_through_the_register(api: tuple[Store, DemoSummary, TestClient]) -> None:
    """Fetched in pages of any size, a register is the same, item for item."""
    store, summary, _ = api
    at = summary.entries - 1
    for name in REGISTERS:
        whole = list(export_records(store.settings, name, at))
        assert whole, name
        for page in (1, 2, 7):
            assert list(export_records(store.settings, name, at, page=page)) == whole, name


def test_openapi_documents_the_exports(api: tuple[Store, DemoSummary, TestClient]) -> None:
    _, _, client = api
    paths = client.get("/openapi.json").json()["paths"]
    for suffix, media_type in (
        ("csv", "text/csv; charset=utf-8"),
        ("ndjson", "application/x-ndjson"),
    ):
        responses = paths[f"/exports/{{register}}.{suffix}"]["get"]["responses"]
        assert list(responses["200"]["content"]) == [media_type]
        assert {"X-Ledger-Index", "Content-Disposition"} <= set(responses["200"]["headers"])
        assert list(responses["404"]["content"]) == [PROBLEM_JSON]
    assert "formula" in paths["/exports/{register}.csv"]["get"]["description"]
    ok = paths["/exports"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/Exports"}
