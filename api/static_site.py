"""`ledger export-site DIR`: a complete, verifiable static mirror of the public record.

The mirror is a directory any plain static file server can host, at any path prefix:

* ``checkpoint`` and ``tile/...``: the log as C2SP tlog-tiles (``ledger.tiles.export_tiles``),
  so ``ledger audit <mirror URL>`` can audit the whole log from the mirror alone;
* ``public-key``: the log's verifier key;
* every public page, rendered in-process (no network) by the real website at ONE pinned log
  index, the last entry of that checkpoint, so the whole mirror is one consistent state:
  ``index.html``, ``web/...html`` (lists with every page of their pagination, every proposal,
  its history and the compare pages it links to, meetings, publications, organisations,
  strands, the audit page), ``feeds/*.atom`` and ``static/`` (CSS, ``verify.js``);
* ``entries/<index>.json``: the ``/entries/<index>`` answer (entry, inclusion proof, signed
  checkpoint) for every entry a page links to, at the checkpoint's size;
* ``documents/``: every published document's bytes, each checked against the SHA-256 the
  log records for it;
* ``README.html``: which log, which checkpoint, how to audit it, what is not in the mirror;
* ``SHA256SUMS`` (``sha256sum -c`` format) and ``MANIFEST.json``: every file and its SHA-256.

Links are rewritten to relative ones. Pages that need the live service (search, the filter
and compare forms, earlier states, the API documentation, the officials' workspace) are
replaced by a note pointing at ``README.html#not-in-mirror``. The pages carry
``<meta name="ledger-static-mirror">``, which makes ``verify.js`` check entries against the
mirror's own tiles (entry bundles and hash tiles, the proof computed in the browser) instead
of calling the API.

Re-exporting into the same directory rewrites only files whose bytes changed (tiles are
appended incrementally by ``export_tiles``); every page is rendered again.
"""

from __future__ import annotations

import hashlib
import html
import json
import mimetypes
import posixpath
import re
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from ledger.errors import LedgerError
from ledger.settings import Settings
from ledger.storage import open_reader
from ledger.tiles import TilesExport, export_tiles

__all__ = ["ExportError", "SiteExport", "export_site"]

ORIGIN = "http://mirror.invalid"
"""The in-process app's base URL (never on the network; rewritten out of every file)."""

NOT_IN_MIRROR = "/README.html#not-in-mirror"
LISTS = ("/web/proposals", "/web/meetings", "/web/publications", "/web/organisations")
SEEDS = ("/", *LISTS, "/web/audit", "/feeds/log.atom")
PAGE_PARAMS = frozenset({"cursor", "strand", "status", "kind", "proposal", "from", "to"})
CATCH_UP_SECONDS = 60.0
_SLUG = re.compile(r"^[A-Za-z0-9._-]{1,40}$")
_LINK = re.compile(r'(\s(?:href|src|action))="([^"]*)"')
_FEED_LINK = re.compile(r'(\shref)="' + re.escape(ORIGIN) + r'(/[^"]*)"')
_GET_FORM = re.compile(r'<form\b[^>]*\bmethod="get"[^>]*>.*?</form>', re.DOTALL)
_DOCUMENT = re.compile(r"^/publications/([^/]+)/document$")
_ENTRY = re.compile(r"^/entries/(\d{1,16})$")
FORM_NOTE = (
    '<p class="notice small">{what} needs the live service, so it is not available in this '
    'static mirror. <a href="/README.html#not-in-mirror">What the mirror holds</a>.</p>'
)
_SELECT = re.compile(r'<select\b[^>]*\bname="([^"]+)"[^>]*>(.*?)</select>', re.DOTALL)
_OPTION = re.compile(r'<option value="([^"]+)"[^>]*>(.*?)</option>', re.DOTALL)
_ACTION = re.compile(r'\baction="([^"]*)"')
EXTENSIONS = {
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/html": ".html",
    "text/csv": ".csv",
    "application/json": ".json",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.oasis.opendocument.text": ".odt",
}


class ExportError(LedgerError):
    """The mirror could not be written as a faithful copy (for example, a document's bytes
    do not have the SHA-256 the log records)."""


@dataclass
class SiteExport:
    """What :func:`export_site` wrote."""

    directory: Path
    log_name: str
    size: int  # the checkpoint's size: the mirror reflects entries 0 .. size - 1
    root: str  # the checkpoint's root hash, base64
    pages: int = 0  # HTML pages (README.html included)
    feeds: int = 0
    documents: int = 0
    entries: int = 0  # entries/<index>.json answers
    files: int = 0  # every file in the mirror, tiles included
    bytes: int = 0
    written: int = 0  # files other than tiles written (new or changed) by this export
    seconds: float = 0.0
    missing: list[str] = field(default_factory=list)  # linked pages the app did not serve
    tiles: TilesExport | None = None  # what export_tiles did


