"""Input hygiene (issue 16, item 6), on both stores.

* Control characters are refused in every text field (line breaks and tabs only in long
  texts), over HTTP (422 problem+json naming the field), by `ledger record` and by
  `ledger import` (one line naming the field), and nothing is recorded.
* Whatever text is accepted, every Atom feed and the site export's feeds parse as XML; so do
  they when older entries (recorded before the rule) hold control characters.
* A strand id recorded before ids had to be slugs (holding "/" and a space) keeps its pages,
  and `ledger export-site` mirrors them.
* A client's ``Host`` header never reaches an absolute link; CR, LF and ESC in a URL path
  are escaped in the text log of a real `ledger serve`.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from api.app import create_app
from api.static_site import export_site
from ledger import events as ev
from ledger.actors import Actor
from ledger.aggregates import LedgerAggregate, Organisation, Process, Proposal
from ledger.application import LedgerApplication
from ledger.cli import main
from ledger.errors import InvalidInputError
from ledger.storage import open_reader
from ledger.text import forbidden_character
from tests.api.test_writes import Api, open_api, poll, problem
from tests.conftest import Store

ROOT = Path(__file__).resolve().parents[2]
ATOM = "{http://www.w3.org/2005/Atom}"
CLERK = Actor("clerk-ines", "recorder", "")
NEVER = [chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)]]
NEVER_JSON = [*NEVER, "\ud800", "\udfff", "\ufffe"]  # lone surrogates travel only as \u escapes
ONE_LINE_ONLY = ["\n", "\t", "\r"]
PLAIN = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF), max_size=12)


def _world(app: LedgerApplication) -> tuple[str, str]:
    process = app.start_process(title="Data sharing", summary="", actor=CLERK).subject_id
    app.add_strand(process, strand_id="research", title="Research", actor=CLERK)
    org = app.register_organisation(name="Cabinet Office", org_kind="department", actor=CLERK)
    return process, org.subject_id


# (command, its arguments holding the text, the field the error must name, long text?)
Case = tuple[str, Callable[[str, str, str], dict[str, Any]], str, bool]
CASES: list[Case] = [
    ("start_process", lambda _p, _o, t: {"title": t}, "title", False),
    ("start_process", lambda _p, _o, t: {"title": "T", "summary": t}, "summary", True),
    ("register_organisation", lambda _p, _o, t: {"name": t, "org_kind": "academic"}, "name", False),
    (
        "add_strand",
        lambda p, _o, t: {"process_id": p, "strand_id": "s-new", "title": "S", "summary": t},
        "summary",
        True,
    ),
    (
        "table_proposal",
        lambda p, o, t: {
            "process_id": p,
            "strand_id": "research",
            "title": t,
            "sections": [{"id": "s1", "heading": "H", "text": ""}],
            "sponsor_org": o,
        },
        "title",
        False,
    ),
    (
        "table_proposal",
        lambda p, o, t: {
            "process_id": p,
            "strand_id": "research",
            "title": "T",
            "sections": [{"id": "s1", "heading": "H", "text": "ok"}, {"id": "s2", "text": t}],
            "sponsor_org": o,
        },
        "sections[1].text",
        True,
    ),
]


def _http(command: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The HTTP path and body of a command."""
    if command == "add_strand":
        body = dict(args)
        return f"/processes/{body.pop('process_id')}/strands", body
    paths = {"start_process": "/processes", "register_organisation": "/organisations"}
    return paths.get(command, "/proposals"), args


@st.composite
def hostile(draw: st.DrawFn, alphabet: list[str]) -> tuple[Case, str]:
    case = draw(st.sampled_from(CASES))
    bad = draw(st.sampled_from(alphabet + ([] if case[3] else ONE_LINE_ONLY)))
    # A CR in long text is refused only when no LF follows it (\r\n is a line break there).
    text = draw(PLAIN) + bad + draw(PLAIN).lstrip("\n")
    return case, text


