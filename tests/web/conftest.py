"""The website under test: a real `ledger serve` on loopback holding the demo process, one per
storage backend for the whole session, and a real headless Chromium (Debian's, driven by
Playwright) to look at it with.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ledger.application import LedgerApplication
from ledger.demo import DemoSummary, record_demo
from tests.api.test_log_api import Server
from tests.conftest import BACKENDS, Store, make_store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


@dataclass
class Site:
    """The demo served over HTTP, and what tests need to find their way around it."""

    kind: str
    store: Store
    server: Server
    summary: DemoSummary
    last: int = 0
    proposals: list[dict[str, Any]] = field(default_factory=list)
    meetings: list[dict[str, Any]] = field(default_factory=list)
    publications: list[dict[str, Any]] = field(default_factory=list)
    organisations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.server.base

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """GET ``path``: status, headers (lower-case names) and body; errors too."""
        try:
            with urllib.request.urlopen(self.base + path, timeout=15) as response:
                headers = {k.lower(): v for k, v in response.headers.items()}
                return response.status, headers, response.read()
        except urllib.error.HTTPError as error:
            headers = {k.lower(): v for k, v in error.headers.items()}
            return error.code, headers, error.read()

    def html(self, path: str) -> str:
        status, headers, body = self.get(path)
        assert status == 200, (path, status, body[:500])
        assert headers["content-type"].startswith("text/html"), path
        return body.decode()

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, (path, body[:500])
        return json.loads(body)

    @property
    def gateway(self) -> dict[str, Any]:
        """The demo proposal with the most versions (the gateway for tailored services)."""
        return max(self.proposals, key=lambda p: (p["text_version"], p["title"]))

    def meeting(self, disclosure: str) -> dict[str, Any]:
        return next(m for m in self.meetings if m["disclosure"] == disclosure and m["held"])

    def publication(self, state: str) -> dict[str, Any]:
        return next(p for p in self.publications if p["state"] == state)

    @property
    def process_id(self) -> str:
        return self.summary.process_id


@contextmanager
def _serve_demo(kind: str, tmp_path: Path) -> Iterator[Site]:
    stores = make_store(kind, tmp_path)
    store = next(stores)  # skips (or fails under CI) when the backend is unavailable
    try:
        app = LedgerApplication(store.settings)
        summary = record_demo(app)
        app.close()
        server = Server(store)
        try:
            site = Site(kind, store, server, summary, last=summary.entries - 1)
            deadline = time.monotonic() + 20
            while site.json("/timeline?limit=1")["as_of_index"] < site.last:
                assert time.monotonic() < deadline, "the read models never caught up"
                time.sleep(0.1)
            site.proposals = site.json("/proposals?limit=500")["items"]
            site.meetings = site.json("/meetings?limit=500")["items"]
            site.publications = site.json("/publications?limit=500")["items"]
            site.organisations = site.json("/organisations?limit=500")["items"]
            yield site
        finally:
            server.stop()
    finally:
        for _ in stores:  # run make_store's clean-up (drops the PostgreSQL schema)
            pass


@pytest.fixture(scope="session")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Site]]:
    """Start (once per session and backend, on first use) the demo site on a backend."""
    started: dict[str, Site] = {}
    with ExitStack() as stack:

        def site_for(kind: str) -> Site:
            if kind not in started:
                path = tmp_path_factory.mktemp(f"web-{kind}")
                started[kind] = stack.enter_context(_serve_demo(kind, path))
            return started[kind]

        yield site_for


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, sites: Callable[[str], Site]) -> Site:
    """The demo site, once on SQLite and once on PostgreSQL."""
    return sites(request.param)


@pytest.fixture
def sqlite_site(sites: Callable[[str], Site]) -> Site:
    """The demo site on SQLite (for what does not depend on the store)."""
    return sites("sqlite")


# The browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (no downloaded browser)."""
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (own context: no cookies, cache or storage shared between tests) that
    fails the test on any script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, errors


def screenshot(page: Any, name: str, *, around: str | None = None) -> Path:
    """Save a screenshot to tests/web/screenshots/<name>.png (git-ignored): the full page,
    or the window with the element ``around`` (a CSS selector) scrolled to its middle."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if around is None:
        page.screenshot(path=str(path), full_page=True)
    else:
        page.locator(around).first.evaluate("e => e.scrollIntoView({block: 'center'})")
        page.screenshot(path=str(path))
    return path
