"""The website in a real browser (Debian's Chromium via Playwright) against a real
`ledger serve`: browsing, searching, history and comparison, in-browser verification that
succeeds on an honest server and fails, naming what failed, when one byte served is
changed; the file-hash check; pages without JavaScript; keyboard use. Screenshots of the key
pages go to tests/web/screenshots/."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.web.conftest import Site, screenshot

VERIFIED = re.compile(r"^✓?\s*Verified: \d+ entr(y is|ies are) in the log signed by ")


def verify(page: Any) -> str:
    """Press Verify and wait for the result; returns its text."""
    page.get_by_role("button", name="Verify", exact=True).click()
    result = page.locator("[data-verify-result].is-ok, [data-verify-result].is-failed")
    result.wait_for()
    return str(result.inner_text())


def test_browse_home_strand_proposal_and_verify(site: Site, page: Any) -> None:
    """Home → a strand → a proposal; its current text is there and Verify succeeds."""
    gateway = site.gateway
    page.goto(site.base + "/")
    assert page.locator("h1").inner_text() == "Data sharing open policy process"
    assert page.get_by_text(f"entry {site.last}", exact=True).is_visible()
    screenshot(page, f"home-{site.kind}")
    page.get_by_role("link", name="Tailored public services", exact=True).first.click()
    page.wait_for_url(re.compile(r"/web/strands/"))
    assert page.locator("h1").inner_text() == "Tailored public services"
    page.get_by_role("link", name=gateway["title"]).click()
    page.wait_for_url(re.compile(r"/web/proposals/[^/]+$"))
    assert page.locator("h1").inner_text() == gateway["title"]
    current = site.json(f"/proposals/{gateway['id']}")
    for section in current["sections"]:
        assert page.get_by_text(section["text"], exact=True).is_visible()
    screenshot(page, f"proposal-{site.kind}")
    result = verify(page)
    assert VERIFIED.match(result), result
    history = site.json(f"/proposals/{gateway['id']}/history")["items"]
    assert (
        f"list of this proposal's entries runs from version 1 to {len(history)} with no gap"
        in result
    )
    assert "ledger.test.example/open-policy (key " in result
    assert f"checkpoint size {site.last + 1}" in result
    assert "facts shown on this page follow from them" in result
    screenshot(page, f"verify-success-{site.kind}", around=".verify")


def test_search_and_filter(sqlite_site: Site, page: Any) -> None:
    site = sqlite_site
    page.goto(site.base + "/")
    page.get_by_label("Find a proposal").fill("gateway")
    page.get_by_role("button", name="Search proposals").click()
    page.wait_for_url(re.compile(r"/web/proposals\?q=gateway"))
    results = page.locator(".results > li h3")
    assert site.gateway["title"] in results.all_inner_texts()
    assert page.locator(".results mark").count() > 0
    # Filter by strand and status with the form.
    page.get_by_label("Search proposals").fill("")
    page.get_by_label("Strand").select_option("research-statistics")
    page.get_by_label("Status").select_option("enacted")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"strand=research-statistics"))
    titles = page.locator(".results > li h3").all_inner_texts()
    expected = [
        p["title"]
        for p in site.proposals
        if p["strand_id"] == "research-statistics" and p["status"] == "enacted"
    ]
    assert titles == expected
    # The site-wide search box.
    page.get_by_label("Search the record").first.fill("wellbeing")
    page.get_by_label("Search the record").first.press("Enter")
    page.wait_for_url(re.compile(r"/web/search\?q=wellbeing"))
    assert page.locator(".results > li").count() > 0


def test_history_compare_and_verify(sqlite_site: Site, page: Any) -> None:
    """Every version with its provenance and diff; comparing any two; Verify on both."""
    site = sqlite_site
    gateway = site.gateway
    versions = site.json(f"/proposals/{gateway['id']}/versions")["items"]
    page.goto(f"{site.base}/web/proposals/{gateway['id']}")
    page.get_by_role("link", name="History of this proposal").click()
    page.wait_for_url(re.compile(r"/history$"))
    for version in versions:
        assert page.locator(f"#version-{version['text_version']}").is_visible()
    assert page.locator("#version-2 ins").count() > 0
    assert page.locator("#version-2 del").count() > 0
    assert page.locator("#version-2").get_by_text("Dissenting:").count() > 0
    page.locator("#version-2").scroll_into_view_if_needed()
    screenshot(page, "history")
    result = verify(page)
    assert VERIFIED.match(result), result
    # Compare version 1 with the latest using the form.
    page.goto(f"{site.base}/web/proposals/{gateway['id']}/compare")
    page.get_by_label("From version").select_option("1")
    page.get_by_label("To version").select_option(str(len(versions)))
    page.get_by_role("button", name="Compare", exact=True).click()
    page.wait_for_url(re.compile(rf"from=1&to={len(versions)}"))
    assert page.locator(".diff ins").count() > 0
    assert page.locator(".diff del").count() > 0
    assert page.locator(".diff-section").count() == len(versions[-1]["sections"])
    screenshot(page, "compare")
    result = verify(page)
    assert VERIFIED.match(result), result


def test_meeting_publication_and_audit_pages_verify(sqlite_site: Site, page: Any) -> None:
    site = sqlite_site
    on_record = site.meeting("on_record")
    page.goto(f"{site.base}/web/meetings/{on_record['id']}")
    assert VERIFIED.match(verify(page))
    screenshot(page, "meeting")
    chatham = site.meeting("chatham_house")
    page.goto(f"{site.base}/web/meetings/{chatham['id']}")
    assert VERIFIED.match(verify(page))
    screenshot(page, "meeting-chatham-house")
    for state in ("superseded", "withdrawn", "published"):
        publication = site.publication(state)
        page.goto(f"{site.base}/web/publications/{publication['id']}")
        result = verify(page)
        assert VERIFIED.match(result), (state, result)
    screenshot(page, "publication")
    page.goto(f"{site.base}/web/audit")
    assert page.locator("pre").first.inner_text().startswith("ledger.test.example/open-policy\n")
    assert VERIFIED.match(verify(page))
    screenshot(page, "audit")


# Faults: one byte changed on the way ------------------------------------------------------


def _flip_base64(text: str, at: int) -> str:
    """``text`` with the base64 character at ``at`` changed (still valid base64)."""
    char = text[at]
    return text[:at] + ("B" if char == "A" else "A") + text[at + 1 :]


def _tamper_entry(body: dict[str, Any]) -> None:
    entry = body["entry"]
    at = entry.index('"time":"') + len('"time":"') + 3  # a digit of the year
    body["entry"] = entry[:at] + ("1" if entry[at] != "1" else "2") + entry[at + 1 :]


def _tamper_proof(body: dict[str, Any]) -> None:
    body["inclusion_proof"][-1] = _flip_base64(body["inclusion_proof"][-1], 5)


def _tamper_signature(body: dict[str, Any]) -> None:
    text, _, signatures = body["checkpoint"].rpartition("\n\n")
    first, _, rest = signatures.partition("\n")
    prefix, _, signature = first.rpartition(" ")
    body["checkpoint"] = f"{text}\n\n{prefix} {_flip_base64(signature, 20)}\n{rest}"


def _tamper_root(body: dict[str, Any]) -> None:
    text, _, signatures = body["checkpoint"].rpartition("\n\n")
    origin, size, root = text.split("\n")[:3]
    body["checkpoint"] = f"{origin}\n{size}\n{_flip_base64(root, 7)}\n\n{signatures}"


FAULTS = {
    "entry": (_tamper_entry, "do not lead to the root signed in the checkpoint"),
    "proof": (_tamper_proof, "do not lead to the root signed in the checkpoint"),
    "signature": (_tamper_signature, "signature does not verify with the log's key"),
    "root": (_tamper_root, "signature does not verify with the log's key"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_verify_fails_when_a_served_byte_changes(sqlite_site: Site, page: Any, fault: str) -> None:
    """Tamper one entry of the record's answer in flight (Playwright route): Verify names
    the failure."""
    site = sqlite_site
    gateway = site.gateway
    target = gateway["tabled_index"] + 1
    tamper, expected = FAULTS[fault]
    hits: list[str] = []

    def handle(route: Any) -> None:
        response = route.fetch()
        body = json.loads(response.text())
        for item in body["entries"]:
            if item["index"] == target:
                one = {**item, "checkpoint": body["checkpoint"]}
                tamper(one)
                item["entry"], item["inclusion_proof"] = one["entry"], one["inclusion_proof"]
                body["checkpoint"] = one["checkpoint"]
                hits.append(route.request.url)
        route.fulfill(response=response, body=json.dumps(body))

    page.route(lambda url: urlsplit(url).path == f"/subjects/{gateway['id']}/entries", handle)
    page.goto(f"{site.base}/web/proposals/{gateway['id']}/history")
    result = verify(page)
    assert hits, "the tampered entry was never fetched"
    assert result.startswith("✗") or result.startswith("Verification failed"), result
    assert "Verification failed: " in result
    assert expected in result, result
    if fault in ("entry", "proof"):
        assert f"entry {target}" in result
    if fault == "entry":
        screenshot(page, "verify-failure", around=".verify")


def test_verify_fails_when_the_page_misrepresents_an_entry(sqlite_site: Site, page: Any) -> None:
    """The page's own text is checked too: change what it shows, and Verify says so."""
    site = sqlite_site
    gateway = site.gateway
    page.goto(f"{site.base}/web/proposals/{gateway['id']}")
    page.locator("#section-purpose p").evaluate("p => { p.textContent = 'Share everything.'; }")
    result = verify(page)
    assert "Verification failed" in result
    assert "the page shows “section.purpose.text” as “Share everything.” but the log's" in result


