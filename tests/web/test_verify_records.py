"""A page's Verify proves what the page shows (real Chromium, real `ledger serve`, both stores).

The browser finds a record's entries in the log itself (GET /subjects/{id}/entries), checks
each proof and that the record's versions run 1..n, derives every marked fact from those
entries and compares. A database insider edits the read-model tables with SQL: the page then
shows the false content, and its Verify fails naming the fact.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import BACKENDS, Store
from tests.web.conftest import Site, _serve_demo, screenshot

ROOT = Path(__file__).resolve().parents[2]
VERIFIED = re.compile(r"^Verified: \d+ entr(y is|ies are) in the log signed by ")


@pytest.fixture(scope="module", params=BACKENDS)
def tampered_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """A demo site of its own (its read models are edited by the tests), per store."""
    with _serve_demo(request.param, tmp_path_factory.mktemp(f"tamper-{request.param}")) as site:
        yield site


def verify(page: Any) -> tuple[str, str]:
    """Press Verify; (result text, state: ok / warning / failed)."""
    page.get_by_role("button", name="Verify", exact=True).click()
    result = page.locator(
        "[data-verify-result].is-ok, [data-verify-result].is-failed, "
        "[data-verify-result].is-warning"
    )
    result.wait_for()
    classes = str(result.get_attribute("class"))
    state = next(s for s in ("ok", "failed", "warning") if f"is-{s}" in classes)
    return str(result.inner_text()), state


def open_page(page: Any, url: str) -> None:
    """Load ``url`` until it answers 200 (bounded): a server just started may still be
    bringing its read models up to the records the test wrote."""
    deadline = time.monotonic() + 30
    while True:
        response = page.goto(url)
        if (response is not None and response.status == 200) or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def verified(page: Any, url: str) -> str:
    page.goto(url)
    text, state = verify(page)
    assert state == "ok", text
    assert VERIFIED.match(text), text
    assert "entries runs from version 1 to " in text, text  # the record's entries, from the log
    return text


def failed(page: Any, url: str) -> str:
    page.goto(url)
    text, state = verify(page)
    assert state == "failed", text
    assert text.startswith("Verification failed: "), text
    return text


def run(site: Site, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """One SQL statement as the insider types it; its rows, if any."""
    conn = site.store.connect()
    try:
        cursor = conn.execute(site.store.q(statement), params)
        return [tuple(r) for r in cursor.fetchall()] if cursor.description else []
    finally:
        conn.close()


@contextmanager
def insider(site: Site, table: str, where: str, *params: Any) -> Iterator[None]:
    """Keep the rows of ``table`` matching ``where``; the test edits them with SQL; put the
    kept rows back afterwards (the read models of this site are shared by its tests)."""
    conn = site.store.connect()
    try:
        cursor = conn.execute(site.store.q(f"SELECT * FROM {table} WHERE {where}"), params)
        columns = [d[0] for d in cursor.description]
        kept = [tuple(r) for r in cursor.fetchall()]
    finally:
        conn.close()
    assert kept, (table, where, params)
    try:
        yield
    finally:
        marks = ", ".join("?" for _ in columns)
        run(site, f"DELETE FROM {table} WHERE {where}", *params)
        for row in kept:
            run(site, f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", *row)


def entries_of(site: Site, subject: str) -> list[dict[str, Any]]:
    return [json.loads(e["entry"]) for e in site.json(f"/subjects/{subject}/entries")["entries"]]


def proposal_url(site: Site, proposal: dict[str, Any], tail: str = "") -> str:
    return f"{site.base}/web/proposals/{proposal['id']}{tail}"


# Untouched pages verify ------------------------------------------------------------------------


def test_untouched_record_pages_verify_from_the_log(tampered_site: Site, page: Any) -> None:
    """Proposal, history and meeting pages verify; the panel says what is proven and what is
    not, and that the server's list of the record's entries has no gap."""
    site = tampered_site
    gateway = site.gateway
    entries = site.json(f"/subjects/{gateway['id']}/entries")["entries"]
    text = verified(page, proposal_url(site, gateway))
    assert (
        "The server's list of this proposal's entries runs from version 1 to "
        f"{len(entries)} with no gap" in text
    )
    assert "facts shown on this page follow from them" in text
    details = page.locator("[data-verify-details]").inner_text()
    assert (
        "Not proven: that this list of the proposal's entries, which comes from the server"
        in details
    )
    assert "a latest entry it leaves out (up to entry " in details
    assert "Origin checked: “ledger.test.example/open-policy”" in details
    screenshot(page, f"verify-record-{site.kind}", around=".verify")
    verified(page, proposal_url(site, gateway, "/history"))
    # A page of an earlier state: only the entries up to where it stands.
    middle = entries[len(entries) // 2]["index"]
    text = verified(page, proposal_url(site, gateway, f"?as_of={middle}"))
    assert f"entries runs from version 1 to {len(entries) // 2 + 1} with no gap" in text
    assert (
        f"(up to entry {middle}, where this page stands)"
        in page.locator("[data-verify-details]").inner_text()
    )
    for disclosure in ("on_record", "chatham_house", "non_attributed"):
        verified(page, f"{site.base}/web/meetings/{site.meeting(disclosure)['id']}")


# The insider edits the read models with SQL: the page lies, Verify says where ------------------


def test_a_renamed_sponsor_fails(tampered_site: Site, page: Any) -> None:
    site = tampered_site
    gateway = site.gateway
    sponsor = gateway["sponsor_org"]
    url = proposal_url(site, gateway)
    with insider(site, "pv_organisations", "id = ?", sponsor):
        run(
            site,
            "UPDATE pv_organisations SET name = ? WHERE id = ?",
            "Fictional Front Ltd",
            sponsor,
        )
        page.goto(url)
        assert page.get_by_text("Fictional Front Ltd").first.is_visible()
        text = failed(page, url)
        assert f"organisation {sponsor} as “Fictional Front Ltd”" in text
        assert "that organisation's own entries say" in text
        screenshot(page, f"verify-record-tampered-{site.kind}", around=".verify")
    verified(page, url)


def test_a_reassigned_sponsor_fails(tampered_site: Site, page: Any) -> None:
    site = tampered_site
    gateway = site.gateway
    other = next(o["id"] for o in site.organisations if o["id"] != gateway["sponsor_org"])
    with insider(site, "pv_proposals", "id = ?", gateway["id"]):
        run(site, "UPDATE pv_proposals SET sponsor_org = ? WHERE id = ?", other, gateway["id"])
        text = failed(page, proposal_url(site, gateway))
        assert "the page shows “sponsor” as “" + other in text


def test_a_reverted_status_and_deleted_history_fail(tampered_site: Site, page: Any) -> None:
    """An enacted proposal shown as recommended, its later timeline rows deleted: both the
    proposal page and its history fail."""
    site = tampered_site
    enacted = next(p for p in site.proposals if p["status"] == "enacted")
    entries = entries_of(site, enacted["id"])
    enacting = next(
        e
        for e in entries
        if e["type"] == "proposal.status_changed" and e["data"]["new_status"] == "enacted"
    )
    with (
        insider(site, "pv_proposals", "id = ?", enacted["id"]),
        insider(site, "pv_proposal_timeline", "proposal_id = ?", enacted["id"]),
    ):
        run(site, "UPDATE pv_proposals SET status = 'recommended' WHERE id = ?", enacted["id"])
        run(
            site,
            "DELETE FROM pv_proposal_timeline WHERE proposal_id = ? AND idx >= ?",
            enacted["id"],
            enacting["index"],
        )
        page.goto(proposal_url(site, enacted))
        assert page.locator("[data-fact=status]").inner_text().lower() == "recommended"
        text = failed(page, proposal_url(site, enacted))
        assert (
            "the page shows “status” as “recommended” but the log's entries say “enacted”" in text
        )
        text = failed(page, proposal_url(site, enacted, "/history"))
        assert "the page shows “entries” as “" in text


def test_a_removed_section_of_the_current_text_fails(tampered_site: Site, page: Any) -> None:
    site = tampered_site
    gateway = site.gateway
    version = gateway["text_version"]
    where = "proposal_id = ? AND text_version = ?"
    with insider(site, "pv_versions", where, gateway["id"], version):
        (sections,) = run(
            site, f"SELECT sections FROM pv_versions WHERE {where}", gateway["id"], version
        )[0]
        kept = json.loads(sections)
        removed = kept.pop(1)
        run(
            site,
            f"UPDATE pv_versions SET sections = ? WHERE {where}",
            json.dumps(kept),
            gateway["id"],
            version,
        )
        page.goto(proposal_url(site, gateway))
        assert page.locator(f"#section-{removed['id']}").count() == 0
        text = failed(page, proposal_url(site, gateway))
        assert "the page shows “section-ids” as" in text
        assert removed["id"] in text
        # The history's word diff into that version no longer leads to the logged text.
        text = failed(page, proposal_url(site, gateway, "/history"))
        assert f"section “{removed['id']}”" in text or "section-ids" in text, text


def test_replaced_meeting_attendees_fail(tampered_site: Site, page: Any) -> None:
    site = tampered_site
    meeting = site.meeting("on_record")
    url = f"{site.base}/web/meetings/{meeting['id']}"
    others = [o["id"] for o in site.organisations][-2:]
    with insider(site, "pv_meetings", "id = ?", meeting["id"]):
        run(
            site,
            "UPDATE pv_meetings SET attending_orgs = ?, attendee_count = 2 "
            "WHERE id = ? AND held = 1",
            json.dumps(others),
            meeting["id"],
        )
        text = failed(page, url)
        assert "the page shows “attendees” as “" + " ".join(others) in text
    verified(page, url)


def test_a_removed_dissent_fails(tampered_site: Site, page: Any) -> None:
    """The history page's dissent comes from the decision entry, not the amendments table."""
    site = tampered_site
    rows = run(
        site,
        "SELECT proposal_id, amendment_id FROM pv_amendments WHERE dissenting_orgs <> '[]' "
        "AND dissenting_orgs IS NOT NULL ORDER BY proposed_index",
    )
    proposal_id, amendment_id = rows[0]
    where = "proposal_id = ? AND amendment_id = ?"
    with insider(site, "pv_amendments", where, proposal_id, amendment_id):
        run(
            site,
            f"UPDATE pv_amendments SET dissenting_orgs = '[]' WHERE {where}",
            proposal_id,
            amendment_id,
        )
        url = f"{site.base}/web/proposals/{proposal_id}/history"
        page.goto(url)
        text = failed(page, url)
        assert f"“amendment.{amendment_id}.dissent” as “”" in text, text