# Where things go -----------------------------------------------------------------------------


def _page_file(path: str, params: list[tuple[str, str]]) -> str | None:
    """The mirror file for a page URL (without ``as_of``), or None when it is not mirrored."""
    if path == "/":
        base = "index"
    elif path.startswith("/web/") and path.rstrip("/") != "/web" and path != "/web/search":
        segments = [unquote(s) for s in path[1:].split("/")]
        if any(s in ("", ".", "..") or "\x00" in s for s in segments):
            return None
        base = "/".join(_file_segment(s) for s in segments)
    else:
        return None
    if any(k not in PAGE_PARAMS for k, _ in params):
        return None
    if not params:
        return base + ".html"
    chosen = sorted(params)
    if all(k != "cursor" and _SLUG.match(v) for k, v in chosen):
        slug = "_".join(f"{k}-{v}" for k, v in chosen)
    else:
        slug = "page-" + hashlib.sha256(urlencode(chosen).encode()).hexdigest()[:16]
    return f"{base}--{slug}.html"


def _feed_file(path: str, params: list[tuple[str, str]]) -> str | None:
    if params or not path.startswith("/feeds/") or not path.endswith(".atom"):
        return None
    segments = [unquote(s) for s in path[1:].split("/")]
    if any(s in ("", ".", "..") or "\x00" in s for s in segments):
        return None
    return "/".join(_file_segment(s) for s in segments)


def _file_segment(segment: str) -> str:
    """A URL path segment (decoded) as one file or directory name: an id recorded before ids
    had to be slugs may hold "/" or other characters, which stay percent-encoded."""
    return quote(segment, safe="-._~!$&'()*+,;=:@")


def _static_form(form: str, at: int) -> str:
    """A GET form as the mirror can offer it: each choice of each of its lists (a strand, a
    status, a kind) as a link to that pre-rendered page; typed text (search), comparisons of
    any two versions and earlier states as a note that they need the live service."""
    found = _ACTION.search(form)
    action = html.unescape(found.group(1)) if found else ""
    searching = 'name="q"' in form
    if not action.startswith("/web/") or action.endswith("/compare"):
        what = "Comparing any two versions" if action.endswith("/compare") else "This choice"
        return FORM_NOTE.format(what=what)
    lines = []
    for name, options in _SELECT.findall(form):
        links = [
            f'<a href="{html.escape(action)}?{html.escape(urlencode({name: value, "as_of": at}))}"'
            f">{text.strip()}</a>"
            for value, text in _OPTION.findall(options)
        ]
        if links:
            lines.append(
                f"<li><strong>{html.escape(name.title())}:</strong> {' · '.join(links)}</li>"
            )
    note = FORM_NOTE.format(what="Searching" if searching else "Combining choices")
    if not lines:
        return note
    return f'<div class="filters"><ul class="plain-list">{"".join(lines)}</ul>{note}</div>'


def _relative(target: str, current: str) -> str:
    """A link from mirror file ``current`` to mirror file ``target`` (``#fragment`` kept)."""
    target, hash_mark, fragment = target.partition("#")
    start = posixpath.dirname(current) or "."
    rel = posixpath.relpath(target, start) if target else posixpath.basename(current)
    return quote(rel, safe="/-._~") + hash_mark + fragment


def _extension(media_type: str) -> str:
    media_type = media_type.split(";", 1)[0].strip().lower()
    return EXTENSIONS.get(media_type) or mimetypes.guess_extension(media_type) or ".bin"


# The export --------------------------------------------------------------------------------