def test_verify_with_a_key_the_reader_trusts(sqlite_site: Site, page: Any) -> None:
    """A pasted key is used instead of the page's: the right one verifies, another fails."""
    site = sqlite_site
    publication = site.publication("published")
    _, _, vkey = site.get("/public-key")
    page.goto(f"{site.base}/web/publications/{publication['id']}")
    page.get_by_label("The log's public key you trust").fill(vkey.decode().strip())
    assert VERIFIED.match(verify(page))
    name, key_id, _ = vkey.decode().strip().split("+", 2)
    other = base64.b64encode(b"\x01" + bytes(32)).decode()
    page.get_by_label("The log's public key you trust").fill(f"{name}+{key_id}+{other}")
    result = verify(page)
    assert "Verification failed: the key's id does not match its name and key" in result


# The file check ------------------------------------------------------------------------------


def test_file_hash_check(sqlite_site: Site, page: Any, tmp_path: Path) -> None:
    """Pick the downloaded document: it matches; change one byte: it does not."""
    site = sqlite_site
    publication = site.publication("published")
    _, _, document = site.get(f"/publications/{publication['id']}/document")
    good = tmp_path / "document.md"
    good.write_bytes(document)
    bad = tmp_path / "altered.md"
    bad.write_bytes(document[:-1] + bytes([document[-1] ^ 1]))
    page.goto(f"{site.base}/web/publications/{publication['id']}")
    chooser = page.get_by_label("Choose the file to check")
    chooser.set_input_files(str(good))
    result = page.locator("[data-file-result].is-ok")
    result.wait_for()
    assert result.inner_text().endswith(
        f"Matches: document.md has the SHA-256 recorded in the log ({publication['sha256']})."
    )
    page.locator("#check-copy").scroll_into_view_if_needed()
    screenshot(page, "publication-file-check")
    chooser.set_input_files(str(bad))
    result = page.locator("[data-file-result].is-failed")
    result.wait_for()
    assert "Does not match: altered.md has SHA-256 " in result.inner_text()
    assert f"but the log records {publication['sha256']}" in result.inner_text()


