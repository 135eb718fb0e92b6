"""The website over plain HTTP: every page answers, names the log index it reflects, keeps
``as_of``, honours disclosure, fails as HTML (404/400, never JSON, never a 500), passes an
accessibility smoke check, and the Atom feeds are valid Atom 1.0 with stable tag: ids."""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from api.app import create_app
from tests.conftest import make_store
from tests.web.conftest import Site

ATOM = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def every_page(site: Site) -> list[str]:
    """A path for every page of the site over the demo."""
    gateway = site.gateway["id"]
    paths = [
        "/",
        "/web/proposals",
        "/web/proposals?q=gateway",
        "/web/proposals?status=enacted&strand=research-statistics",
        "/web/meetings",
        "/web/meetings?strand=fraud-error-debt",
        "/web/publications",
        f"/web/publications?proposal={gateway}",
        "/web/organisations",
        "/web/organisations?kind=civil_society",
        "/web/search?q=data",
        "/web/search",
        "/web/audit",
        f"/web/proposals/{gateway}/compare?from=1&to=4",
    ]
    process = site.json(f"/processes/{site.process_id}")
    paths += [f"/web/strands/{site.process_id}/{s['strand_id']}" for s in process["strands"]]
    for p in site.proposals:
        paths += [
            f"/web/proposals/{p['id']}",
            f"/web/proposals/{p['id']}/history",
            f"/web/proposals/{p['id']}/compare",
        ]
    paths += [f"/web/meetings/{m['id']}" for m in site.meetings]
    paths += [f"/web/publications/{p['id']}" for p in site.publications]
    paths += [f"/web/organisations/{o['id']}" for o in site.organisations]
    return paths


def test_every_page_answers_with_its_log_index(site: Site) -> None:
    """Every page is HTML, 200, says which log index it reflects, and has its security
    headers; nothing comes from another host."""
    for path in every_page(site):
        status, headers, body = site.get(path)
        assert status == 200, (path, body[:300])
        assert headers["content-type"] == "text/html; charset=utf-8", path
        assert headers["x-ledger-index"] == str(site.last), path
        assert "default-src 'self'" in headers["content-security-policy"], path
        text = body.decode()
        assert f'data-log-index="{site.last}"' in text, path
        assert f"entry {site.last}</strong>" in text, path
        # No CDN: scripts, styles and images only from this site.
        assert not re.search(r'<(script|img)[^>]+src="(https?:)?//', text), path
        assert not re.search(r'<link[^>]+rel="stylesheet"[^>]+href="(https?:)?//', text), path


def test_static_files(sqlite_site: Site) -> None:
    """The stylesheet and the script are served, with their versions in the URL."""
    home = sqlite_site.html("/")
    for name, media_type in [("site.css", "text/css"), ("verify.js", "text/javascript")]:
        found = re.search(rf'"(/static/{re.escape(name)}\?v=[0-9a-f]{{12}})"', home)
        assert found, name
        status, headers, body = sqlite_site.get(found.group(1))
        assert status == 200
        assert headers["content-type"].startswith(media_type)
        assert body


@pytest.mark.parametrize(
    "path",
    [
        "/web/proposals/00000000-0000-4000-8000-000000000000",
        "/web/proposals/nope/history",
        "/web/proposals/nope/compare?from=1&to=2",
        "/web/meetings/nope",
        "/web/publications/nope",
        "/web/organisations/nope",
        "/web/strands/nope/research-statistics",
        "/web/no-such-page",
        "/web/",
        "/feeds/proposals/nope.atom",
        "/feeds/nothing.atom",
        "/web/proposals/%00",
    ],
)
def test_unknown_is_an_html_404(sqlite_site: Site, path: str) -> None:
    status, headers, body = sqlite_site.get(path)
    assert status == 404, path
    assert headers["content-type"].startswith("text/html"), path
    text = body.decode()
    assert "<h1>Page not found</h1>" in text
    assert 'href="#main"' in text


def test_bad_parameters_are_html_400(sqlite_site: Site) -> None:
    gateway = sqlite_site.gateway["id"]
    for path, status in [
        ("/?as_of=yesterday", 400),
        (f"/web/proposals/{gateway}?as_of=-5", 400),
        ("/web/proposals?cursor=not-a-cursor", 400),
        (f"/web/proposals/{gateway}/compare?from=x&to=2", 400),
        (f"/web/proposals/{gateway}/compare?from=1&to=99", 404),
        ("/web/proposals?q=%00", 400),
        ("/web/meetings?strand=" + "x" * 600, 400),
    ]:
        got, headers, _ = sqlite_site.get(path)
        assert got == status, path
        assert headers["content-type"].startswith("text/html"), path