class _Mirror:
    """One export: the in-process app, the pages still to render, and what was written."""

    def __init__(
        self,
        client: Any,
        directory: Path,
        result: SiteExport,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.client = client
        self.directory = directory
        self.result = result
        self.at = result.size - 1
        self.progress = progress
        self.queue: deque[tuple[str, list[tuple[str, str]], str]] = deque()
        self.seen: set[str] = set()  # mirror files of pages queued or done
        self.assets: dict[str, str] = {}  # URL path → mirror file, for files other than pages
        self.records: dict[str, dict[str, Any]] = {}

    # Files

    def write(self, name: str, body: bytes) -> None:
        path = self.directory / name
        if path.is_file() and path.read_bytes() == body:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".part")
        temporary.write_bytes(body)
        temporary.replace(path)
        self.result.written += 1

    def get(self, path: str, params: list[tuple[str, str]] | None = None) -> Any:
        return self.client.get(path, params=params or [])

    # Links

    def enqueue(self, path: str, params: list[tuple[str, str]], name: str) -> None:
        if name not in self.seen:
            self.seen.add(name)
            self.queue.append((path, params, name))

    def target(self, url: str) -> str | None:
        """The mirror file (with ``#fragment``) an internal URL maps to; None to keep the
        URL as it is (a fragment, or a link to elsewhere)."""
        if not url.startswith("/") or url.startswith("//"):
            return None
        parts = urlsplit(url)
        fragment = "#" + parts.fragment if parts.fragment else ""
        path = parts.path
        params = parse_qsl(parts.query, keep_blank_values=True)
        as_of = [v for k, v in params if k == "as_of"]
        params = [(k, v) for k, v in params if k != "as_of"]
        if any(v != str(self.at) for v in as_of):
            return NOT_IN_MIRROR[1:]  # an earlier state of the record
        page = _page_file(path, params)
        if page is not None:
            self.enqueue(path, params, page)
            return page + fragment
        feed = _feed_file(path, params)
        if feed is not None:
            self.enqueue(path, params, feed)
            return feed + fragment
        found = self.asset(path, params)
        return NOT_IN_MIRROR[1:] if found is None else found + fragment

    def asset(self, path: str, params: list[tuple[str, str]]) -> str | None:
        """A file other than a page a link points to, fetched on first sight."""
        key = path + "?" + urlencode(params) if params and not path.startswith("/static/") else path
        if key in self.assets:
            return self.assets[key]
        name: str | None = None
        if path in ("/checkpoint", "/public-key", "/README.html"):
            name = path[1:]
        elif path.startswith("/tile/") and not params:
            candidate = unquote(path[1:])
            if ".." not in candidate.split("/") and (self.directory / candidate).is_file():
                name = candidate
        elif path.startswith("/static/"):
            name = self.static(path)
        elif (found := _ENTRY.match(path)) and not params:
            name = self.entry(int(found.group(1)))
        elif (found := _DOCUMENT.match(path)) and not params:
            name = self.document(unquote(found.group(1)))
        self.assets[key] = name or ""
        return name

    def static(self, path: str) -> str | None:
        response = self.get(path)
        if response.status_code != 200:
            return None
        name = "static/" + unquote(path.removeprefix("/static/"))
        self.write(name, response.content)
        return name

    def entry(self, index: int) -> str | None:
        if not 0 <= index < self.result.size:
            return None
        response = self.get(f"/entries/{index}", [("size", str(self.result.size))])
        if response.status_code != 200:
            return None
        name = f"entries/{index}.json"
        self.write(name, response.content)
        self.result.entries += 1
        return name

    def record(self, publication_id: str) -> dict[str, Any] | None:
        if publication_id not in self.records:
            response = self.get(
                f"/publications/{quote(publication_id, safe='')}", [("as_of", str(self.at))]
            )
            self.records[publication_id] = response.json() if response.status_code == 200 else {}
        return self.records[publication_id] or None

    def document(self, publication_id: str) -> str | None:
        """A publication's document, as served, checked against the SHA-256 in the log."""
        record = self.record(publication_id)
        if record is None or not record.get("sha256") or record.get("state") == "withdrawn":
            return None
        response = self.get(f"/publications/{quote(publication_id, safe='')}/document")
        if response.status_code != 200:
            return None
        recorded = str(record["sha256"])
        actual = hashlib.sha256(response.content).hexdigest()
        if actual != recorded:
            raise ExportError(
                f"the document of publication {publication_id} has SHA-256 {actual}, but the "
                f"log records {recorded}: refusing to mirror it"
            )
        media_type = str(record.get("media_type") or response.headers.get("content-type", ""))
        safe_id = re.sub(r"[^A-Za-z0-9._-]", "_", publication_id)
        name = f"documents/{safe_id}-{recorded[:12]}{_extension(media_type)}"
        self.write(name, response.content)
        self.result.documents += 1
        return name

    def rewrite(self, text: str, current: str) -> str:
        def one(match: re.Match[str]) -> str:
            url = html.unescape(match.group(2))
            found = self.target(url)
            if found is None:
                return match.group(0)
            return f'{match.group(1)}="{html.escape(_relative(found, current))}"'

        return _LINK.sub(one, text)

    def rewrite_feed(self, text: str, current: str) -> str:
        def one(match: re.Match[str]) -> str:
            found = self.target(html.unescape(match.group(2)))
            assert found is not None  # the URL starts with "/"
            return f'{match.group(1)}="{html.escape(_relative(found, current))}"'

        return _FEED_LINK.sub(one, text)

    # Pages

    def crawl(self) -> None:
        for seed in SEEDS:
            self.target(seed)
        done = 0
        while self.queue:
            path, params, name = self.queue.popleft()
            response = self.get(path, [*params, ("as_of", str(self.at))])
            if response.status_code != 200:
                self.result.missing.append(f"{path}?{urlencode(params)} ({response.status_code})")
            text = response.text
            if name.endswith(".atom"):
                self.write(name, self.rewrite_feed(text, name).encode())
                self.result.feeds += 1
            else:
                text = _GET_FORM.sub(lambda m: _static_form(m.group(0), self.at), text)
                self.write(name, self.rewrite(text, name).encode())
                self.result.pages += 1
            done += 1
            if self.progress is not None:
                self.progress(done, done + len(self.queue))

    def every_document(self) -> None:
        """Every published document, linked from a page or not."""
        cursor: str | None = None
        while True:
            params = [("as_of", str(self.at)), ("limit", "500")]
            if cursor:
                params.append(("cursor", cursor))
            response = self.get("/publications", params)
            if response.status_code != 200:
                raise ExportError(f"could not list the publications ({response.status_code})")
            body = response.json()
            for item in body["items"]:
                if item.get("sha256") and item.get("state") != "withdrawn":
                    self.asset(f"/publications/{quote(str(item['id']), safe='')}/document", [])
            cursor = body.get("next_cursor")
            if not cursor:
                return