# Without JavaScript, and by keyboard ---------------------------------------------------------


def test_pages_work_without_javascript(sqlite_site: Site, browser: Any) -> None:
    """With scripts off every page shows its content and every form still works; the
    controls that need scripts stay hidden."""
    site = sqlite_site
    gateway = site.gateway
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    try:
        page = context.new_page()
        page.goto(f"{site.base}/web/proposals/{gateway['id']}")
        current = site.json(f"/proposals/{gateway['id']}")
        for section in current["sections"]:
            assert page.get_by_text(section["text"], exact=True).is_visible()
        assert not page.get_by_role("button", name="Verify", exact=True).is_visible()
        assert page.get_by_text("The entries behind this page").is_visible()
        # Forms are plain GET forms.
        page.goto(site.base + "/web/proposals")
        page.get_by_label("Search proposals").fill("accredited")
        page.get_by_label("Search proposals").press("Enter")
        page.wait_for_url(re.compile(r"q=accredited"))
        assert page.locator(".results > li").count() >= 1
        page.goto(f"{site.base}/web/proposals/{gateway['id']}/compare")
        page.get_by_label("From version").select_option("2")
        page.get_by_role("button", name="Compare", exact=True).click()
        page.wait_for_url(re.compile(r"from=2"))
        assert page.locator(".diff ins").count() > 0
        page.goto(site.base + "/")
        page.get_by_label("Show the record as it stood at").fill("100")
        page.get_by_role("button", name="Show").click()
        page.wait_for_url(re.compile(r"as_of=100"))
        assert page.locator("main").get_attribute("data-log-index") == "100"
        publication = site.publication("published")
        page.goto(f"{site.base}/web/publications/{publication['id']}")
        assert not page.get_by_label("Choose the file to check").is_visible()
        assert page.get_by_text(publication["sha256"]).first.is_visible()
        screenshot(page, "publication-no-javascript")
    finally:
        context.close()


