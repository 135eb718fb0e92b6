"""Who may do what, and what happens to credentials: threat model rows A and B, on a real
`ledger serve` (a subprocess on loopback), on SQLite and PostgreSQL.

* every route of the app has an explicit access class here, so a new route without one
  fails; the class is then checked over HTTP for no token and for each role;
* the workspace's forms refuse the roles they are not for, and forms without the session's
  CSRF token;
* tokens are stored only as salted hashes (every table and column of both stores scanned)
  and compared in constant time;
* a revocation through one API process is refused by another on its very next request;
* no secret (token, session cookie, CSRF token, Authorization value, signing key) reaches
  the server's or the CLI's output at log level debug;
* every public and workspace page carries the security headers.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import httpx
import psycopg
import pytest
from starlette.routing import Mount

import api.auth
import api.sessions
import ledger.tokens
from api.app import create_app
from api.workspace.forms import FORMS
from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.audit import parse_checkpoint, parse_note
from ledger.demo import record_demo
from ledger.keys import load_signer
from tests.api.test_log_api import free_port
from tests.api.test_writes import _walk
from tests.conftest import BACKENDS, PG_URL, Store, make_store
from tests.helpers import Sample, record_sample

ROOT = Path(__file__).resolve().parents[2]
SETUP = Actor("setup", "admin", "")
ROLES = ("recorder", "publisher", "admin")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')

# Access classes -------------------------------------------------------------------------------

PUBLIC = "public"  # anyone, no token
ANY = "any official"  # recorder, publisher or admin token
RECORD = "recorder or admin"
PUBLISH = "publisher or admin"
ADMIN = "admin only"
SIGN_IN = "workspace sign-in (public form, login CSRF)"
SESSION = "workspace session (any official)"
FORM = "workspace form (session, CSRF, the form's roles)"

ALLOWED: dict[str, frozenset[str]] = {
    PUBLIC: frozenset(),
    ANY: frozenset(ROLES),
    RECORD: frozenset({"recorder", "admin"}),
    PUBLISH: frozenset({"publisher", "admin"}),
    ADMIN: frozenset({"admin"}),
}


def _rows(access: str, *routes: str) -> dict[tuple[str, str], str]:
    return {(r.split(" ", 1)[0], r.split(" ", 1)[1]): access for r in routes}


ACCESS: dict[tuple[str, str], str] = {
    **_rows(
        PUBLIC,
        "GET /",
        "GET /checkpoint",
        "GET /checkpoint/{size}",
        "GET /consultations",
        "GET /consultations/{consultation_id}",
        "GET /docs",
        "GET /docs/oauth2-redirect",
        "GET /entries",
        "GET /entries/{index}",
        "GET /exports",
        "GET /exports/{register}.csv",
        "GET /exports/{register}.ndjson",
        "GET /feeds/log.atom",
        "GET /feeds/proposals/{proposal_id}.atom",
        "GET /feeds/{rest:path}",
        "GET /healthz",
        "GET /meetings",
        "GET /meetings/{meeting_id}",
        "GET /openapi.json",
        "GET /organisations",
        "GET /organisations/{organisation_id}",
        "GET /processes/{process_id}",
        "GET /proof/consistency",
        "GET /proof/inclusion",
        "GET /proposals",
        "GET /proposals/{proposal_id}",
        "GET /proposals/{proposal_id}/compare",
        "GET /proposals/{proposal_id}/history",
        "GET /proposals/{proposal_id}/versions",
        "GET /proposals/{proposal_id}/versions/{number}",
        "GET /public-key",
        "GET /publications",
        "GET /publications/{publication_id}",
        "GET /publications/{publication_id}/document",
        "GET /readyz",
        "GET /redoc",
        "GET /search",
        "GET /subjects/{subject_id}/entries",
        "GET /tile/entries/{path:path}",
        "GET /tile/{level}/{path:path}",
        "GET /timeline",
        "GET /web",
        "GET /web/",
        "GET /web/audit",
        "GET /web/meetings",
        "GET /web/meetings/{meeting_id}",
        "GET /web/organisations",
        "GET /web/organisations/{organisation_id}",
        "GET /web/proposals",
        "GET /web/proposals/{proposal_id}",
        "GET /web/proposals/{proposal_id}/compare",
        "GET /web/proposals/{proposal_id}/history",
        "GET /web/publications",
        "GET /web/publications/{publication_id}",
        "GET /web/search",
        "GET /web/strands/{process_id}/{strand_id:path}",
        "GET /web/{rest:path}",
        "GET /workspace/static/{name}",
        "GET /metrics",
        "HEAD /docs",
        "HEAD /docs/oauth2-redirect",
        "HEAD /openapi.json",
        "HEAD /redoc",
    ),
    **_rows(
        RECORD,
        "POST /consultations",
        "POST /consultations/{consultation_id}/close",
        "POST /consultations/{consultation_id}/government-response",
        "POST /consultations/{consultation_id}/responses",
        "POST /consultations/{consultation_id}/review",
        "POST /meetings",
        "POST /meetings/{meeting_id}/held",
        "POST /meetings/{meeting_id}/minutes",
        "POST /meetings/{meeting_id}/outcomes",
        "POST /organisations",
        "POST /organisations/{organisation_id}/memberships",
        "POST /organisations/{organisation_id}/memberships/end",
        "POST /processes",
        "POST /processes/{process_id}/phases",
        "POST /processes/{process_id}/strands",
        "POST /proposals",
        "POST /proposals/{proposal_id}/amendments",
        "POST /proposals/{proposal_id}/amendments/{amendment_id}/decision",
        "POST /proposals/{proposal_id}/individual-sponsors",
        "POST /proposals/{proposal_id}/legislative-outcomes",
        "POST /proposals/{proposal_id}/revisions",
        "POST /proposals/{proposal_id}/status",
        # officials' decrypted reads: personal data and confidential attendance
        "GET /meetings/{meeting_id}/attendees",
        "GET /consultations/{consultation_id}/respondents",
        "GET /proposals/{proposal_id}/individual-sponsors",
    ),
    **_rows(
        PUBLISH,
        "POST /publications",
        "POST /publications/embargoed",
        "POST /publications/{publication_id}/prerelease-access",
        "POST /publications/{publication_id}/release",
        "POST /publications/{publication_id}/supersession",
        "POST /publications/{publication_id}/withdrawal",
    ),
    **_rows(ANY, "POST /documents", "GET /documents/{sha256}"),
    **_rows(
        ADMIN,
        "POST /corrections",
        "POST /tokens",
        "POST /tokens/{token_id}/revocation",
        "POST /people/{person_id}/erasure",
        "GET /meetings/{meeting_id}/attendance-proof",
    ),
    **_rows(SIGN_IN, "GET /workspace/sign-in", "POST /workspace/sign-in"),
    **_rows(SESSION, "GET /workspace", "POST /workspace/sign-out"),
    **_rows(FORM, "GET /workspace/forms/{slug}", "POST /workspace/forms/{slug}"),
    ("MOUNT", "/static"): PUBLIC,
}

# The workspace forms, by who may use them (the sensitive ones named).
FORM_ROLES = {
    slug: ALLOWED[ADMIN]
    if slug == "record-correction"
    else ALLOWED[PUBLISH]
    if slug in {"publish", "withdraw-publication", "supersede-publication"}
    else ALLOWED[RECORD]
    for slug in FORMS
}

PARAMS = {
    "size": "1",
    "index": "0",
    "number": "1",
    "level": "0",
    "register": "proposals",
    "sha256": "0" * 64,
    "rest:path": "nothing-here",
    "path:path": "000",
    "name": "nothing.css",
    "strand_id": "research",
}


def fill(path: str, slug: str = "start-process", ids: dict[str, str] | None = None) -> str:
    """A concrete URL for a route template (``ids`` for some parameters, others fresh)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "slug":
            return slug
        return (ids or {}).get(name) or PARAMS.get(name, str(uuid.uuid4()))

    return re.sub(r"\{([^}]+)\}", value, path)