def test_as_of_shows_the_past_and_links_keep_it(sqlite_site: Site) -> None:
    """?as_of= (an index or a time) shows the record as it stood; links on the page keep it."""
    site = sqlite_site
    gateway = site.gateway
    home = site.html("/?as_of=20")
    assert 'data-log-index="20"' in home
    assert "after log entry 20" in home
    assert 'href="/web/proposals?as_of=20"' in home
    # Before it was tabled the proposal does not exist; later, it has fewer versions.
    status, _, _ = site.get(f"/web/proposals/{gateway['id']}?as_of=20")
    assert status == 404
    early = site.html(f"/web/proposals/{gateway['id']}?as_of={gateway['tabled_index']}")
    assert 'Current text <span class="secondary">(version 1)' in early
    dated = site.html(f"/web/proposals/{gateway['id']}/history?as_of=2015-03-01T00:00:00Z")
    assert "Version 2" in dated
    assert "Version 3" not in dated
    # A pager's cursor keeps the index of its first page.
    listing = site.html("/web/meetings?as_of=150")
    assert 'data-log-index="150"' in listing


def test_disclosure_is_honoured(sqlite_site: Site) -> None:
    """Chatham House and non-attributed meetings show no more than the read model does."""
    site = sqlite_site
    chatham = site.meeting("chatham_house")
    page = site.html(f"/web/meetings/{chatham['id']}")
    attending = page.split("<dt>Attending</dt>", 1)[1].split("</div>", 1)[0]
    assert "Not published" in attending
    assert "/web/organisations/" not in attending
    outcomes = page.split('id="outcomes"', 1)[1].split('class="verify"', 1)[0]
    assert "Organisations:" not in outcomes
    non_attributed = site.meeting("non_attributed")
    api = site.json(f"/meetings/{non_attributed['id']}")
    page = site.html(f"/web/meetings/{non_attributed['id']}")
    outcomes = page.split('id="outcomes"', 1)[1].split('class="verify"', 1)[0]
    assert "Organisations:" not in outcomes
    assert all("orgs" not in item for o in api["outcomes"] for item in o["items"])
    assert "Proposed here by" not in page
    on_record = site.meeting("on_record")
    page = site.html(f"/web/meetings/{on_record['id']}")
    attending = page.split("<dt>Attending</dt>", 1)[1].split("</dd>", 1)[0]
    assert attending.count("/web/organisations/") == len(on_record["attending_orgs"])


def test_history_shows_provenance_and_diffs(sqlite_site: Site) -> None:
    """Every version, why it exists (amendment, rationale, meeting, decision, consensus,
    dissent, actor) and its highlighted diff against the one before."""
    site = sqlite_site
    gateway = site.gateway
    versions = site.json(f"/proposals/{gateway['id']}/versions")["items"]
    page = site.html(f"/web/proposals/{gateway['id']}/history")
    for version in versions:
        assert f'id="version-{version["text_version"]}"' in page
        for amendment in version["amendments"]:
            assert f'id="amendment-{amendment["amendment_id"]}"' in page
            assert amendment["rationale"].replace("'", "&#39;") in page
    assert page.count("<ins>") >= len(versions) - 1
    assert "<del>" in page
    assert "Dissenting:" in page
    assert "Consensus banked".lower() in page.lower()
    assert "cabinet-office-secretariat" in page
    compare = site.html(f"/web/proposals/{gateway['id']}/compare?from=1&to={len(versions)}")
    assert '<option value="1" selected>' in compare
    assert "<ins>" in compare
    assert "<del>" in compare


def test_publication_download_matches_the_recorded_hash(sqlite_site: Site) -> None:
    site = sqlite_site
    published = site.publication("published")
    page = site.html(f"/web/publications/{published['id']}")
    assert published["sha256"] in page
    assert f'href="/publications/{published["id"]}/document"' in page
    status, _, document = site.get(f"/publications/{published['id']}/document")
    assert status == 200
    assert hashlib.sha256(document).hexdigest() == published["sha256"]
    withdrawn = site.publication("withdrawn")
    page = site.html(f"/web/publications/{withdrawn['id']}")
    assert "was withdrawn" in page
    assert "/document" not in page


def test_search_finds_proposals(sqlite_site: Site) -> None:
    site = sqlite_site
    page = site.html("/web/proposals?q=gateway")
    assert site.gateway["title"] in page
    assert "<mark>" in page
    everything = site.html("/web/search?q=consultation")
    assert "Outcome" in everything or "Amendment" in everything
    none = site.html("/web/proposals?q=zzzyyyxxx")
    assert "No proposals match" in none