def test_a_renamed_organisation_on_a_meeting_page_fails(tampered_site: Site, page: Any) -> None:
    site = tampered_site
    meeting = site.meeting("on_record")
    convenor = meeting["convenor_org"]
    with insider(site, "pv_organisations", "id = ?", convenor):
        run(site, "UPDATE pv_organisations SET name = 'Imaginary Office' WHERE id = ?", convenor)
        text = failed(page, f"{site.base}/web/meetings/{meeting['id']}")
        assert f"organisation {convenor} as “Imaginary Office”" in text


# What the reader brings: their key, and witnesses -----------------------------------------------


def _vkey(name: str, kind: int, public: bytes) -> str:
    key_id = hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]
    return f"{name}+{key_id.hex()}+{base64.b64encode(bytes([kind]) + public).decode()}"


def _public_key() -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_a_pasted_key_is_the_one_checked_and_is_kept(tampered_site: Site, page: Any) -> None:
    """The reader's key (and its origin) is used, kept in this browser for other pages; a
    wrong key fails, whichever log the page claims to be."""
    site = tampered_site
    gateway = site.gateway
    _, _, served = site.get("/public-key")
    right = served.decode().strip()
    url = proposal_url(site, gateway)
    page.goto(url)
    page.get_by_label("The log's public key you trust").fill(right)
    text, state = verify(page)
    assert state == "ok", text
    assert (
        "Origin checked: “ledger.test.example/open-policy” (from the key you gave)"
        in page.locator("[data-verify-details]").inner_text()
    )
    # Another log's key, under the same name: not signed by it.
    impostor = _vkey("ledger.test.example/open-policy", 1, _public_key())
    page.get_by_label("The log's public key you trust").fill(impostor)
    text, state = verify(page)
    assert state == "failed", text
    assert "the checkpoint is not signed by the log's key" in text
    # A key of a log with another name: the origin checked is the reader's.
    other = _vkey("other.example/log", 1, _public_key())
    page.get_by_label("The log's public key you trust").fill(other)
    text, state = verify(page)
    assert state == "failed", text
    assert "is not signed by the log's key other.example/log" in text
    # Kept in localStorage: the next page checks against it without asking.
    page.goto(proposal_url(site, gateway, "/history"))
    assert page.get_by_label("The log's public key you trust").input_value() == other
    text, state = verify(page)
    assert state == "failed", text
    # The audit page offers the log's key line to keep.
    page.goto(f"{site.base}/web/audit")
    page.get_by_role("button", name="Use this key to check every page").click()
    page.goto(url)
    assert page.get_by_label("The log's public key you trust").input_value() == right
    text, state = verify(page)
    assert state == "ok", text