def routes_of(app: Any) -> set[tuple[str, str]]:
    found = set(_walk(app.routes))
    found |= {("MOUNT", r.path) for r in app.routes if isinstance(r, Mount)}
    return found


# A real server ---------------------------------------------------------------------------------


class Served:
    """`ledger serve` on a free loopback port, its output in a file; an httpx client."""

    def __init__(self, store: Store, log_dir: Path, *, log_level: str = "warning", **env: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"serve-{self.port}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        environment = {**store.env(), "LEDGER_WRITE_RATE": "0", **env}
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "ledger.cli", "serve"),
                *("--host", "127.0.0.1", "--port", str(self.port), "--log-level", log_level),
            ],
            cwd=ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.base, timeout=20, follow_redirects=False)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited: {self.output()}")
            try:
                if self.client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the server did not start: {self.output()}"
            time.sleep(0.1)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def size(self) -> int:
        answer = self.client.get("/checkpoint")
        assert answer.status_code == 200, answer.text
        return parse_checkpoint(parse_note(answer.text)[0]).size

    def stop(self) -> None:
        if self._log.closed:
            return
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._log.close()


@dataclass
class World:
    """A store with a recorded sample and one token per role, served."""

    store: Store
    server: Served
    sample: Sample
    tokens: dict[str, str]
    token_ids: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)

    def auth(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}