def _wait_for_read_models(client: Any, at: int) -> None:
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while True:
        response = client.get("/timeline", params={"limit": "1"})
        if response.status_code == 200 and int(response.json()["as_of_index"]) >= at:
            return
        if time.monotonic() > deadline:
            raise ExportError(f"the read models did not reach entry {at} in time")
        time.sleep(0.1)


def _readme(result: SiteExport, note: str, verifier_key: str, last_time: str) -> str:
    escape = html.escape
    size = result.size
    audit_command = (
        f"ledger audit <this mirror's URL or directory> --key {verifier_key} "
        "--state my-audit-state.json"
    )
    return f"""<!doctype html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>About this mirror – Open Policy Ledger</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="static/site.css">
</head>
<body>
<header class="site-header"><div class="container header-inner">
<a href="index.html" class="brand">Open Policy Ledger</a></div></header>
<div class="container"><main id="main">
<h1>About this mirror</h1>
<p class="lead">This is a static copy of the public record kept in the log
<code>{escape(result.log_name)}</code>, as it stood at its signed checkpoint of
<strong>{size} entries</strong> (entries 0 to {size - 1}; the last was recorded
{escape(last_time)}). It needs no service to keep working: any static file server can host
it, and anyone can check it.</p>
<p><a class="button" href="index.html">Go to the record</a></p>

<h2 id="checkpoint">The checkpoint it reflects</h2>
<pre aria-label="The signed checkpoint">{escape(note)}</pre>
<p>The log's public key: <code class="hash">{escape(verifier_key)}</code>. Get the key from
somewhere other than this mirror as well (for example a government publication) and compare.
</p>

<h2 id="audit">How to audit it</h2>
<p>The mirror holds the whole log as <a href="https://c2sp.org/tlog-tiles">C2SP
tlog-tiles</a>: <a href="checkpoint"><code>checkpoint</code></a>, the hash tiles and the
entry bundles under <code>tile/</code>. With this project's command line tool, which trusts
nothing but the key you give it:</p>
<pre>{escape(audit_command)}</pre>
<p>It checks every entry's hash chain, that the entries hash to the signed root and that the
signature is the log's; run it again later, against the live log or a newer mirror, and it
checks that the log still extends the checkpoint you kept.</p>
<p>Every page's <strong>Verify</strong> button works here too: your browser reads the
checkpoint, the entry bundles and the hash tiles from this mirror, computes each entry's
inclusion proof itself and checks the checkpoint's signature with the log's key. Every
document here was checked against the SHA-256 the log records for it when the mirror was
written, and <a href="SHA256SUMS"><code>SHA256SUMS</code></a> (for
<code>sha256sum -c SHA256SUMS</code>) and <a href="MANIFEST.json"><code>MANIFEST.json</code></a>
list every file in the mirror with its SHA-256.</p>

<h2 id="not-in-mirror">What is not in this mirror</h2>
<p>A static copy cannot answer questions it was not written with. These need the live
service:</p>
<ul>
<li>searching the record, and lists filtered by more than one choice at once (each list
filtered by one strand, status or kind of organisation is included);</li>
<li>comparing two versions of a proposal other than consecutive ones (each version's
changes from the one before are included);</li>
<li>the record as it stood at an earlier point (the whole mirror reflects entry
{size - 1});</li>
<li>the JSON API, its documentation and the officials' workspace. Entries linked from the
pages are included as <code>entries/&lt;index&gt;.json</code> (the entry, its inclusion
proof and the signed checkpoint), and the whole log is in the tiles.</li>
</ul>
<p>Documents that were embargoed or withdrawn at the checkpoint are not included; the log
records their hashes.</p>
</main></div>
</body>
</html>
"""