def test_missing_cosignatures_are_a_warning(tampered_site: Site, page: Any) -> None:
    """A page naming a witness whose cosignature the checkpoint lacks is not green."""
    site = tampered_site
    witness = _vkey("witness.test.example/w1", 4, _public_key())
    page.goto(proposal_url(site, site.gateway))
    page.locator("[data-verify]").evaluate(f"p => p.setAttribute('data-witness-keys', '{witness}')")
    text, state = verify(page)
    assert state == "warning", text
    assert text.startswith("Warning: only 0 of the 1 witnesses this page names cosigned"), text


# Tampering in flight: the record's list is not trusted ------------------------------------------


def test_an_entry_left_out_of_the_record_fails(tampered_site: Site, page: Any) -> None:
    """A server that leaves one entry of the record out of its answer: a version is missing."""
    site = tampered_site
    gateway = site.gateway

    def handle(route: Any) -> None:
        response = route.fetch()
        body = json.loads(response.text())
        del body["entries"][2]
        route.fulfill(response=response, body=json.dumps(body))

    page.route(lambda url: urlsplit(url).path == f"/subjects/{gateway['id']}/entries", handle)
    text = failed(page, proposal_url(site, gateway))
    assert f"version 3 of record {gateway['id']} is missing" in text


LIMIT = (
    "is not detected by this page, but by running “ledger verify” on the store, or by reading "
    "the whole log and checking it against its signed checkpoint."
)