# Feeds ---------------------------------------------------------------------------------------


def _atom(site: Site, path: str) -> ET.Element:
    status, headers, body = site.get(path)
    assert status == 200, path
    assert headers["content-type"].split(";")[0] == "application/atom+xml"
    assert body.startswith(b"<?xml")
    root = ET.fromstring(body)
    assert root.tag == f"{ATOM}feed"
    return root


def _check_feed(root: ET.Element) -> list[ET.Element]:
    """Atom 1.0's required elements (RFC 4287 §4.1.1, §4.1.2)."""
    for tag in ("id", "title", "updated", "author"):
        assert root.find(f"{ATOM}{tag}") is not None, tag
    assert RFC3339.match(root.findtext(f"{ATOM}updated") or "")
    assert (root.findtext(f"{ATOM}id") or "").startswith("tag:")
    rels = {link.get("rel") for link in root.findall(f"{ATOM}link")}
    assert {"self", "alternate"} <= rels
    entries = root.findall(f"{ATOM}entry")
    for entry in entries:
        assert (entry.findtext(f"{ATOM}id") or "").startswith("tag:")
        assert entry.findtext(f"{ATOM}title")
        assert RFC3339.match(entry.findtext(f"{ATOM}updated") or "")
        # No content element, so an alternate link is required (RFC 4287 §4.1.1).
        assert entry.find(f"{ATOM}content") is not None or any(
            link.get("rel") == "alternate" and link.get("href")
            for link in entry.findall(f"{ATOM}link")
        )
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert len(ids) == len(set(ids))
    return entries


def test_log_feed(sqlite_site: Site) -> None:
    """The latest 50 entries, newest first, with stable tag: ids from the log's name."""
    site = sqlite_site
    root = _atom(site, "/feeds/log.atom")
    entries = _check_feed(root)
    assert len(entries) == 50
    latest = site.json("/timeline?limit=50")["items"]
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    # tag:<authority>,<date of entry 0>:<rest of the log name>/entry/<index>
    assert ids[0] == f"tag:ledger.test.example,2014-05-01:open-policy/entry/{site.last}"
    assert [int(str(i).rsplit("/", 1)[1]) for i in ids] == [t["index"] for t in latest]
    assert root.findtext(f"{ATOM}updated") == latest[0]["time"]
    assert [e.findtext(f"{ATOM}updated") for e in entries] == [t["time"] for t in latest]
    assert root.findtext(f"{ATOM}title") == "Open Policy Ledger: latest entries"
    # Stable: the same ids however often, and in a past view.
    assert ids == [e.findtext(f"{ATOM}id") for e in _check_feed(_atom(site, "/feeds/log.atom"))]
    past = _check_feed(_atom(site, "/feeds/log.atom?as_of=100"))
    assert past[0].findtext(f"{ATOM}id") == ids[0].replace(f"/{site.last}", "/100")


def test_proposal_feed(sqlite_site: Site) -> None:
    site = sqlite_site
    gateway = site.gateway
    root = _atom(site, f"/feeds/proposals/{gateway['id']}.atom")
    entries = _check_feed(root)
    history = site.json(f"/proposals/{gateway['id']}/history")["items"]
    assert len(entries) == len(history)
    indexes = [int(str(e.findtext(f"{ATOM}id")).rsplit("/", 1)[1]) for e in entries]
    assert indexes == [h["index"] for h in reversed(history)]
    assert gateway["title"] in (root.findtext(f"{ATOM}title") or "")
    titles = [e.findtext(f"{ATOM}title") or "" for e in entries]
    assert any(t.startswith("Tabled: ") for t in titles)
    assert any(t.startswith("Version 2") for t in titles)
    alternate = [
        link.get("href")
        for e in entries
        for link in e.findall(f"{ATOM}link")
        if link.get("rel") == "alternate"
    ]
    assert all(f"/web/proposals/{gateway['id']}/history#entry-" in str(h) for h in alternate)


def test_pages_link_their_feeds(sqlite_site: Site) -> None:
    gateway = sqlite_site.gateway["id"]
    for path in ("/", f"/web/proposals/{gateway}", f"/web/proposals/{gateway}/history"):
        page = sqlite_site.html(path)
        assert (
            '<link rel="alternate" type="application/atom+xml" '
            'title="Open Policy Ledger: latest entries" href="/feeds/log.atom">'
        ) in page
    page = sqlite_site.html(f"/web/proposals/{gateway}")
    assert 'type="application/atom+xml" title="History of this proposal" ' in page
    assert f'href="/feeds/proposals/{gateway}.atom"' in page


# Accessibility smoke check ----------------------------------------------------------------------