def _subject_lists(settings: Settings, size: int, writer: _Mirror) -> int:
    """``subjects/<id>.json``: the indexes of every entry about each record, read from the
    log's own entries (never a read model), for a page's Verify to fetch from the tiles. The
    browser checks each entry and that the record's versions run 1..n, so the list is a
    convenience, not a claim."""
    indexes: dict[str, list[int]] = {}
    reader = open_reader(settings)
    try:
        for start in range(0, size, 5000):
            for offset, raw in enumerate(reader.entries(start, min(size, start + 5000))):
                subject = json.loads(raw).get("subject") or {}
                subject_id = str(subject.get("id", ""))
                if _SUBJECT_ID.fullmatch(subject_id):
                    indexes.setdefault(subject_id, []).append(start + offset)
    finally:
        reader.close()
    for subject_id, found in indexes.items():
        body = json.dumps({"subject": subject_id, "indexes": found}, separators=(",", ":"))
        writer.write(f"subjects/{subject_id}.json", body.encode())
    return len(indexes)


_SUBJECT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _manifest(directory: Path, result: SiteExport, note: str, writer: _Mirror) -> None:
    skip = {"MANIFEST.json", "SHA256SUMS"}
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.rglob("*")):
        name = path.relative_to(directory).as_posix()
        if not path.is_file() or name in skip or name.endswith(".part"):
            continue
        body = path.read_bytes()
        files[name] = {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
    sums = "".join(f"{v['sha256']}  {k}\n" for k, v in files.items())
    writer.write("SHA256SUMS", sums.encode())
    manifest = {
        "format": "open-policy-ledger static mirror v1",
        "log": result.log_name,
        "checkpoint": {"size": result.size, "root": result.root, "note": note},
        "pinned_index": result.size - 1,
        "exported_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": files,
    }
    writer.write("MANIFEST.json", json.dumps(manifest, indent=1, sort_keys=True).encode())
    result.files = len(files) + 2
    result.bytes = sum(v["size"] for v in files.values()) + sum(
        (directory / n).stat().st_size for n in skip
    )


def export_site(
    settings: Settings,
    directory: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> SiteExport:
    """Write (or bring up to date) the static mirror of the public record in ``directory``.

    ``progress(done, known)`` is called after each page, with the pages known so far.
    """
    with warnings.catch_warnings():  # Starlette prefers httpx2; httpx works the same here
        warnings.filterwarnings("ignore", message="Using .httpx. with .starlette.testclient")
        from fastapi.testclient import TestClient

    from api.app import create_app
    from api.web.site import format_datetime

    started = time.perf_counter()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # Absolute links (feeds) are made from the public URL: the in-process origin here, so
    # that they are rewritten to relative ones like every other link.
    app = create_app(settings.model_copy(update={"public_url": ORIGIN}))
    with TestClient(app, base_url=ORIGIN, raise_server_exceptions=True) as client:
        tiles = export_tiles(settings, directory)
        note = (directory / "checkpoint").read_text()
        lines = note.split("\n")
        size = int(lines[1])
        if size <= 0:
            raise ExportError("the log has no entries yet: nothing to mirror")
        result = SiteExport(directory, lines[0], size, lines[2], tiles=tiles)
        _wait_for_read_models(client, size - 1)
        last = json.loads(client.get(f"/entries/{size - 1}").json()["entry"])
        app.state.static_mirror = {"size": size, "last_time": str(last.get("time", ""))}
        writer = _Mirror(client, directory, result, progress)
        verifier_key = client.get("/public-key").text.strip()
        writer.write("public-key", (verifier_key + "\n").encode())
        writer.crawl()
        writer.every_document()
        _subject_lists(settings, size, writer)
        writer.write(
            "README.html",
            _readme(result, note, verifier_key, format_datetime(last.get("time", ""))).encode(),
        )
        result.pages += 1
    _manifest(directory, result, note, writer)
    result.seconds = time.perf_counter() - started
    return result
