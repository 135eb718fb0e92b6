"""`ledger export-site DIR`: the demo exported as a static mirror, on both stores. Every page
reflects one pinned index, every internal link resolves to a file of the mirror, every
document has the SHA-256 the log records, MANIFEST.json and SHA256SUMS match the files; the
mirror served by a plain static file server under a sub-path works in Chromium, and Verify
checks the pages against the mirror's own tiles (and fails, saying why, when a tile or an
entry bundle is changed)."""

from __future__ import annotations

import base64
import functools
import hashlib
import html.parser
import json
import posixpath
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from api.static_site import ExportError, SiteExport, _Mirror, export_site
from api.web import STATIC_DIR
from ledger.audit import encode_bundle, hash_leaf, tile_path, tile_width
from ledger.cli import main
from ledger.merkle import inclusion_proof, root_from_leaf_hashes
from tests.conftest import BACKENDS
from tests.web.conftest import Site, screenshot

VERIFIED = re.compile(r"^✓?\s*Verified: \d+ entr(y is|ies are) in the log signed by ")
SUB_PATH = "archive/open-policy-ledger"


@dataclass
class Mirror:
    site: Site
    directory: Path
    result: SiteExport

    def files(self, pattern: str = "*") -> list[Path]:
        return sorted(p for p in self.directory.rglob(pattern) if p.is_file())

    def text(self, name: str) -> str:
        return (self.directory / name).read_text()


@pytest.fixture(scope="session")
def mirrors(
    sites: Callable[[str], Site], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Mirror]:
    """Export (once per session and backend, on first use) the demo site as a mirror, into
    ``<www>/archive/open-policy-ledger`` so that it can be served under a sub-path."""
    made: dict[str, Mirror] = {}

    def mirror_for(kind: str) -> Mirror:
        if kind not in made:
            site = sites(kind)
            directory = tmp_path_factory.mktemp(f"mirror-{kind}") / SUB_PATH
            made[kind] = Mirror(site, directory, export_site(site.store.settings, directory))
        return made[kind]

    return mirror_for


@pytest.fixture(params=BACKENDS)
def mirror(request: pytest.FixtureRequest, mirrors: Callable[[str], Mirror]) -> Mirror:
    return mirrors(request.param)


@pytest.fixture
def sqlite_mirror(mirrors: Callable[[str], Mirror]) -> Mirror:
    return mirrors("sqlite")


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "action") and value is not None:
                self.links.append(value)


def _links(path: Path) -> list[str]:
    if path.suffix == ".atom":
        return re.findall(r'href="([^"]*)"', path.read_text())
    parser = _Links()
    parser.feed(path.read_text())
    return parser.links


# The export --------------------------------------------------------------------------------


def test_export_holds_the_whole_public_record(mirror: Mirror) -> None:
    site, result, d = mirror.site, mirror.result, mirror.directory
    assert result.missing == []
    assert result.size == site.last + 1
    assert result.log_name == "ledger.test.example/open-policy"
    assert mirror.text("checkpoint").split("\n")[1] == str(result.size)
    assert mirror.text("public-key").strip() == site.get("/public-key")[2].decode().strip()
    for name in ("index.html", "README.html", "web/proposals.html", "web/meetings.html"):
        assert (d / name).is_file(), name
    for name in ("web/publications.html", "web/organisations.html", "web/audit.html"):
        assert (d / name).is_file(), name
    for name in ("static/site.css", "static/verify.js", "feeds/log.atom", "tile/entries"):
        assert (d / name).exists(), name
    for proposal in site.proposals:
        base = d / "web/proposals" / proposal["id"]
        assert base.with_suffix(".html").is_file()
        assert (base / "history.html").is_file()
        assert (d / "feeds/proposals" / f"{proposal['id']}.atom").is_file()
        for version in range(2, proposal["text_version"] + 1):  # consecutive pairs only
            assert (base / f"compare--from-{version - 1}_to-{version}.html").is_file()
        assert not (base / "compare--from-1_to-3.html").exists()
    for meeting in site.meetings:
        assert (d / "web/meetings" / f"{meeting['id']}.html").is_file()
    for publication in site.publications:
        assert (d / "web/publications" / f"{publication['id']}.html").is_file()
    for organisation in site.organisations:
        assert (d / "web/organisations" / f"{organisation['id']}.html").is_file()
    assert len(mirror.files("*.html")) == result.pages
    assert result.files == len(mirror.files())
    assert result.bytes == sum(p.stat().st_size for p in mirror.files())