def test_keyboard_and_small_screens(sqlite_site: Site, browser: Any) -> None:
    """The first Tab reaches the skip link, which moves focus to the content; on a phone-sized
    screen nothing is wider than the screen."""
    site = sqlite_site
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(f"{site.base}/web/proposals/{site.gateway['id']}/history")
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.className")
        assert focused == "skip-link"
        assert page.locator(".skip-link").is_visible()
        page.keyboard.press("Enter")
        assert page.evaluate("location.hash") == "#main"
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        screenshot(page, "history-mobile")
        page.goto(site.base + "/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "home-mobile")
    finally:
        context.close()


# The verifier's own algorithms, against the specification -----------------------------------------

VERIFYING = Path(__file__).resolve().parents[2] / "docs" / "VERIFYING.md"


def _example(name: str) -> str:
    """A fenced block of docs/VERIFYING.md's worked example, as marked there."""
    text = VERIFYING.read_text(encoding="utf-8")
    match = re.search(rf"<!-- example:{name} -->\s*```[a-z]*\n(.*?)```", text, re.S)
    assert match, name
    return match.group(1)


def test_verifier_follows_the_worked_example(sqlite_site: Site, page: Any) -> None:
    """verify.js checks the worked example of docs/VERIFYING.md: the log's signature, the
    witness's cosignature/v1, the Merkle root and an inclusion proof; and rejects a forged
    cosignature."""
    page.goto(sqlite_site.base + "/web/audit")
    example = {
        "vkey": _example("vkey").strip(),
        "wkey": _example("witness-vkey").strip(),
        "note": _example("note"),
        "entries": _example("entries").splitlines(),
    }
    result = page.evaluate(
        """async (x) => {
          const api = window.OpenPolicyLedger;
          const log = await api.parseVerifierKey(x.vkey, 1);
          const witness = await api.parseVerifierKey(x.wkey, 4);
          const checkpoint = await api.verifyCheckpoint(x.note, log, [witness]);
          const enc = new TextEncoder();
          const leaves = [];
          for (const e of x.entries) leaves.push(await api.hashLeaf(enc.encode(e)));
          const root = await api.rootFromInclusionProof(leaves[0], 0, 3, [leaves[1], leaves[2]]);
          const hex = (b) => Array.from(b, (v) => v.toString(16).padStart(2, "0")).join("");
          let forged = "";
          try {
            const bad = x.note.replace(/(w1 [A-Za-z0-9+/]{20})([A-Za-z])/, (m, a, c) =>
              a + (c === "A" ? "B" : "A"));
            await api.verifyCheckpoint(bad, log, [witness]);
          } catch (error) { forged = error.message; }
          return {
            origin: checkpoint.origin, size: checkpoint.size, root: hex(checkpoint.root),
            cosigned: checkpoint.cosigned, proved: hex(root), keyId: log.idHex, forged,
          };
        }""",
        example,
    )
    root = "fa2f4ac8aa3f072c4abbca70be18600ad620ad1d2b46d3115b8bd68475288a4e"
    assert result == {
        "origin": "example.gov.uk/open-policy",
        "size": 3,
        "root": root,
        "cosigned": ["witness.example.org/w1"],
        "proved": root,
        "keyId": "240a4cd2",
        "forged": "the cosignature of witness witness.example.org/w1 does not verify",
    }


def test_inclusion_proofs_agree_with_the_python_merkle_tree(sqlite_site: Site, page: Any) -> None:
    """RFC 9162 §2.1.3.2 in JavaScript gives the same root as ledger.merkle for every leaf
    of every tree up to 70 leaves, and rejects a wrong index."""
    from ledger import merkle

    leaves = [merkle.hash_leaf(f"entry {i}".encode()) for i in range(70)]
    cases = []
    for size in range(1, 71):
        root = merkle.root_from_leaf_hashes(leaves[:size])
        for index in range(size):
            proof = merkle.inclusion_proof(index, leaves[:size])
            cases.append([index, size, [p.hex() for p in proof], leaves[index].hex(), root.hex()])
    page.goto(sqlite_site.base + "/web/audit")
    failures = page.evaluate(
        """async (cases) => {
          const api = window.OpenPolicyLedger;
          const bytes = (h) => Uint8Array.from(h.match(/../g), (b) => parseInt(b, 16));
          const hex = (b) => Array.from(b, (v) => v.toString(16).padStart(2, "0")).join("");
          const failures = [];
          for (const [index, size, proof, leaf, root] of cases) {
            const path = proof.map(bytes);
            const got = await api.rootFromInclusionProof(bytes(leaf), index, size, path);
            if (hex(got) !== root) failures.push([index, size]);
            if (size > 2 && index + 1 < size) {
              let other = "";
              try {
                const moved = await api.rootFromInclusionProof(bytes(leaf), index + 1, size, path);
                other = hex(moved);
              } catch (error) { other = "refused"; }
              if (other === root) failures.push(["accepted a wrong index", index, size]);
            }
          }
          return failures;
        }""",
        cases,
    )
    assert len(cases) == 70 * 71 // 2
    assert failures == []