@dataclass
class _Hidden:
    """An enacted proposal whose entries from ``cut`` (version ``version``) on are hidden."""

    proposal: dict[str, Any]
    entries: list[dict[str, Any]]
    cut: int
    version: int


@contextmanager
def _wound_back(site: Site) -> Iterator[_Hidden]:
    """An enacted proposal's read models as they stood before the entry that enacted it
    (rows from that entry on deleted, the rows it closed reopened); put back afterwards."""
    enacted = next(p for p in site.proposals if p["status"] == "enacted")
    entries = entries_of(site, enacted["id"])
    enacting = next(
        e
        for e in entries
        if e["type"] == "proposal.status_changed" and e["data"]["new_status"] == "enacted"
    )
    cut = enacting["index"]
    tables = {
        "pv_proposals": "id = ?",
        "pv_versions": "proposal_id = ?",
        "pv_amendments": "proposal_id = ?",
        "pv_proposal_timeline": "proposal_id = ?",
    }
    with contextlib.ExitStack() as kept:
        for table, where in tables.items():
            kept.enter_context(insider(site, table, where, enacted["id"]))
        for table, where in tables.items():
            column = {"pv_versions": "created_index", "pv_proposal_timeline": "idx"}.get(
                table, "valid_from"
            )
            run(site, f"DELETE FROM {table} WHERE {where} AND {column} >= ?", enacted["id"], cut)
            if column == "valid_from":
                run(
                    site,
                    f"UPDATE {table} SET valid_to = NULL WHERE {where} AND valid_to >= ?",
                    enacted["id"],
                    cut,
                )
        yield _Hidden(enacted, entries, cut, enacting["subject"]["version"])


def _ledger_verify(site: Site) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", "verify", "--log-only"],
        cwd=ROOT, env=site.store.env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_re_pointed_event_rows_no_longer_hide_a_records_latest_entries(
    tampered_site: Site, page: Any
) -> None:
    """Red-team finding 3, its SQL: the insider re-points the event rows of an enacted
    proposal's last entries to another aggregate and winds its read models back to before
    them. The record's list is read from the hashed entry bytes, so it still holds them: the
    page (showing "recommended") fails its Verify; `ledger verify` reports the event rows."""
    site = tampered_site
    with _wound_back(site) as hidden:
        real, fake = uuid.UUID(hidden.proposal["id"]), uuid.UUID(int=1)

        def as_stored(u: uuid.UUID) -> Any:
            return u.hex if site.kind == "sqlite" else u

        run(
            site,
            "UPDATE ledger_events SET originator_id = ? "
            "WHERE originator_id = ? AND originator_version >= ?",
            as_stored(fake),
            as_stored(real),
            hidden.version,
        )
        try:
            answer = site.json(f"/subjects/{hidden.proposal['id']}/entries")
            assert len(answer["entries"]) == len(hidden.entries)  # nothing hidden
            url = proposal_url(site, hidden.proposal)
            page.goto(url)
            assert page.locator("[data-fact=status]").inner_text().lower() == "recommended"
            text = failed(page, url)
            assert (
                "the page shows “status” as “recommended” but the log's entries say “enacted”"
                in text
            )
            result = _ledger_verify(site)
            assert result.returncode == 1, result.stderr
            assert (
                f"DAMAGED at index {hidden.cut}: event row differs from its entry" in result.stderr
            )
        finally:
            run(
                site,
                "UPDATE ledger_events SET originator_id = ? WHERE originator_id = ?",
                as_stored(real),
                as_stored(fake),
            )
    verified(page, proposal_url(site, hidden.proposal))