class _Audit(HTMLParser):
    """What the smoke check looks at: lang, headings, ids, labels, form controls, links."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.h1 = 0
        self.ids: Counter[str] = Counter()
        self.label_for: set[str] = set()
        self.controls: list[dict[str, str | None]] = []
        self.links: list[dict[str, str | None]] = []
        self.landmarks: Counter[str] = Counter()
        self.label_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "html":
            self.lang = found.get("lang")
        if tag == "h1":
            self.h1 += 1
        if found.get("id"):
            self.ids[str(found["id"])] += 1
        if tag == "label":
            self.label_depth += 1
            if found.get("for"):
                self.label_for.add(str(found["for"]))
        if tag in ("input", "select", "textarea") and found.get("type") != "hidden":
            self.controls.append({**found, "_wrapped": "yes" if self.label_depth else None})
        if tag == "a":
            self.links.append(found)
        if tag in ("main", "header", "footer", "nav"):
            self.landmarks[tag] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.label_depth = max(0, self.label_depth - 1)


def test_accessibility_smoke(sqlite_site: Site) -> None:
    """Every page: a language, one h1, landmarks, a skip link to an existing target, unique
    ids, and every form control labelled."""
    site = sqlite_site
    gateway = site.gateway["id"]
    paths = [*every_page(site), f"/web/proposals/{gateway}?as_of=100", "/web/nope"]
    for path in paths:
        status, _, body = site.get(path)
        audit = _Audit()
        audit.feed(body.decode())
        assert audit.lang == "en-GB", path
        assert audit.h1 == 1, (path, audit.h1)
        assert audit.landmarks["main"] == 1, path
        assert audit.landmarks["header"] >= 1, path
        assert audit.landmarks["footer"] >= 1, path
        assert audit.landmarks["nav"] >= 1, path
        duplicates = [i for i, n in audit.ids.items() if n > 1]
        assert not duplicates, (path, duplicates)
        assert audit.links[0].get("href") == "#main", path
        assert audit.links[0].get("class") == "skip-link", path
        assert audit.ids["main"] == 1, path
        for control in audit.controls:
            labelled = (
                control.get("id") in audit.label_for
                or control.get("aria-label")
                or control.get("aria-labelledby")
                or control.get("_wrapped")
            )
            assert labelled, (path, control)
        assert status in (200, 404)


# An empty ledger, in-process ---------------------------------------------------------------------


def test_an_empty_ledger_still_has_pages(tmp_path: Path) -> None:
    """Before anything is recorded every page answers (lists empty, ids unknown), never a
    500; and no page is in the API's OpenAPI document."""
    from fastapi.testclient import TestClient

    for store in make_store("sqlite", tmp_path):
        with TestClient(create_app(store.settings)) as client:
            for path in (
                "/",
                "/web/proposals",
                "/web/proposals?q=anything",
                "/web/meetings",
                "/web/publications",
                "/web/organisations",
                "/web/search?q=anything",
                "/web/audit",
                "/feeds/log.atom",
            ):
                response = client.get(path)
                assert response.status_code == 200, (path, response.text[:300])
            assert "Nothing has been recorded in this ledger yet" in client.get("/").text
            assert "there is no checkpoint" in client.get("/web/audit").text
            feed = ET.fromstring(client.get("/feeds/log.atom").content)
            assert feed.findall(f"{ATOM}entry") == []
            assert feed.findtext(f"{ATOM}updated") == "1970-01-01T00:00:00Z"
            for path in ("/web/proposals/x", "/web/proposals/x/history", "/feeds/proposals/x.atom"):
                response = client.get(path)
                assert response.status_code == 404, path
                assert response.headers["content-type"].startswith("text/html")
            documented = client.get("/openapi.json").json()["paths"]
            assert not [p for p in documented if p == "/" or p.startswith(("/web", "/feeds"))]


def test_audit_page_links_work(sqlite_site: Site) -> None:
    """The audit page shows the latest checkpoint, the key and the command, and every
    endpoint it links to answers."""
    site = sqlite_site
    page = site.html("/web/audit")
    _, _, checkpoint = site.get("/checkpoint")
    _, _, vkey = site.get("/public-key")
    assert checkpoint.decode().split("\n\n")[0] in page
    assert vkey.decode().strip() in page
    assert f"ledger audit {site.base} --key {vkey.decode().strip()}" in page
    links = re.findall(r'href="(/(?:checkpoint|public-key|entries|proof|tile|feeds)[^"]*)"', page)
    assert len(links) >= 8
    for link in links:
        status, _, _ = site.get(link.replace("&amp;", "&"))
        assert status == 200, link