def seed(store: Store) -> tuple[Sample, dict[str, str], dict[str, str]]:
    app = LedgerApplication(store.settings)
    try:
        sample = record_sample(app, amendments=1)
        tokens, ids = {}, {}
        for role in ROLES:
            receipt, token = app.issue_token(
                principal=f"{role}.official", org=sample.org_ids[0], role=role, actor=SETUP
            )
            tokens[role], ids[role] = token, receipt.subject_id
    finally:
        app.close()
    return sample, tokens, ids


@pytest.fixture(params=BACKENDS, scope="module")
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One server per backend for the module's tests (none of them changes what another
    relies on: refusals record nothing; new tokens are only added)."""
    tmp_path = tmp_path_factory.mktemp(f"access-{request.param}")
    for store in make_store(request.param, tmp_path):
        sample, tokens, ids = seed(store)
        server = Served(store, tmp_path / "logs")
        try:
            yield World(store, server, sample, tokens, ids)
        finally:
            server.stop()


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@dataclass
class Browser:
    """A workspace session over plain HTTP: the Secure cookies are sent by hand (a browser
    would only send them over HTTPS, which a proxy terminates in production)."""

    client: httpx.Client
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    def _cookie_header(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def _keep(self, answer: httpx.Response) -> httpx.Response:
        for line in answer.headers.get_list("set-cookie"):
            name, _, rest = line.partition("=")
            value = rest.split(";", 1)[0].strip('"')
            if value and "max-age=0" not in line.lower():
                self.cookies[name.strip()] = value
            else:
                self.cookies.pop(name.strip(), None)
        return answer

    def get(self, path: str) -> httpx.Response:
        return self._keep(self.client.get(path, headers=self._cookie_header()))

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self._keep(self.client.post(path, data=data, headers=self._cookie_header()))

    def sign_in(self, token: str) -> httpx.Response:
        form = self.get("/workspace/sign-in")
        answer = self.post("/workspace/sign-in", {"token": token, "csrf": csrf_of(form.text)})
        if answer.status_code == 303:
            home = self.get("/workspace")
            assert home.status_code == 200, home.text[:500]
            self.csrf = csrf_of(home.text)
        return answer


def signed_in(server: Served, token: str) -> Browser:
    browser = Browser(server.client)
    answer = browser.sign_in(token)
    assert answer.status_code == 303, answer.text[:500]
    assert "ledger_session" in browser.cookies
    return browser


# 1. every route has an access class, and the server keeps to it ----------------------------------


def test_every_route_has_an_explicit_access_class(tmp_path: Path) -> None:
    """A route added without a row in ACCESS fails here; so does a row for a route gone."""
    for store in make_store("sqlite", tmp_path):
        app = create_app(store.settings)
        routes = routes_of(app)
        optional = {("GET", "/metrics")}  # served only when metrics are enabled
        missing = routes - set(ACCESS)
        gone = set(ACCESS) - routes - optional
        assert not missing, f"routes without an access class: {sorted(missing)}"
        assert not gone, f"access classes for routes that do not exist: {sorted(gone)}"
        assert set(FORMS) == set(FORM_ROLES)
        for slug, spec in FORMS.items():
            assert spec.roles == FORM_ROLES[slug], slug


def test_every_route_keeps_to_its_access_class(world: World) -> None:
    """No token → 401 (with a Bearer challenge); a role outside the class → 403; a role in it
    gets past authorisation; public routes never ask for a token. Nothing is recorded: the
    bodies are empty objects, refused after authorisation."""
    server = world.server
    before = server.size()
    checked = 0
    ids = {
        "meeting_id": world.sample.meeting_id,
        "proposal_id": world.sample.proposal_id,
        "process_id": world.sample.process_id,
        "organisation_id": world.sample.org_ids[0],
    }
    for (method, path), access in sorted(ACCESS.items()):
        if method == "MOUNT" or access in (SIGN_IN, SESSION, FORM):
            continue
        url = fill(path, ids=ids)
        kwargs: dict[str, Any] = {}
        if method == "POST":
            kwargs["json"] = {}
        if access == PUBLIC:
            answer = server.client.request(method, url, **kwargs)
            assert answer.status_code not in (401, 403), (method, path, answer.text[:300])
            assert answer.status_code < 500, (method, path, answer.text[:300])
            checked += 1
            continue
        answer = server.client.request(method, url, **kwargs)
        assert answer.status_code == 401, (method, path, answer.status_code, answer.text[:300])
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.headers["www-authenticate"].startswith("Bearer")
        for role in ROLES:
            answer = server.client.request(method, url, headers=world.auth(role), **kwargs)
            if role in ALLOWED[access]:
                assert answer.status_code not in (401, 403), (method, path, role, answer.text)
                assert answer.status_code < 500, (method, path, role, answer.text[:300])
            else:
                assert answer.status_code == 403, (method, path, role, answer.text[:300])
                assert role in answer.json()["detail"]
        # and after an official's read, still nothing for nobody (no cached answer leaks)
        answer = server.client.request(method, url, **kwargs)
        assert answer.status_code == 401, (method, path, "after an official's request")
        checked += 1
    assert checked >= 90
    assert server.size() == before


def test_workspace_forms_keep_to_their_roles_and_csrf(world: World) -> None:
    """Signed out, every workspace page sends you to sign in; signed in, each form is shown
    and accepted only for its roles, and never without the session's CSRF token."""
    server = world.server
    before = server.size()
    anonymous = Browser(server.client)
    for path in ("/workspace", *(f"/workspace/forms/{slug}" for slug in FORMS)):
        answer = anonymous.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/workspace/sign-in")
    for slug in FORMS:
        answer = anonymous.post(f"/workspace/forms/{slug}", {"csrf": "x"})
        assert answer.status_code in (303, 403), (slug, answer.status_code)
    for role in ROLES:
        browser = signed_in(server, world.tokens[role])
        for slug in FORMS:
            shown = browser.get(f"/workspace/forms/{slug}")
            if role in FORM_ROLES[slug]:
                assert shown.status_code == 200, (role, slug, shown.text[:300])
                forged = browser.post(f"/workspace/forms/{slug}", {"csrf": "forged"})
                assert forged.status_code == 403, (role, slug, forged.status_code)
                missing = browser.post(f"/workspace/forms/{slug}", {"title": "no csrf"})
                assert missing.status_code == 403, (role, slug, missing.status_code)
                empty = browser.post(f"/workspace/forms/{slug}", {"csrf": browser.csrf})
                assert empty.status_code not in (401, 403), (role, slug, empty.text[:300])
                assert empty.status_code < 500, (role, slug, empty.text[:300])
            else:
                assert shown.status_code == 403, (role, slug, shown.status_code)
                refused = browser.post(f"/workspace/forms/{slug}", {"csrf": browser.csrf})
                assert refused.status_code == 403, (role, slug, refused.status_code)
        wrong = browser.post("/workspace/sign-out", {"csrf": "forged"})
        assert wrong.status_code == 403
        assert browser.get("/workspace").status_code == 200
    assert server.size() == before