def test_hidden_latest_entries_are_a_stated_limit(tampered_site: Site, page: Any) -> None:
    """To hide a record's latest entries from its list the insider must now edit their hashed
    bytes (the subject they name). The list then ends early and the page cannot tell: it
    verifies, and the panel says plainly that the list comes from the server and that a
    latest entry left out is found by `ledger verify` or by reading the whole log; both do."""
    site = tampered_site
    with _wound_back(site) as hidden:
        real = f'"subject":{{"id":"{hidden.proposal["id"]}"'
        fake = f'"subject":{{"id":"{uuid.UUID(int=1)}"'
        edit = (
            "UPDATE ledger_entries SET entry = CAST(replace(CAST(entry AS TEXT), ?, ?) AS BLOB) "
            "WHERE idx >= ? AND idx <= ?"
            if site.kind == "sqlite"
            else "UPDATE ledger_entries SET entry = "
            "convert_to(replace(convert_from(entry, 'UTF8'), ?, ?), 'UTF8') "
            "WHERE idx >= ? AND idx <= ?"
        )
        last = hidden.entries[-1]["index"]
        run(site, edit, real, fake, hidden.cut, last)
        try:
            answer = site.json(f"/subjects/{hidden.proposal['id']}/entries")
            assert len(answer["entries"]) == hidden.version - 1  # the list ends early
            url = proposal_url(site, hidden.proposal)
            page.goto(url)
            assert page.locator("[data-fact=status]").inner_text().lower() == "recommended"
            text = verified(page, url)  # the limit: the page cannot tell
            assert (
                "The server's list of this proposal's entries runs from version 1 to "
                f"{hidden.version - 1} with no gap" in text
            )
            assert "are all there" not in text
            details = page.locator("[data-verify-details]").inner_text()
            assert (
                "Not proven: that this list of the proposal's entries, which comes from the "
                "server, is complete: a latest entry it leaves out" in details
            )
            assert LIMIT in details
            screenshot(page, f"verify-record-hidden-latest-{site.kind}", around=".verify")
            # What the panel names as detecting it does: the bytes no longer hash to the
            # leaves the signed checkpoints commit to ...
            result = _ledger_verify(site)
            assert result.returncode == 1, result.stderr
            assert f"DAMAGED at index {hidden.cut}: " in result.stderr, result.stderr
            # ... and a fresh audit, reading the whole log and checking it against its signed
            # checkpoint, fails too.
            _, _, key = site.get("/public-key")
            with tempfile.TemporaryDirectory() as scratch:
                audited = subprocess.run(
                    [sys.executable, "-m", "ledger.cli", "audit", site.base,
                     "--key", key.decode().strip(), "--state", f"{scratch}/audit.state"],
                    cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                )  # fmt: skip
            assert audited.returncode == 1, audited.stderr
            assert "ledger audit: FAILED" in audited.stderr, audited.stderr
        finally:
            run(site, edit, fake, real, hidden.cut, last)
    assert len(entries_of(site, hidden.proposal["id"])) == len(hidden.entries)
    text = verified(page, proposal_url(site, hidden.proposal))
    assert f"from version 1 to {len(hidden.entries)} with no gap" in text


def test_lists_from_other_records_are_said_not_proven_complete(
    tampered_site: Site, page: Any
) -> None:
    """Red-team finding 8: the pages that list items drawn from other records (a meeting's
    amendments, versions and publications; a proposal's publications; an organisation's
    proposals, amendments and dissents) say so in the panel; pages without such lists do not."""
    site = tampered_site
    gateway = site.gateway
    shown = {
        f"{site.base}/web/meetings/{site.meeting('on_record')['id']}": (
            "The amendments, versions and publications listed as raised, agreed or published "
            "about this meeting come from other records: each is checked for what it names, "
            "not for being complete."
        ),
        proposal_url(site, gateway): (
            "The publications listed about this proposal come from other records"
        ),
        f"{site.base}/web/organisations/{gateway['sponsor_org']}": (
            "The proposals, amendments and dissents listed for this organisation come from "
            "other records"
        ),
    }
    for url, sentence in shown.items():
        verified(page, url)
        details = page.locator("[data-verify-details]").inner_text()
        assert sentence in details, details
        assert LIMIT in details
    for url in (
        proposal_url(site, gateway, "/history"),
        f"{site.base}/web/publications/{site.publication('published')['id']}",
    ):
        verified(page, url)
        details = page.locator("[data-verify-details]").inner_text()
        assert "come from other records" not in details, details
        assert LIMIT in details


# The other page kinds ---------------------------------------------------------------------------


def test_publication_compare_and_organisation_pages_verify(tampered_site: Site, page: Any) -> None:
    site = tampered_site
    for state in ("published", "superseded", "withdrawn"):
        verified(page, f"{site.base}/web/publications/{site.publication(state)['id']}")
    gateway = site.gateway
    verified(page, proposal_url(site, gateway, f"/compare?from=1&to={gateway['text_version']}"))
    verified(page, f"{site.base}/web/organisations/{gateway['sponsor_org']}")


def test_a_swapped_document_hash_fails(tampered_site: Site, page: Any) -> None:
    """The hash a reader's file is checked against comes from the publication's entry."""
    site = tampered_site
    publication = site.publication("published")
    forged = "0" * 64
    with insider(site, "pv_publications", "id = ?", publication["id"]):
        run(site, "UPDATE pv_publications SET sha256 = ? WHERE id = ?", forged, publication["id"])
        text = failed(page, f"{site.base}/web/publications/{publication['id']}")
        assert f"the page shows “sha256” as “{forged}”" in text