def test_every_page_reflects_the_one_pinned_index(mirror: Mirror) -> None:
    at = mirror.result.size - 1
    pages = [p for p in mirror.files("*.html") if p.name != "README.html"]
    for page in pages:
        text = page.read_text()
        assert f'<main id="main" tabindex="-1" data-log-index="{at}">' in text, page
        assert '<meta name="ledger-static-mirror"' in text, page
        assert "Static mirror" in text, page
        assert "Past record" not in text, page
        assert "See the latest record" not in text, page
        assert "mirror.invalid" not in text, page
    for feed in mirror.files("*.atom"):
        assert "mirror.invalid" not in feed.read_text(), feed


def test_every_internal_link_resolves_to_a_file_of_the_mirror(mirror: Mirror) -> None:
    root = mirror.directory
    checked = 0
    for path in [*mirror.files("*.html"), *mirror.files("*.atom")]:
        for link in _links(path):
            parts = urlsplit(link)
            if parts.scheme in ("http", "https", "data", "mailto") or link.startswith("#"):
                assert parts.scheme != "http" or "mirror.invalid" not in link, (path, link)
                continue
            assert not link.startswith("/"), (path, link)  # would break under a sub-path
            assert not parts.query, (path, link)  # a static server ignores queries
            relative = path.parent.relative_to(root).as_posix()
            target = posixpath.normpath(posixpath.join(relative, unquote(parts.path)))
            assert not target.startswith(".."), (path, link)
            assert (root / target).is_file(), (path.relative_to(root), link)
            checked += 1
    assert checked > 1000


def test_forms_that_need_the_service_are_marked_unavailable(mirror: Mirror) -> None:
    for path in mirror.files("*.html"):
        assert 'method="get"' not in path.read_text(), path
    proposals = mirror.text("web/proposals.html")
    assert "Searching needs the live service, so it is not available in this static" in proposals
    assert '<a href="proposals--status-draft.html">Draft</a>' in proposals  # a choice: a page
    assert "Comparing any two versions needs the live service" in mirror.text(
        f"web/proposals/{mirror.site.gateway['id']}/compare.html"
    )
    for strand in {p["strand_id"] for p in mirror.site.proposals}:
        assert (mirror.directory / f"web/proposals--strand-{strand}.html").is_file()
        assert (mirror.directory / f"web/meetings--strand-{strand}.html").is_file()
    department = mirror.text("web/organisations--kind-department.html")
    for organisation in mirror.site.organisations:
        listed = f'href="organisations/{organisation["id"]}.html"' in department
        assert listed == (organisation["org_kind"] == "department"), organisation
    readme = mirror.text("README.html")
    assert 'id="not-in-mirror"' in readme
    key = mirror.text("public-key").strip()
    assert f"ledger audit &lt;this mirror&#x27;s URL or directory&gt; --key {key}" in readme
    assert mirror.text("checkpoint") in readme.replace("&#x27;", "'").replace("&quot;", '"')


def test_every_published_document_is_mirrored_with_its_recorded_hash(mirror: Mirror) -> None:
    published = [p for p in mirror.site.publications if p["sha256"] and p["state"] != "withdrawn"]
    assert published
    documents = mirror.files("documents/*")
    assert len(documents) == len(published) == mirror.result.documents
    by_name = {p.name: p for p in documents}
    for publication in published:
        (name,) = [n for n in by_name if n.startswith(f"{publication['id']}-")]
        body = by_name[name].read_bytes()
        assert hashlib.sha256(body).hexdigest() == publication["sha256"]
        assert mirror.site.summary.documents[publication["sha256"]] == body
        page = mirror.text(f"web/publications/{publication['id']}.html")
        assert f'href="../../documents/{name}"' in page