def _size(store: Store) -> int:
    reader = open_reader(store.settings)
    try:
        head = reader.head()
        return head.size if head is not None else 0
    finally:
        reader.close()


# Refused on every path ------------------------------------------------------------------------


def test_control_characters_are_refused_over_http_naming_the_field(store: Store) -> None:
    with open_api(store, write_rate=0) as api:
        recorder = api.officials["recorder"]
        app = api.ledger
        process, org = _world(app)
        size = api.size()

        @given(hostile(NEVER_JSON))
        @hsettings(max_examples=60, deadline=None)
        def refused(drawn: tuple[Case, str]) -> None:
            (command, args, field, _long), text = drawn
            path, body = _http(command, args(process, org, text))
            sent = json.dumps(body).encode()  # ASCII: a lone surrogate goes as a \u escape
            json_type = {"Content-Type": "application/json"}
            answer = problem(api.post(path, recorder, content=sent, headers=json_type), 422)
            if re.search("[\ud800-\udfff]", text):  # the body model refuses these first
                loc = re.sub(r"\[(\d+)\]", r".\1", field)
                assert answer["detail"].startswith("the request body does not fit"), answer
                assert f"{loc}: Input should be a valid string" in answer["detail"], answer
            else:
                assert answer["detail"].startswith(f"{field} contains "), answer
                assert answer["field"] == field
                assert "control characters are not allowed" in answer["detail"]
            assert api.size() == size

        refused()