def test_a_changed_comparison_fails(tampered_site: Site, page: Any) -> None:
    """Compare: a version's text edited in the read model makes the word diff lead
    elsewhere than the logged text."""
    site = tampered_site
    gateway = site.gateway
    where = "proposal_id = ? AND text_version = ?"
    with insider(site, "pv_versions", where, gateway["id"], 1):
        (sections,) = run(
            site, f"SELECT sections FROM pv_versions WHERE {where}", gateway["id"], 1
        )[0]
        edited = json.loads(sections)
        edited[0]["text"] = "Share nothing, ever."
        run(
            site,
            f"UPDATE pv_versions SET sections = ? WHERE {where}",
            json.dumps(edited),
            gateway["id"],
            1,
        )
        text = failed(
            page, proposal_url(site, gateway, f"/compare?from=1&to={gateway['text_version']}")
        )
        assert f"section “{edited[0]['id']}” do not start from version 1's text in the log" in text


def test_an_organisation_page_with_a_false_name_or_membership_fails(
    tampered_site: Site, page: Any
) -> None:
    site = tampered_site
    org = site.gateway["sponsor_org"]
    url = f"{site.base}/web/organisations/{org}"
    with insider(site, "pv_organisations", "id = ?", org):
        run(site, "UPDATE pv_organisations SET name = 'Invented Ministry' WHERE id = ?", org)
        text = failed(page, url)
        assert "the page shows “name” as “Invented Ministry”" in text
    with insider(site, "pv_memberships", "org_id = ?", org):
        run(site, "UPDATE pv_memberships SET role = 'observer' WHERE org_id = ?", org)
        text = failed(page, url)
        assert ".role” as “observer”" in text
    verified(page, url)


PAGE_KINDS = {
    "proposal": lambda s: proposal_url(s, s.gateway),
    "history": lambda s: proposal_url(s, s.gateway, "/history"),
    "compare": lambda s: proposal_url(
        s, s.gateway, f"/compare?from=1&to={s.gateway['text_version']}"
    ),
    "meeting": lambda s: f"{s.base}/web/meetings/{s.meeting('on_record')['id']}",
    "confidential meeting": lambda s: f"{s.base}/web/meetings/{s.meeting('chatham_house')['id']}",
    "publication": lambda s: f"{s.base}/web/publications/{s.publication('superseded')['id']}",
    "organisation": lambda s: f"{s.base}/web/organisations/{s.gateway['sponsor_org']}",
}