def test_manifest_and_sha256sums_list_every_file(mirror: Mirror) -> None:
    root = mirror.directory
    manifest = json.loads(mirror.text("MANIFEST.json"))
    listed = manifest["files"]
    on_disk = {
        p.relative_to(root).as_posix()
        for p in mirror.files()
        if p.name not in ("MANIFEST.json", "SHA256SUMS")
    }
    assert set(listed) == on_disk
    for name, info in listed.items():
        body = (root / name).read_bytes()
        assert info == {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}, name
    sums: dict[str, str] = {}
    for line in mirror.text("SHA256SUMS").splitlines():
        digest, name = line.split("  ", 1)
        sums[name] = digest
    assert sums == {name: info["sha256"] for name, info in listed.items()}
    assert manifest["checkpoint"]["size"] == mirror.result.size
    assert manifest["checkpoint"]["note"] == mirror.text("checkpoint")
    assert manifest["log"] == mirror.result.log_name


def test_entry_answers_match_the_service(sqlite_mirror: Mirror) -> None:
    site = sqlite_mirror.site
    answers = sqlite_mirror.files("entries/*.json")
    assert answers
    for path in answers[:20]:
        assert json.loads(path.read_text()) == site.json(
            f"/entries/{path.stem}?size={sqlite_mirror.result.size}"
        )


def test_re_export_rewrites_only_what_changed(sqlite_mirror: Mirror) -> None:
    before = {p: p.read_bytes() for p in sqlite_mirror.files()}
    again = export_site(sqlite_mirror.site.store.settings, sqlite_mirror.directory)
    assert again.missing == []
    assert again.written == 1  # MANIFEST.json: its export time
    assert again.files == len(before)
    after = {p: p.read_bytes() for p in sqlite_mirror.files()}
    assert {p for p in before if before[p] != after[p]} == {
        sqlite_mirror.directory / "MANIFEST.json"
    }