# 2. tokens are stored only as salted hashes, compared in constant time ---------------------------


def needles(secret: str, *, hashed_too: bool = True) -> dict[str, bytes]:
    """The forms a secret could take in a store: as text, its bytes in hex and base64, and
    (unless storing that is the design) its unsalted SHA-256."""
    raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    forms = {
        "text": secret.encode(),
        "raw": raw,
        "raw hex": raw.hex().encode(),
        "raw base64": base64.b64encode(raw).rstrip(b"="),
        "raw base64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
    }
    if hashed_too:
        digest = hashlib.sha256(secret.encode()).digest()
        forms["sha256"] = digest
        forms["sha256 hex"] = digest.hex().encode()
        forms["sha256 base64"] = base64.b64encode(digest).rstrip(b"=")
    return forms


def cell_forms(value: Any) -> list[bytes]:
    if value is None:
        return []
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, bytes):
        return [value, value.hex().encode()]
    return [str(value).encode("utf-8", "surrogatepass").lower(), str(value).encode()]


def every_cell(store: Store) -> Iterator[tuple[str, str, Any]]:
    """(table, column, value) for every cell of every table of the store (the read models
    and side tables included)."""
    if store.kind == "sqlite":
        for path in sorted(Path(store.settings.data_dir).rglob("*")):
            if not path.is_file() or path.suffix in (".key", ".log"):
                continue
            if path.read_bytes()[:16] != b"SQLite format 3\x00":
                continue
            db = sqlite3.connect(path)
            try:
                names = db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
                for (table,) in names:
                    cursor = db.execute(f'SELECT * FROM "{table}"')
                    columns = [d[0] for d in cursor.description]
                    for row in cursor:
                        for column, value in zip(columns, row, strict=True):
                            yield f"{path.name}:{table}", column, value
            finally:
                db.close()
        return
    with psycopg.connect(PG_URL, autocommit=True) as db:
        tables = db.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema LIKE %s AND table_type = 'BASE TABLE'",
            (f"{store.schema}%",),
        ).fetchall()
        assert tables
        for schema, table in tables:
            cursor = db.execute(f'SELECT * FROM "{schema}"."{table}"')
            columns = [d.name for d in cursor.description or []]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    yield f"{schema}.{table}", column, value