@pytest.mark.parametrize("kind", sorted(PAGE_KINDS))
def test_every_marked_fact_is_checked(sqlite_site: Site, page: Any, kind: str) -> None:
    """Each element a page marks as a fact or a name is compared with the log: change any
    one of them (about 20 per page, spread over the page) and Verify fails naming it."""
    url = PAGE_KINDS[kind](sqlite_site)
    page.goto(url)
    count = page.locator("[data-fact], [data-ref]").count()
    assert count >= 5, (kind, count)
    step = max(1, count // 20)
    for n in range(0, count, step):
        page.goto(url)
        element = page.locator("[data-fact], [data-ref]").nth(n)
        described = element.evaluate(
            """e => {
              const attr = e.hasAttribute('data-fact-value') ? 'data-fact-value'
                : e.hasAttribute('data-ref-value') ? 'data-ref-value' : null;
              if (attr) e.setAttribute(attr, e.getAttribute(attr) + ' forged');
              else e.textContent = e.textContent + ' forged';
              return e.getAttribute('data-fact') || e.getAttribute('data-ref');
            }"""
        )
        text, state = verify(page)
        assert state == "failed", (kind, n, described, text)
        assert "forged" in text, (kind, n, described, text)


def test_a_checkpoint_older_than_one_seen_is_flagged(tampered_site: Site, page: Any) -> None:
    """The browser keeps the newest checkpoint it verified for the log; a page checked
    against one older than that by more than LEDGER_VERIFY_MAX_CHECKPOINT_AGE_SECONDS (a
    day by default) of log time is a warning, a recent one is not."""
    site = tampered_site
    url = proposal_url(site, site.gateway)
    verified(page, url)
    key = page.evaluate(
        "() => Object.keys(localStorage).find(k => k.startsWith('open-policy-ledger:latest:'))"
    )
    assert key is not None
    kept = json.loads(page.evaluate(f"() => localStorage.getItem('{key}')"))
    assert kept["size"] == site.last + 1
    assert page.locator("[data-verify]").get_attribute("data-max-checkpoint-age") == "86400"
    newer = {"size": kept["size"] + 500, "time": "2031-05-01T00:00:00.000000Z"}
    page.evaluate(f"() => localStorage.setItem('{key}', '{json.dumps(newer)}')")
    page.goto(url)
    text, state = verify(page)
    assert state == "warning", text
    assert f"Warning: the checkpoint checked (size {kept['size']}," in text
    assert f"(size {newer['size']}, entries up to 2031-05-01T00:00:00.000000Z)" in text
    # Newer by less than the allowed age: no warning.
    last_time = datetime.fromisoformat(kept["time"].replace("Z", "+00:00"))
    close = {"size": kept["size"] + 1, "time": (last_time + timedelta(hours=1)).isoformat()}
    page.evaluate(f"() => localStorage.setItem('{key}', '{json.dumps(close)}')")
    verified(page, url)


# Every column the page shows: edit it with SQL, and the page either does not change or fails --

SKIPPED_COLUMNS = {"valid_from", "valid_to", "id", "proposal_id", "meeting_id", "org_id"}
# Which publications a proposal page lists, and in which order, comes from other records: the
# panel says such lists are checked for what they name, not for being complete.
NOT_CLAIMED = {
    "proposal": {
        "pv_publications.proposal_ids",
        "pv_publications.meeting_ids",
        "pv_publications.published_index",
    }
}


def _forged(value: Any) -> Any:
    """``value`` changed in a way a page would show: text, numbers and JSON texts."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value + 1
    if not isinstance(value, str):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return value + " forged"
    if isinstance(parsed, (dict, list)):

        def first_string(node: Any) -> bool:
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, item in items:
                if isinstance(item, str) and item:
                    node[key] = item + " forged"
                    return True
                if isinstance(item, (dict, list)) and first_string(item):
                    return True
            return False

        return json.dumps(parsed) if first_string(parsed) else None
    return value + " forged"


def _main(page: Any, url: str) -> str | None:
    response = page.goto(url)
    if response is None or response.status != 200:
        return None
    return str(
        page.locator("main").evaluate(
            "m => { const c = m.cloneNode(true); "
            "c.querySelector('.verify')?.remove(); return c.innerText; }"
        )
    )


SWEEPS: dict[str, tuple[Callable[[Site], str], Callable[[Site], list[tuple[str, str, Any]]]]] = {
    "proposal": (
        lambda s: proposal_url(s, s.gateway),
        lambda s: [
            ("pv_proposals", "id = ?", s.gateway["id"]),
            ("pv_versions", "proposal_id = ?", s.gateway["id"]),
            ("pv_amendments", "proposal_id = ?", s.gateway["id"]),
            ("pv_proposal_timeline", "proposal_id = ?", s.gateway["id"]),
            ("pv_organisations", "id = ?", s.gateway["sponsor_org"]),
            ("pv_publications", "proposal_ids LIKE ?", f"%{s.gateway['id']}%"),
        ],
    ),
    "history": (
        lambda s: proposal_url(s, s.gateway, "/history"),
        lambda s: [
            ("pv_proposals", "id = ?", s.gateway["id"]),
            ("pv_versions", "proposal_id = ?", s.gateway["id"]),
            ("pv_amendments", "proposal_id = ?", s.gateway["id"]),
            ("pv_proposal_timeline", "proposal_id = ?", s.gateway["id"]),
        ],
    ),
    "meeting": (
        lambda s: f"{s.base}/web/meetings/{s.meeting('on_record')['id']}",
        lambda s: [
            ("pv_meetings", "id = ?", s.meeting("on_record")["id"]),
            ("pv_meeting_outcomes", "meeting_id = ?", s.meeting("on_record")["id"]),
        ],
    ),
    "confidential meeting": (
        lambda s: f"{s.base}/web/meetings/{s.meeting('chatham_house')['id']}",
        lambda s: [
            ("pv_meetings", "id = ?", s.meeting("chatham_house")["id"]),
            ("pv_meeting_outcomes", "meeting_id = ?", s.meeting("chatham_house")["id"]),
        ],
    ),
    "publication": (
        lambda s: f"{s.base}/web/publications/{s.publication('published')['id']}",
        lambda s: [("pv_publications", "id = ?", s.publication("published")["id"])],
    ),
    "compare": (
        lambda s: proposal_url(s, s.gateway, f"/compare?from=1&to={s.gateway['text_version']}"),
        lambda s: [
            ("pv_proposals", "id = ?", s.gateway["id"]),
            ("pv_versions", "proposal_id = ?", s.gateway["id"]),
        ],
    ),
    "organisation": (
        lambda s: f"{s.base}/web/organisations/{s.gateway['sponsor_org']}",
        lambda s: [
            ("pv_organisations", "id = ?", s.gateway["sponsor_org"]),
            ("pv_memberships", "org_id = ?", s.gateway["sponsor_org"]),
        ],
    ),
}


@pytest.mark.parametrize("kind", sorted(SWEEPS))
def test_every_column_a_page_shows_is_verified(tampered_site: Site, page: Any, kind: str) -> None:
    """For each column of the read-model rows behind a page: change it with SQL; if the page
    now shows something else, its Verify fails."""
    site = tampered_site
    url_of, tables_of = SWEEPS[kind]
    url = url_of(site)
    baseline = _main(page, url)
    if baseline is None:  # seen once on PostgreSQL right after the site started: retry once
        time.sleep(1)
        baseline = _main(page, url)
    assert baseline is not None, page.content()[:800]
    unverified: list[str] = []
    shown = 0
    for table, where, key in tables_of(site):
        conn = site.store.connect()
        try:
            cursor = conn.execute(site.store.q(f"SELECT * FROM {table} WHERE {where}"), (key,))
            columns = [d[0] for d in cursor.description]
            rows = [tuple(r) for r in cursor.fetchall()]
        finally:
            conn.close()
        for position, column in enumerate(columns):
            if column in SKIPPED_COLUMNS or f"{table}.{column}" in NOT_CLAIMED.get(kind, set()):
                continue
            changes = {r[position]: _forged(r[position]) for r in rows}
            changes = {old: new for old, new in changes.items() if new is not None}
            if not changes:
                continue
            with insider(site, table, where, key):
                try:
                    for old, new in changes.items():
                        run(
                            site,
                            f"UPDATE {table} SET {column} = ? WHERE {where} AND {column} = ?",
                            new,
                            key,
                            old,
                        )
                except Exception:
                    continue
                now = _main(page, url)
                if now is None or now == baseline:
                    continue
                shown += 1
                text, state = verify(page)
                if state != "failed":
                    unverified.append(f"{table}.{column}: {text[:120]}")
    assert shown >= 3, (kind, shown)
    assert unverified == [], unverified


def test_a_record_answered_in_pages_is_read_to_its_end(tampered_site: Site, page: Any) -> None:
    """The browser follows ``next_after`` until the record's list ends."""
    site = tampered_site
    gateway = site.gateway
    asked: list[str] = []

    def handle(route: Any) -> None:
        asked.append(route.request.url)
        response = route.fetch()
        body = json.loads(response.text())
        if "after=-1" in route.request.url:
            body["entries"] = body["entries"][:3]
            body["next_after"] = body["entries"][-1]["index"]
        route.fulfill(response=response, body=json.dumps(body))

    page.route(lambda url: urlsplit(url).path == f"/subjects/{gateway['id']}/entries", handle)
    verified(page, proposal_url(site, gateway))
    assert len(asked) == 2, asked
    assert "size=" in asked[1]


# A real witness: its cosignature verified, and stripped in flight ------------------------------


@dataclass
class _WithWitness:
    """The store's environment for `ledger serve`, naming the witness."""

    store: Store
    witnesses: str

    def env(self) -> dict[str, str]:
        return {**self.store.env(), "LEDGER_WITNESSES": self.witnesses}


def test_a_stripped_cosignature_is_a_warning(store: Store, tmp_path: Path, page: Any) -> None:
    """A log cosigned by a live witness: the page names it and Verify counts its
    cosignature; strip the cosignature from the checkpoint served and Verify warns."""
    from ledger.application import LedgerApplication
    from ledger.checkpoint import CosignatureSigner
    from ledger.keys import load_signer
    from ledger.settings import WitnessConfig
    from ledger.witness import create_witness_app
    from tests.api.test_log_api import Server
    from tests.helpers import record_sample
    from tests.security.test_tamper_matrix import serving

    log_signer = load_signer(store.settings)
    assert log_signer is not None
    signer = CosignatureSigner.generate("witness.test.example/w1")
    witness_app = create_witness_app(
        signer=signer,
        logs={store.settings.log_name: log_signer.verifier_key()},
        state_dir=tmp_path / "witness",
    )
    with serving(witness_app) as url:
        config = [WitnessConfig(url=url, key=signer.verifier_key())]
        store.settings = store.settings.model_copy(update={"witnesses": config})
        app = LedgerApplication(store.settings)
        sample = record_sample(app, amendments=1)
        app.close()
        served = Server(_WithWitness(store, json.dumps([c.model_dump() for c in config])))  # type: ignore[arg-type]
        try:
            page_url = f"{served.base}/web/proposals/{sample.proposal_id}"
            open_page(page, page_url)
            text, state = verify(page)
            assert state == "ok", text
            assert "Cosigned by 1 of 1 witnesses." in text

            def strip(route: Any) -> None:
                response = route.fetch()
                body = json.loads(response.text())
                lines = body["checkpoint"].split("\n")
                body["checkpoint"] = "\n".join(
                    line for line in lines if not line.startswith("— witness.test.example/w1 ")
                )
                route.fulfill(response=response, body=json.dumps(body))

            page.route(re.compile(r"/subjects/[^/]+/entries"), strip)
            page.route(re.compile(r"/entries/\d+"), strip)
            page.goto(page_url)
            text, state = verify(page)
            assert state == "warning", text
            assert "Warning: only 0 of the 1 witnesses this page names cosigned" in text
            assert "Cosigned by 0 of 1 witnesses." in text
        finally:
            served.stop()