def test_cli_export_site(sqlite_site: Site, tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    settings = sqlite_site.store.settings
    monkeypatch.setenv("LEDGER_SIGNING_KEY_FILE", str(settings.signing_key_file))
    monkeypatch.setenv("LEDGER_LOG_NAME", settings.log_name)
    target = tmp_path / "site"
    assert main(["export-site", str(target), "--data-dir", str(settings.data_dir)]) == 0
    out = capsys.readouterr().out
    assert f"checkpoint size {sqlite_site.last + 1}" in out
    assert (target / "index.html").is_file()
    assert (target / "MANIFEST.json").is_file()
    assert main(["export-site", str(target), "--quiet", "--data-dir", str(settings.data_dir)]) == 0
    assert capsys.readouterr().out == ""


def test_ledger_audit_audits_the_mirror_from_its_url(
    sqlite_mirror: Mirror, tmp_path: Path, capsys: Any
) -> None:
    """README.html's promise: `ledger audit <mirror URL>` audits the whole log from the
    mirror's tiles, served by a plain static server under a sub-path."""
    key = sqlite_mirror.text("public-key").strip()
    state = tmp_path / "audit.state"
    with _serve(sqlite_mirror.directory.parents[1]) as base:
        status = main(["audit", f"{base}/{SUB_PATH}/", "--key", key, "--state", str(state)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert f"grew from 0 to {sqlite_mirror.result.size} entries" in out


def test_a_document_with_another_hash_is_refused(tmp_path: Path) -> None:
    class Answer:
        def __init__(self, body: Any, status: int = 200) -> None:
            self.status_code = status
            self.content = body if isinstance(body, bytes) else b""
            self.body = body
            self.headers = {"content-type": "text/plain"}

        def json(self) -> Any:
            return self.body

    recorded = hashlib.sha256(b"the published bytes").hexdigest()

    class Client:
        def get(self, path: str, params: Any = None) -> Answer:
            if path.endswith("/document"):
                return Answer(b"other bytes")
            return Answer({"sha256": recorded, "state": "published", "media_type": "text/plain"})

    result = SiteExport(tmp_path, "log", 10, "root")
    with pytest.raises(ExportError, match="refusing to mirror it"):
        _Mirror(Client(), tmp_path, result, None).document("pub-1")
    assert not (tmp_path / "documents").exists()


# The mirror in a browser -------------------------------------------------------------------


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _serve(www: Path) -> Iterator[str]:
    """A plain static file server for ``www`` on 127.0.0.1 (an ephemeral port)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _verify(page: Any) -> str:
    page.get_by_role("button", name="Verify", exact=True).click()
    result = page.locator("[data-verify-result].is-ok, [data-verify-result].is-failed")
    result.wait_for()
    return str(result.inner_text())


def test_mirror_in_a_browser_under_a_sub_path(sqlite_mirror: Mirror, page: Any) -> None:
    """Home → proposals → a proposal → its history, from a plain static server under a
    sub-path; Verify succeeds from the mirror's tiles, with no API behind it."""
    site, gateway = sqlite_mirror.site, sqlite_mirror.site.gateway
    www = sqlite_mirror.directory.parents[1]
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    with _serve(www) as base:
        page.goto(f"{base}/{SUB_PATH}/")
        assert page.locator("h1").inner_text() == "Data sharing open policy process"
        assert page.get_by_text("Static mirror", exact=True).is_visible()
        screenshot(page, "mirror-home")
        page.get_by_role("link", name="Proposals", exact=True).first.click()
        page.wait_for_url(re.compile(r"/web/proposals\.html$"))
        page.get_by_role("link", name=gateway["title"]).first.click()
        page.wait_for_url(re.compile(rf"/web/proposals/{gateway['id']}\.html$"))
        assert page.locator("h1").inner_text() == gateway["title"]
        result = _verify(page)
        assert VERIFIED.match(result), result
        page.get_by_role("link", name="History of this proposal").click()
        page.wait_for_url(re.compile(rf"/web/proposals/{gateway['id']}/history\.html$"))
        result = _verify(page)
        assert VERIFIED.match(result), result
        history = site.json(f"/proposals/{gateway['id']}/history")["items"]
        assert (
            f"The mirror's list of this proposal's entries runs from version 1 to {len(history)}"
            in result
        )
        assert f"checkpoint size {sqlite_mirror.result.size}" in result
        assert "facts shown on this page follow from them" in result
        assert "computed in your browser from the mirror's hash tiles" in page.inner_text(
            "[data-verify-details]"
        )
        screenshot(page, "mirror-verified", around=".verify")
        page.get_by_role("link", name="About this mirror").first.click()
        page.wait_for_url(re.compile(r"/README\.html$"))
        assert "ledger audit" in page.inner_text("main")
    paths = {urlsplit(url).path for url in requests}
    assert all(p.startswith(f"/{SUB_PATH}/") for p in paths), paths
    assert any("/tile/entries/" in p for p in paths)
    assert any("/tile/0/" in p for p in paths)
    assert any(p.endswith(f"/subjects/{gateway['id']}.json") for p in paths)
    assert not any("/entries/" in p and p.endswith(".json") for p in paths)


def _tamper_bundle(directory: Path, index: int) -> None:
    """Change one byte inside entry ``index`` of its entry bundle."""
    (bundle,) = [p for p in directory.glob("tile/entries/**/*") if p.is_file()]
    data = bytearray(bundle.read_bytes())
    at = 0
    for _ in range(index):
        at += 2 + int.from_bytes(data[at : at + 2], "big")
    length = int.from_bytes(data[at : at + 2], "big")
    entry = bytes(data[at + 2 : at + 2 + length])
    where = at + 2 + entry.index(b'"type":"') + len(b'"type":"')
    data[where] = ord("X") if data[where] != ord("X") else ord("Y")
    bundle.write_bytes(bytes(data))


def _tamper_tile(directory: Path, index: int) -> None:
    """Change one byte of another leaf's hash in the level-0 hash tile."""
    (tile,) = [p for p in directory.glob("tile/0/**/*") if p.is_file()]
    data = bytearray(tile.read_bytes())
    other = index + 1 if (index + 1) * 32 < len(data) else index - 1
    data[other * 32] ^= 0x01
    tile.write_bytes(bytes(data))


@pytest.mark.parametrize("fault", ["entry bundle", "hash tile"])
def test_verify_fails_on_a_tampered_mirror(
    sqlite_mirror: Mirror, page: Any, tmp_path: Path, fault: str
) -> None:
    gateway = sqlite_mirror.site.gateway
    copy = tmp_path / "www" / "copy"
    shutil.copytree(sqlite_mirror.directory, copy)
    history = copy / "web/proposals" / gateway["id"] / "history.html"
    indexes = re.search(r'data-indexes="([\d ]+)"', history.read_text())
    assert indexes is not None
    index = int(indexes.group(1).split()[-1])
    if fault == "entry bundle":
        _tamper_bundle(copy, index)
    else:
        _tamper_tile(copy, index)
    with _serve(tmp_path / "www") as base:
        page.goto(f"{base}/copy/web/proposals/{gateway['id']}/history.html")
        result = _verify(page)
    assert result.startswith("Verification failed: entry "), result
    assert "do not lead to the root signed in the checkpoint" in result, result


def test_verify_fails_when_the_mirror_leaves_out_an_entry_of_a_record(
    sqlite_mirror: Mirror, page: Any, tmp_path: Path
) -> None:
    """The mirror's per-record list is not trusted: an entry left out of it (or a whole page
    made up of a record's earlier state) shows as a missing version."""
    gateway = sqlite_mirror.site.gateway
    copy = tmp_path / "www" / "copy"
    shutil.copytree(sqlite_mirror.directory, copy)
    listed = copy / "subjects" / f"{gateway['id']}.json"
    body = json.loads(listed.read_text())
    del body["indexes"][1]
    listed.write_text(json.dumps(body))
    with _serve(tmp_path / "www") as base:
        page.goto(f"{base}/copy/web/proposals/{gateway['id']}.html")
        result = _verify(page)
    assert result.startswith("Verification failed: "), result
    assert f"version 2 of record {gateway['id']} is missing" in result, result


def test_proofs_computed_from_tiles_in_the_browser_match_rfc_9162(
    page: Any, tmp_path: Path
) -> None:
    """verify.js's TileReader, over tiles of a synthetic log big enough for hash tiles at
    levels 0, 1 and 2 (full and partial), computes the same roots, inclusion proofs and
    entries as ledger.merkle, at several tree sizes."""
    sizes = [1, 2, 255, 256, 257, 600, 65536, 70001]
    leaves = [f"entry {i}".encode() for i in range(max(sizes))]
    leaf_hashes = [hash_leaf(e) for e in leaves]
    level1 = [root_from_leaf_hashes(leaf_hashes[i : i + 256]) for i in range(0, 70000, 256)]
    level1 = level1[: len(leaf_hashes) >> 8]
    level2 = [root_from_leaf_hashes(level1[0:256])]
    www = tmp_path / "www"
    for size in sizes:
        for level, hashes in ((0, leaf_hashes), (1, level1), (2, level2)):
            for index in range(-(-(size >> (8 * level)) // 256)):
                width = tile_width(level, index, size)
                path = www / tile_path(level, index, width)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"".join(hashes[index * 256 : index * 256 + width]))
        for index in range(-(-size // 256)):
            width = tile_width(None, index, size)
            path = www / tile_path(None, index, width)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode_bundle(leaves[index * 256 : index * 256 + width]))
    (www / "static").mkdir()
    shutil.copy(STATIC_DIR / "verify.js", www / "static" / "verify.js")
    (www / "index.html").write_text('<!doctype html><script src="static/verify.js"></script>')
    cases = {
        size: sorted({i for i in (0, 1, 255, 256, 511, 65535, size // 2, size - 1) if i < size})
        for size in sizes
    }
    script = """async (cases) => {
      const b64 = (bytes) => btoa(String.fromCharCode(...bytes));
      const root = new URL("./", location.href).href;
      const out = {};
      for (const [size, indexes] of Object.entries(cases)) {
        const tiles = new OpenPolicyLedger.TileReader(root, Number(size));
        const proofs = {};
        for (const i of indexes) {
          proofs[i] = {
            proof: (await tiles.path(i, 0, Number(size))).map(b64),
            entry: new TextDecoder().decode(await tiles.entry(i)),
          };
        }
        out[size] = { root: b64(await tiles.subtree(0, Number(size))), proofs: proofs };
      }
      return out;
    }"""
    with _serve(www) as base:
        page.goto(f"{base}/index.html")
        found = page.evaluate(script, {str(k): v for k, v in cases.items()})
    for size, indexes in cases.items():
        got = found[str(size)]
        assert got["root"] == _b64(root_from_leaf_hashes(leaf_hashes[:size])), size
        for index in indexes:
            expected = [_b64(h) for h in inclusion_proof(index, leaf_hashes[:size])]
            assert got["proofs"][str(index)]["proof"] == expected, (size, index)
            assert got["proofs"][str(index)]["entry"] == f"entry {index}", (size, index)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