def test_tokens_are_stored_only_as_salted_hashes(world: World) -> None:
    """Tokens issued directly, over HTTP and by the CLI, and a workspace session: no table
    or column of the store holds a token, its secret in any encoding, or its unsalted
    SHA-256; session cookies only as their SHA-256 (by design), never in the clear."""
    server, store = world.server, world.store
    made = server.client.post(
        "/tokens",
        json={"principal": "http.issued", "role": "recorder"},
        headers=world.auth("admin"),
    )
    assert made.status_code == 201, made.text
    http_token = made.json()["token"]
    cli = subprocess.run(
        [
            *(sys.executable, "-m", "ledger.cli", "tokens", "create"),
            *("--name", "cli.issued", "--org", world.sample.org_ids[0], "--role", "publisher"),
        ],
        cwd=ROOT,
        env=store.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    (cli_token,) = cli.stdout.split()
    tokens = [*world.tokens.values(), http_token, cli_token]
    browser = signed_in(server, world.tokens["recorder"])
    session = browser.cookies["ledger_session"]
    # every token works (so what is stored really is what authenticates them)
    for token in tokens:
        answer = server.client.get(
            f"/documents/{'0' * 64}", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 404, answer.text
    searched: dict[str, bytes] = {}
    for n, token in enumerate(tokens):
        secret = ledger.tokens.parse_token(token)[1]
        searched |= {f"token {n} {k}": v for k, v in needles(secret).items()}
        searched[f"token {n} whole"] = token.encode()
        searched[f"token {n} whole sha256"] = hashlib.sha256(token.encode()).hexdigest().encode()
    searched |= {f"session {k}": v for k, v in needles(session, hashed_too=False).items()}
    cells = 0
    for table, column, value in every_cell(store):
        cells += 1
        for form in cell_forms(value):
            for what, needle in searched.items():
                assert needle not in form, f"{what} found in {table}.{column}"
                assert needle.lower() not in form, f"{what} found in {table}.{column}"
    assert cells > 100


def test_tokens_are_compared_in_constant_time(world: World) -> None:
    """The check uses hmac.compare_digest on salted digests; a wrong secret of the same
    length, a one-character change and a truncation are each refused."""
    assert "hmac.compare_digest(" in inspect.getsource(ledger.tokens.matches)
    assert "matches(" in inspect.getsource(api.auth.look_up_token)
    assert "compare_digest(" in inspect.getsource(api.sessions.check_csrf)
    token = world.tokens["admin"]
    token_id, secret = ledger.tokens.parse_token(token)
    prefix = token[: -len(secret)]
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for wrong in ("x" * len(secret), flipped, secret[:-1], secret + "A"):
        answer = world.server.client.get(
            f"/documents/{'0' * 64}", headers={"Authorization": f"Bearer {prefix}{wrong}"}
        )
        assert answer.status_code == 401, wrong
        assert answer.json()["title"] == "Invalid token"
    answer = world.server.client.get(
        f"/documents/{'0' * 64}", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 404
    assert uuid.UUID(token_id)


# 3. revocation is immediate on every process ------------------------------------------------------


@pytest.fixture
def pg_store(tmp_path: Path) -> Iterator[Store]:
    yield from make_store("postgresql", tmp_path)


def test_revocation_is_immediate_across_processes(pg_store: Store, tmp_path: Path) -> None:
    """Two `ledger serve` processes on one PostgreSQL: a token revoked through one is
    refused by the other on its very next request, API and workspace session alike."""
    sample, tokens, _ = seed(pg_store)
    first = Served(pg_store, tmp_path / "a")
    second = Served(pg_store, tmp_path / "b")
    try:
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        for round_ in range(3):
            made = first.client.post(
                "/tokens",
                json={
                    "principal": f"leaver-{round_}",
                    "org": sample.org_ids[0],
                    "role": "recorder",
                },
                headers=admin,
            )
            assert made.status_code == 201, made.text
            token, token_id = made.json()["token"], made.json()["subject"]["id"]
            auth = {"Authorization": f"Bearer {token}"}
            browser = signed_in(second, token)
            read = f"/meetings/{sample.meeting_id}/attendees"
            assert second.client.get(read, headers=auth).status_code == 200
            revoked = first.client.post(
                f"/tokens/{token_id}/revocation", json={"reason": "left"}, headers=admin
            )
            assert revoked.status_code == 200, revoked.text
            answer = second.client.get(read, headers=auth)
            assert answer.status_code == 401, answer.text
            assert "revoked" in answer.json()["detail"]
            before = second.size()
            write = second.client.post(
                "/processes", json={"title": "After revocation", "summary": "no"}, headers=auth
            )
            assert write.status_code == 401, write.text
            assert second.size() == before
            home = browser.get("/workspace")
            assert home.status_code == 303, home.status_code
            assert home.headers["location"].startswith("/workspace/sign-in")
    finally:
        first.stop()
        second.stop()


# 4. secrets never reach the logs ---------------------------------------------------------------


def test_secrets_never_reach_the_logs(tmp_path: Path) -> None:
    """A whole flow against a server logging at debug: CLI-issued token, writes, workspace
    sign-in with cookie and CSRF, a wrong secret, revocations (HTTP and CLI). Neither the
    server's output nor the CLI's (beyond the one stdout line that shows a new token) holds
    a token, a secret, a session cookie, a CSRF token, an Authorization value or the key."""
    for store in make_store("sqlite", tmp_path):
        sample, tokens, ids = seed(store)
        server = Served(store, tmp_path / "debug", log_level="debug", LEDGER_LOG_LEVEL="debug")
        try:
            flow_without_leaks(World(store, server, sample, tokens, ids))
        finally:
            server.stop()


def flow_without_leaks(world: World) -> None:
    store, server = world.store, world.server
    outputs: list[tuple[str, str]] = []

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "ledger.cli", *args],
            cwd=ROOT,
            env={**store.env(), "LEDGER_LOG_LEVEL": "debug"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append((f"ledger {args[0]} {args[1]} stderr", done.stderr))
        if args[:2] != ("tokens", "create"):  # which shows the new token, once, by design
            outputs.append((f"ledger {args[0]} {args[1]} stdout", done.stdout))
        return done.stdout

    issued = cli(
        "tokens",
        "create",
        "--name",
        "logged",
        "--org",
        world.sample.org_ids[0],
        "--role",
        "recorder",
    )
    (token,) = issued.split()
    auth = {"Authorization": f"Bearer {token}"}
    secrets_seen: dict[str, str] = {"CLI token": token, "admin token": world.tokens["admin"]}
    wrote = server.client.post(
        "/processes", json={"title": "Logged", "summary": "a write"}, headers=auth
    )
    assert wrote.status_code == 201, wrote.text
    wrote = server.client.post(
        "/processes",
        json={"title": "Logged again", "summary": "a retry-safe write"},
        headers={**auth, "Idempotency-Key": "log-test-1"},
    )
    assert wrote.status_code == 201, wrote.text
    _, secret = ledger.tokens.parse_token(token)
    wrong = token[: -len(secret)] + "w" * len(secret)
    secrets_seen["wrong secret"] = wrong
    assert (
        server.client.post(
            "/processes", json={}, headers={"Authorization": f"Bearer {wrong}"}
        ).status_code
        == 401
    )
    assert (
        server.client.get(
            "/workspace", headers={"Cookie": "ledger_session=forged-" + secret}
        ).status_code
        == 303
    )
    browser = Browser(server.client)
    form = browser.get("/workspace/sign-in")
    secrets_seen["sign-in CSRF"] = csrf_of(form.text)
    assert (
        browser.post("/workspace/sign-in", {"token": wrong, "csrf": csrf_of(form.text)}).status_code
        == 401
    )
    browser = signed_in(server, token)
    secrets_seen["session cookie"] = browser.cookies["ledger_session"]
    secrets_seen["session CSRF"] = browser.csrf
    shown = browser.get("/workspace/forms/start-process")
    assert shown.status_code == 200
    posted = browser.post(
        "/workspace/forms/start-process",
        {"csrf": browser.csrf, "title": "From the workspace", "summary": "Signed in"},
    )
    assert posted.status_code < 500, posted.text[:500]
    made = server.client.post(
        "/tokens", json={"principal": "to.revoke", "role": "recorder"}, headers=world.auth("admin")
    )
    assert made.status_code == 201
    secrets_seen["HTTP token"] = made.json()["token"]
    revoked = server.client.post(
        f"/tokens/{made.json()['subject']['id']}/revocation",
        json={"reason": "left"},
        headers=world.auth("admin"),
    )
    assert revoked.status_code == 200
    token_id = str(uuid.UUID(token.split("_")[1]))
    cli("tokens", "revoke", token_id, "--reason", "rotated")
    assert server.client.get("/workspace", headers=browser._cookie_header()).status_code == 303
    cli("tokens", "list")
    signer = load_signer(store.settings)
    assert signer is not None
    key_text = Path(store.settings.signing_key_file or "").read_text()
    seed_bytes = signer.private_bytes() if hasattr(signer, "private_bytes") else b""
    material = {
        "signing key file": key_text.strip(),
        **{
            f"signing key line {n}": line
            for n, line in enumerate(key_text.splitlines())
            if len(line) > 20 and "-----" not in line
        },
        "signing key seed hex": seed_bytes.hex(),
        "signing key seed base64": base64.b64encode(seed_bytes).decode().rstrip("="),
    }
    server.stop()
    log = server.output()
    # the request log is there, so the flow was logged (at debug: everything there is)
    for logged in ("POST /processes 201", "POST /processes 401", "POST /workspace/sign-in 303"):
        assert logged in log, logged
    outputs.append(("server", log))
    for where, text in outputs:
        for what, value in {**secrets_seen, **material}.items():
            if not value:
                continue
            assert value not in text, f"{what} appears in the {where} output"
            _, _, tail = value.rpartition("_")
            if len(tail) >= 20:
                assert tail not in text, f"the secret part of the {what} appears in {where}"
        assert "Bearer olt_" not in text, where
    # The CLI shows a new token exactly once, on stdout, and nowhere else.
    assert issued.strip() == token


# 5. security headers on every page -------------------------------------------------------------


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "action") and value:
                self.links.append(value)


def page_header_problems(answer: httpx.Response) -> list[str]:
    """What is wrong with a page's security headers (empty: nothing)."""
    problems = []
    headers = answer.headers
    csp = headers.get("content-security-policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    if not csp:
        problems.append("no Content-Security-Policy")
    for name in ("script-src", "style-src"):
        effective = directives.get(name, directives.get("default-src", ""))
        if not effective:
            problems.append(f"no {name} (nor default-src)")
        if "unsafe-inline" in effective or "unsafe-eval" in effective:
            problems.append(f"{name} allows unsafe-inline/eval")
    if directives.get("frame-ancestors") != "frame-ancestors 'none'":
        problems.append("frame-ancestors is not 'none'")
    if headers.get("x-frame-options", "").upper() != "DENY":
        problems.append("X-Frame-Options is not DENY")
    if headers.get("x-content-type-options", "").lower() != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if headers.get("referrer-policy", "").lower() not in (
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    ):
        problems.append(f"Referrer-Policy is {headers.get('referrer-policy')!r}")
    return problems


STATIC = ("/static/site.css", "/static/verify.js", "/workspace/static/workspace.css")

# FastAPI's interactive API documentation (Swagger UI and ReDoc) loads its scripts from a
# CDN with an inline bootstrap; it is developer documentation, not one of the site's pages.
NOT_SITE_PAGES = {"/docs", "/redoc", "/docs/oauth2-redirect"}


def crawl(
    get: Any, starts: list[str], prefixes: tuple[str, ...], limit: int
) -> dict[str, httpx.Response]:
    """GET every same-site page reachable from ``starts`` under ``prefixes`` (one URL per
    path and query-parameter names, so paging and as_of variants are sampled, not walked)."""
    seen: dict[str, httpx.Response] = {}
    shapes: set[tuple[str, tuple[str, ...]]] = set()
    queue = list(starts)
    while queue and len(seen) < limit:
        url = queue.pop(0)
        parts = urlsplit(url)
        shape = (parts.path, tuple(sorted(k.split("=")[0] for k in parts.query.split("&") if k)))
        if url in seen or shape in shapes:
            continue
        shapes.add(shape)
        answer = get(url)
        seen[url] = answer
        if not answer.headers.get("content-type", "").startswith("text/html"):
            continue
        parser = Links()
        parser.feed(answer.text)
        for link in parser.links:
            target = urlsplit(urljoin(url, link))
            if target.netloc or target.scheme:
                continue
            path = target.path + (f"?{target.query}" if target.query else "")
            if path.startswith(prefixes) and path not in seen:
                queue.append(path)
    return seen


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp_path = tmp_path_factory.mktemp("headers")
    for store in make_store("sqlite", tmp_path):
        app = LedgerApplication(store.settings)
        try:
            summary = record_demo(app)
            tokens = {
                role: app.issue_token(principal=f"{role}.headers", org="", role=role, actor=SETUP)[
                    1
                ]
                for role in ROLES
            }
        finally:
            app.close()
        server = Served(store, tmp_path / "logs")
        try:
            deadline = time.monotonic() + 30
            while (
                server.client.get("/timeline?limit=1").json()["as_of_index"] < summary.entries - 1
            ):
                assert time.monotonic() < deadline, "the read models never caught up"
                time.sleep(0.1)
            yield World(store, server, Sample(), tokens, {})
        finally:
            server.stop()


def test_security_headers_on_every_page(demo_site: World) -> None:
    """Every public page of the demo (crawled from the home page: lists, every proposal,
    meeting, organisation, publication, history, comparison, search, audit), error pages,
    and every workspace page each role can reach carry CSP without unsafe-inline,
    frame-ancestors 'none', X-Frame-Options DENY, nosniff and a Referrer-Policy."""
    server = demo_site.server
    public = crawl(
        server.client.get,
        [
            "/",
            "/web/proposals",
            "/web/meetings",
            "/web/organisations",
            "/web/publications",
            "/web/search?q=data",
            "/web/audit",
        ],
        ("/web", "/?", "/feeds"),
        limit=400,
    )
    errors = {
        url: server.client.get(url)
        for url in (
            "/web/nope",
            f"/web/proposals/{uuid.uuid4()}",
            "/web/proposals?as_of=banana",
            "/web/search?q=" + "x" * 2000,
            "/web/proposals/" + "a" * 500,
        )
    }
    pages = {**public, **errors}
    html = {
        u: a for u, a in pages.items() if a.headers.get("content-type", "").startswith("text/html")
    }
    assert len(html) >= 60, sorted(html)
    kinds = {urlsplit(u).path.split("/")[2] if u.startswith("/web/") else u for u in html}
    assert {"proposals", "meetings", "organisations", "publications", "audit"} <= kinds
    for role, token in demo_site.tokens.items():
        browser = Browser(server.client)
        sign_in_page = browser.get("/workspace/sign-in")
        html[f"{role}: /workspace/sign-in"] = sign_in_page
        answer = browser.sign_in(token)
        html[f"{role}: sign-in redirect"] = answer
        reachable = crawl(browser.get, ["/workspace"], ("/workspace",), limit=80)
        assert len(reachable) >= 3, sorted(reachable)
        for url, page in reachable.items():
            if page.headers.get("content-type", "").startswith("text/html") or page.is_redirect:
                html[f"{role}: {url}"] = page
        for slug in FORMS:
            html[f"{role}: form {slug}"] = browser.get(f"/workspace/forms/{slug}")
        html[f"{role}: refused csrf"] = browser.post(
            "/workspace/forms/start-process", {"csrf": "x"}
        )
    failures = {
        url: problems
        for url, answer in html.items()
        if urlsplit(url.split(": ")[-1]).path not in NOT_SITE_PAGES
        and (problems := page_header_problems(answer))
    }
    assert not failures, failures
    # Non-HTML answers of the site are not sniffed either.
    for path in ("/feeds/log.atom", *STATIC):
        answer = server.client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers.get("x-content-type-options") == "nosniff", path