@contextmanager
def _cli_env(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in store.env().items():
        if name.startswith("LEDGER_"):
            monkeypatch.setenv(name, value)
    yield


def test_control_characters_are_refused_by_ledger_record_and_import(
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = LedgerApplication(store.settings)
    try:
        process, org = _world(app)
    finally:
        app.close()
    size = _size(store)

    with _cli_env(store, monkeypatch):

        @given(hostile(NEVER), st.booleans())
        @hsettings(max_examples=30, deadline=None)
        def refused(drawn: tuple[Case, str], bulk: bool) -> None:
            (command, args, field, _long), text = drawn
            arguments = args(process, org, text)
            capsys.readouterr()
            if bulk:
                path = tmp_path / f"{uuid.uuid4().hex}.ndjson"
                good = {"command": "start_process", "args": {"title": "Fine", "summary": "x"}}
                lines = [good, {"command": command, "args": arguments}]
                path.write_text("".join(json.dumps(line) + "\n" for line in lines))
                status = main(["import", str(path), "--actor", "clerk", "--org", org, "--quiet"])
            else:
                encoded = json.dumps(arguments)
                status = main(
                    ["record", command, "--json", encoded, "--actor", "clerk", "--org", org]
                )
            err = capsys.readouterr().err
            assert status != 0
            assert err.count("\n") == 1, err
            # `ledger record` names the field as its declaration does (`title: contains …`).
            named = f"{field} contains " if bulk else f"{field}: contains "
            assert named in err, err
            if bulk:
                assert "line 2" in err, err
            assert _size(store) == size  # the import's good first line went with its batch

        refused()


def test_new_strand_phase_and_group_ids_must_be_slugs(store: Store) -> None:
    with open_api(store, write_rate=0) as api:
        recorder = api.officials["recorder"]
        process, org = _world(api.ledger)
        size = api.size()
        for bad in ("a/b", "Research", "two words", "a" * 65, "under_score", "-x", "../x"):
            for path, body, field in (
                (f"/processes/{process}/strands", {"strand_id": bad, "title": "S"}, "strand_id"),
                (f"/processes/{process}/phases", {"phase_id": bad, "title": "P"}, "phase_id"),
                (
                    f"/organisations/{org}/memberships",
                    {"process_id": process, "group": bad},
                    "group",
                ),
            ):
                answer = problem(api.post(path, recorder, body), 422)
                assert answer["detail"].startswith(f"{field} must be a slug"), answer
                assert answer["field"] == field
        assert api.size() == size
        made = api.post(
            f"/processes/{process}/strands", recorder, {"strand_id": "a-b2", "title": "S"}
        )
        assert made.status_code == 200, made.text


# Accepted text keeps every feed XML --------------------------------------------------------------


def _parse(body: bytes | str) -> ET.Element:
    return ET.fromstring(body.encode() if isinstance(body, str) else body)


def _unchecked(
    app: LedgerApplication, record: LedgerAggregate, event: type[Any], **fields: Any
) -> str:
    """Record an event the way an earlier version could have: straight through the record,
    before the text and slug rules existed (``trigger_event``, not the command)."""
    record.trigger_event(event, actor=CLERK.as_entry(), timestamp=app.clock(), **fields)
    return app._commit(record).subject_id


def _unchecked_proposal(app: LedgerApplication, process: str, org: str, title: str) -> str:
    proposal = Proposal._create(
        ev.ProposalTabled,
        id=uuid.uuid4(),
        actor=CLERK.as_entry(),
        timestamp=app.clock(),
        process_id=process,
        strand_id="research",
        title=title,
        sections=[{"id": "s1", "heading": "Old\x0cheading", "text": "Old\x01text\x1b[2J"}],
        sponsor_org=org,
        meeting_id=None,
    )
    return app._commit(proposal).subject_id


def _feed(api: Api, path: str, at_least: int) -> ET.Element:
    """The feed once the read models reflect index ``at_least``."""
    response = poll(
        api,
        path,
        lambda r: r.status_code == 200 and int(r.headers["x-ledger-index"]) >= at_least,
    )
    return _parse(response.content)


SHORT_OK = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=60).filter(
    lambda s: forbidden_character(s) is None and bool(s.strip())
)
LONG_OK = st.text(st.characters(exclude_categories=["Cs"]), max_size=200).filter(
    lambda s: forbidden_character(s, long=True) is None
)


def test_any_accepted_text_and_old_control_characters_keep_every_feed_xml(
    store: Store, tmp_path: Path
) -> None:
    with open_api(store, write_rate=0) as api:
        recorder = api.officials["recorder"]
        process, org = _world(api.ledger)

        @given(SHORT_OK, LONG_OK, LONG_OK)
        @hsettings(max_examples=25, deadline=None)
        def accepted(title: str, text: str, rationale: str) -> None:
            body = {
                "process_id": process,
                "strand_id": "research",
                "title": title,
                "sections": [{"id": "s1", "heading": title, "text": text}],
                "sponsor_org": org,
            }
            tabled = api.post("/proposals", recorder, body)
            assert tabled.status_code == 201, tabled.text
            pid = tabled.json()["subject"]["id"]
            change = {"op": "replace", "section_id": "s1", "text": text + "!"}
            amended = api.post(
                f"/proposals/{pid}/amendments",
                recorder,
                {
                    "base_version": 1,
                    "changes": [change],
                    "rationale": rationale,
                    "proposer_org": org,
                },
            )
            assert amended.status_code == 200, amended.text
            index = amended.json()["index"]
            history = _feed(api, f"/feeds/proposals/{pid}.atom", index)
            titles = [e.findtext(f"{ATOM}title") for e in history.iter(f"{ATOM}entry")]
            assert f"Tabled: {title}" in titles
            summaries = [e.findtext(f"{ATOM}summary") for e in history.iter(f"{ATOM}entry")]
            assert (rationale.replace("\r\n", "\n") or titles[0]) in summaries
            _feed(api, "/feeds/log.atom", index)

        accepted()

        # Entries an earlier version recorded, holding what XML 1.0 cannot: the feeds still
        # parse, each such character shown as U+FFFD; the entries themselves are unchanged.
        app = api.ledger
        old = _unchecked_proposal(app, process, org, "Old\x1b[31m title\x01\x0b")
        moved = api.post(
            f"/proposals/{old}/status", recorder, {"new_status": "discussion", "reason": "ok"}
        )
        assert moved.status_code == 200, moved.text
        index = 1 + moved.json()["index"]
        _unchecked(
            app,
            app._get(Proposal, old),
            ev.ProposalStatusChanged,
            old_status="discussion",
            new_status="consultation",
            reason="bell\x07 and\x1f unit",
            superseded_by=None,
        )
        history = _feed(api, f"/feeds/proposals/{old}.atom", index)
        titles = [e.findtext(f"{ATOM}title") for e in history.iter(f"{ATOM}entry")]
        assert "Tabled: Old\ufffd[31m title\ufffd\ufffd" in titles
        summaries = [e.findtext(f"{ATOM}summary") for e in history.iter(f"{ATOM}entry")]
        assert "bell\ufffd and\ufffd unit" in summaries
        log_titles = [
            e.findtext(f"{ATOM}title") or ""
            for e in _feed(api, "/feeds/log.atom", index).iter(f"{ATOM}entry")
        ]
        assert any("Old\ufffd[31m" in title for title in log_titles), log_titles
        entry = api.client.get(f"/entries/{index}").json()["entry"]
        assert "bell\\u0007 and\\u001f unit" in entry  # the log keeps what was recorded

    # The site export: every feed it writes is XML too.
    target = tmp_path / "mirror"
    result = export_site(store.settings, target)
    assert result.missing == []
    feeds = sorted(target.rglob("*.atom"))
    assert len(feeds) >= 27  # the log's and one per proposal
    for path in feeds:
        _parse(path.read_bytes())
    assert "Old\ufffd[31m" in (target / "feeds" / "proposals" / f"{old}.atom").read_text()


# An old strand id holding "/" ------------------------------------------------------------


def test_an_old_strand_id_with_a_slash_keeps_its_pages_and_the_site_export(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = LedgerApplication(store.settings)
    try:
        process, org = _world(app)
        old_id = "old/strand two"
        with pytest.raises(InvalidInputError, match=r"^strand_id must be a slug"):
            app.add_strand(process, strand_id=old_id, title="Refused now", actor=CLERK)
        _unchecked(
            app,
            app._get(Process, process),
            ev.StrandAdded,
            strand_id=old_id,
            title="Old strand",
            summary="Recorded before ids were slugs",
        )
        _unchecked(
            app,
            app._get(Organisation, org),
            ev.MembershipAdded,
            process_id=process,
            group=old_id,
            role="member",
        )
        pid = app.table_proposal(
            process_id=process,
            strand_id=old_id,
            title="Proposal in the old strand",
            sections=[{"id": "s1", "heading": "H", "text": "T"}],
            sponsor_org=org,
            actor=CLERK,
        ).subject_id
        last = app.schedule_meeting(
            process_id=process,
            strand_id=old_id,
            title="Meeting in the old strand",
            starts_at="2015-01-10T10:00:00Z",
            convenor_org=org,
            actor=CLERK,
        ).index
    finally:
        app.close()
    encoded = f"/web/strands/{process}/old%2Fstrand%20two"
    with TestClient(create_app(store.settings)) as client:
        deadline = time.monotonic() + 10
        while (home := client.get("/")).headers.get("x-ledger-index") != str(last):
            assert time.monotonic() < deadline, home.headers
            time.sleep(0.05)
        for page in ("/", f"/web/proposals/{pid}", f"/web/organisations/{org}"):
            text = client.get(page).text
            assert f'href="{encoded}"' in text, page
        strand = client.get(encoded)
        assert strand.status_code == 200, strand.text
        assert "Old strand" in strand.text
        assert "Proposal in the old strand" in strand.text
        assert "Meeting in the old strand" in strand.text

    target = tmp_path / "mirror"
    result = export_site(store.settings, target)
    assert result.missing == []
    mirrored = target / "web" / "strands" / process / "old%2Fstrand%20two.html"
    assert mirrored.is_file()
    assert "Proposal in the old strand" in mirrored.read_text()
    index_html = (target / "index.html").read_text()
    links = re.findall(r'href="(web/strands/[^"]+)"', index_html)
    assert links, index_html[:500]
    for link in links:  # a static server decodes the link once: it names the file
        assert (target / unquote(link)).is_file(), link
    with _cli_env(store, monkeypatch):
        assert main(["export-site", str(tmp_path / "cli-mirror"), "--quiet"]) == 0


# A real server: Host headers and the text log ---------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serve(store: Store, tmp_path: Path, **env: str) -> Iterator[tuple[int, Path]]:
    """`ledger serve` on loopback; yields its port and the file its stderr goes to."""
    port = _free_port()
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ledger.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env={**store.env(), **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if _get(port, "/readyz")[0] == 200:
                        break
                except OSError:
                    pass
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            yield port, log
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def _get(port: int, path: str, host: str | None = None) -> tuple[int, str]:
    """A GET with the path sent exactly as given and any Host header."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _recorded(store: Store) -> int:
    app = LedgerApplication(store.settings)
    try:
        process, org = _world(app)
        return app.table_proposal(
            process_id=process,
            strand_id="research",
            title="Feeds and links",
            sections=[{"id": "s1", "heading": "H", "text": "T"}],
            sponsor_org=org,
            actor=CLERK,
        ).index
    finally:
        app.close()


def _absolute_links(port: int, host: str, last: int) -> list[str]:
    deadline = time.monotonic() + 15
    while True:
        status, feed = _get(port, "/feeds/log.atom", host)
        if status == 200 and f"/entries/{last}" in feed:
            break
        assert time.monotonic() < deadline, feed
        time.sleep(0.1)
    links = re.findall(r'href="([^"]+)"', feed)
    _parse(feed)
    status, audit = _get(port, "/web/audit", host)
    assert status == 200
    assert "evil.example" not in feed
    assert "evil.example" not in audit
    command = re.search(r"ledger audit (\S+) --key", audit)
    assert command is not None
    return [*links, command.group(1)]


def test_a_spoofed_host_header_never_reaches_an_absolute_link(store: Store, tmp_path: Path) -> None:
    last = _recorded(store)
    with _serve(store, tmp_path) as (port, _):
        links = _absolute_links(port, "evil.example", last)
        assert links
        base = f"http://127.0.0.1:{port}"
        assert all(link == base or link.startswith(base + "/") for link in links), links
    with _serve(store, tmp_path, LEDGER_PUBLIC_URL="https://ledger.gov.example/") as (port, _):
        links = _absolute_links(port, "evil.example:8443", last)
        assert all(link.startswith("https://ledger.gov.example") for link in links), links
        assert links[-1] == "https://ledger.gov.example"


def test_control_characters_in_a_url_path_are_escaped_in_the_text_log(
    store: Store, tmp_path: Path
) -> None:
    _recorded(store)
    forged = "2026-01-01 00:00:00,000 INFO ledger.http GET /web/admin 200"
    path = "/web/x%0D%0A" + forged.replace(" ", "%20") + "%1B%5B2J%0Bend"
    with _serve(store, tmp_path, LEDGER_LOG_FORMAT="text", LEDGER_LOG_LEVEL="info") as (port, log):
        assert _get(port, path)[0] == 404
        assert _get(port, "/healthz")[0] == 200  # a later line: the log is flushed past ours
        time.sleep(0.3)
    text = log.read_text()
    lines = text.splitlines()
    assert not any(line.startswith(forged) for line in lines), text
    assert not any("\x1b" in line or "\x0b" in line for line in lines)
    ours = [line for line in lines if "GET /web/x" in line]
    assert len(ours) == 1, text
    assert ours[0].endswith(f"GET /web/x\\r\\n{forged}\\x1b[2J\\x0bend 404"), ours[0]
