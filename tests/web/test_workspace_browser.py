"""The workspace in Debian's Chromium (Playwright) against a real `ledger serve` on loopback:
an official records a proposal's life through the forms and the public pages show it (and
verify); and the forms work with JavaScript turned off. Screenshots of the key workspace
pages go to tests/web/screenshots/ (git-ignored)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ledger.actors import Actor
from ledger.application import LedgerApplication
from tests.web.conftest import Site, screenshot
from tests.web.test_browser import VERIFIED, verify

SETUP = Actor("setup", "admin", "")


def _token(site: Site, role: str, name: str) -> str:
    app = LedgerApplication(site.store.settings)
    try:
        org = next(o["id"] for o in site.organisations if o["org_kind"] == "department")
        return app.issue_token(principal=name, org=org, role=role, actor=SETUP)[1]
    finally:
        app.close()


def _sign_in(page: Any, site: Site, token: str) -> None:
    page.goto(site.base + "/workspace")
    page.wait_for_url(re.compile(r"/workspace/sign-in$"))
    page.get_by_label("Your API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/workspace$"))


def _receipt(page: Any) -> tuple[int, str]:
    page.locator("[data-receipt-index]").wait_for()
    index = int(page.locator("[data-receipt-index]").inner_text())
    return index, str(page.locator("[data-public-link]").get_attribute("href"))


@pytest.fixture
def official(sqlite_site: Site) -> Iterator[str]:
    return _token(sqlite_site, "admin", "w.browser")


def test_an_official_records_a_proposal_life_and_the_public_pages_show_it(
    sqlite_site: Site, page: Any, official: str
) -> None:
    site = sqlite_site
    _sign_in(page, site, official)
    assert "w.browser" in page.locator(".official-bar").inner_text()
    screenshot(page, "workspace-home")

    # Table a proposal.
    page.get_by_role("link", name="Table a proposal").click()
    page.get_by_label("Title", exact=True).fill("Browser-tabled data proposal")
    page.get_by_label("Strand", exact=True).select_option(index=1)
    page.get_by_label("Sponsoring organisation").select_option(index=1)
    page.locator("#f-sections-0-heading").fill("Purpose")
    page.locator("#f-sections-0-text").fill("Share data with care.")
    page.locator("#f-sections-1-heading").fill("Safeguards")
    page.locator("#f-sections-1-text").fill("Audit every use.")
    screenshot(page, "workspace-table-proposal")
    page.get_by_role("button", name="Table proposal").click()
    _, public = _receipt(page)
    screenshot(page, "workspace-receipt")
    proposal_id = public.rsplit("/", 1)[1]

    # Propose an amendment, previewing it first.
    page.goto(f"{site.base}/workspace/forms/propose-amendment?record={proposal_id}")
    page.get_by_label("Proposed by").select_option(index=1)
    page.locator("#f-changes-0-op").select_option("replace")
    page.locator("#f-changes-0-section").select_option("s2")
    page.locator("#f-changes-0-text").fill("Audit every use, and publish the audits.")
    # The live preview appears as the official types (JS), before any button is pressed…
    page.locator("#preview ins").first.wait_for(timeout=10_000)
    assert "publish the audits" in page.locator("#preview").inner_text()
    # …and the Preview button gives the same server-side preview without it.
    page.get_by_role("button", name="Preview changes").click()
    assert page.locator(".preview ins").count() > 0
    screenshot(page, "workspace-amendment-preview")
    page.get_by_role("button", name="Propose amendment").click()
    _receipt(page)

    # Decide it, with a dissenting organisation.
    page.goto(f"{site.base}/workspace/forms/decide-amendment?record={proposal_id}")
    page.get_by_label("Amendment", exact=True).select_option("A1")
    page.get_by_label("Agreed", exact=True).check()
    page.get_by_label("Consensus banked").check()
    page.locator("input[name=dissenting_orgs]").first.check()
    screenshot(page, "workspace-decide")
    page.get_by_role("button", name="Record decision").click()
    _receipt(page)

    # Record a meeting outcome about it.
    meeting = site.meeting("on_record")
    page.goto(f"{site.base}/workspace/forms/record-outcome?record={meeting['id']}")
    page.locator("#f-items-0-kind").select_option("decision")
    page.locator("#f-items-0-text").fill("Agreed to publish the audits.")
    page.locator("#f-items-0-proposal_id").select_option(proposal_id)
    page.locator("#f-items-0-amendment_id").fill("A1")
    page.get_by_role("button", name="Record outcomes").click()
    _receipt(page)

    # Publish a document: the browser's hash, then the server's on the confirm step.
    content = b"%PDF-1.4\nThe audit paper.\n"
    digest = hashlib.sha256(content).hexdigest()
    page.goto(f"{site.base}/workspace/forms/publish")
    page.get_by_label("Title", exact=True).fill("Audit paper")
    page.get_by_label("Kind of document").select_option("policy_paper")
    page.get_by_label("Browser-tabled data proposal").check()
    page.get_by_label("Document", exact=True).set_input_files(
        {"name": "audit.pdf", "mimeType": "application/pdf", "buffer": content}
    )
    assert page.locator("[data-browser-sha256]").inner_text() == digest
    page.get_by_role("button", name="Upload and check").click()
    assert page.locator("[data-server-sha256]").inner_text() == digest
    assert page.locator(".confirm .tag-green").inner_text().lower() == "match"
    screenshot(page, "workspace-publish-confirm")
    page.get_by_role("button", name="Publish this document").click()
    _, publication = _receipt(page)

    # The public pages show it all (once the read models have it), and Verify succeeds.
    deadline = time.monotonic() + 10
    while site.get(publication)[0] != 200:
        assert time.monotonic() < deadline, "the publication never appeared"
        time.sleep(0.05)
    page.goto(site.base + publication)
    assert page.locator("h1").inner_text() == "Audit paper"
    assert digest in page.content()
    page.goto(site.base + public)
    assert page.locator("h1").inner_text() == "Browser-tabled data proposal"
    assert page.get_by_text("Share data with care.").first.is_visible()
    history = site.json(f"/proposals/{proposal_id}/history")["items"]
    assert "proposal.amendment_decided" in [h["type"] for h in history], history
    result = verify(page)
    assert VERIFIED.match(result), result
    page.goto(site.base + "/workspace")
    assert page.locator(".my-entries li").count() >= 5


def test_sign_in_and_a_form_without_javascript(sqlite_site: Site, browser: Any) -> None:
    site = sqlite_site
    token = _token(site, "recorder", "w.nojs")
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        page.goto(site.base + "/workspace/sign-in")
        page.get_by_label("Your API token").fill("olt_wrong")
        page.get_by_role("button", name="Sign in").click()
        assert "That is not a valid API token" in page.locator(".error-summary").inner_text()
        screenshot(page, "workspace-sign-in-error")
        _sign_in(page, site, token)
        # Add another section without JavaScript: the form comes back with one more row.
        page.goto(site.base + "/workspace/forms/table-proposal")
        assert page.locator(".row-group").count() == 3
        page.get_by_label("Title", exact=True).fill("No-script proposal")
        page.get_by_role("button", name="Add another section").click()
        assert page.locator(".row-group").count() == 4
        assert page.get_by_label("Title", exact=True).input_value() == "No-script proposal"
        # A whole form without JavaScript.
        page.goto(site.base + "/workspace/forms/register-organisation")
        page.get_by_label("Name").fill("No-script Society")
        page.get_by_label("Civil society").check()
        page.get_by_role("button", name="Register organisation").click()
        index, public = _receipt(page)
        screenshot(page, "workspace-receipt-nojs")
        assert public.startswith("/web/organisations/")
        entry = json.loads(site.json(f"/entries/{index}")["entry"])
        assert entry["actor"]["id"] == "w.nojs"
    finally:
        context.close()
