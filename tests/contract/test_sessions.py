"""Browser sessions on both stores: cookie secret never stored, revocation ends sessions,
expiry, sign-out, CSRF."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from api.sessions import COOKIE, check_csrf, current_official, end_session, start_session
from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.storage.side import SideStore
from tests.conftest import Store

ADMIN = Actor("setup", "admin", "")


@pytest.fixture
def world(store: Store) -> Iterator[tuple[TestClient, LedgerApplication, SideStore, str]]:
    app = LedgerApplication(store.settings)
    _, token = app.issue_token(principal="a.official", org="", role="recorder", actor=ADMIN)
    token_id = token.split("_")[1]  # the token id, 32 hex digits
    side = SideStore(store.settings)
    web = FastAPI()
    web.state.side = side

    @web.post("/in")
    def sign_in(response: Response, hours: float = 8.0) -> dict[str, str]:
        stored = next(t for t in side.tokens() if t.token_id.replace("-", "") == token_id)
        session = start_session(side, response, stored.token_id, hours=hours)
        return {"csrf": session.csrf}

    @web.get("/me")
    def me(request: Request) -> dict[str, str | None]:
        who = current_official(request)
        return {"id": who.principal.actor.id if who else None, "csrf": who.csrf if who else None}

    @web.post("/out")
    def sign_out(request: Request, response: Response) -> dict[str, bool]:
        end_session(request, response)
        return {"ok": True}

    try:
        with TestClient(web, base_url="https://testserver") as client:
            yield client, app, side, token
    finally:
        side.close()
        app.close()


def test_sign_in_stores_only_a_hash_and_identifies_the_official(
    world: tuple[TestClient, LedgerApplication, SideStore, str], store: Store
) -> None:
    client, _, side, _ = world
    csrf = client.post("/in").json()["csrf"]
    cookie = client.cookies[COOKIE]
    assert client.get("/me").json() == {"id": "a.official", "csrf": csrf}
    with store.connect() as conn:
        rows = conn.execute("SELECT session_hash FROM ledger_sessions").fetchall()
    # Keyed with a key outside the database, not a bare hash anyone could compute.
    assert [r[0] for r in rows] == [side.mac("session", cookie)]
    assert rows[0][0] != hashlib.sha256(cookie.encode()).hexdigest()
    header = client.post("/in").headers["set-cookie"].lower()
    for flag in ("httponly", "secure", "samesite=strict", "path=/"):
        assert flag in header


def test_revoking_the_token_ends_its_sessions(
    world: tuple[TestClient, LedgerApplication, SideStore, str],
) -> None:
    client, app, side, _ = world
    client.post("/in")
    (stored,) = side.tokens()
    app.revoke_token(stored.token_id, reason="left the department", actor=ADMIN)
    assert client.get("/me").json()["id"] is None


def test_expired_and_signed_out_sessions_are_gone(
    world: tuple[TestClient, LedgerApplication, SideStore, str],
) -> None:
    client, _, side, _ = world
    client.post("/in", params={"hours": -1})
    assert client.get("/me").json()["id"] is None
    assert side.purge_sessions("9999") >= 1
    client.post("/in")
    assert client.get("/me").json()["id"] == "a.official"
    client.post("/out")
    client.cookies.clear()
    assert client.get("/me").json()["id"] is None


def test_forged_or_missing_cookie_is_nobody(
    world: tuple[TestClient, LedgerApplication, SideStore, str],
) -> None:
    client, _, _, _ = world
    client.cookies.set(COOKIE, "x" * 43)
    assert client.get("/me").json()["id"] is None
    client.cookies.set(COOKIE, "y" * 500)
    assert client.get("/me").json()["id"] is None


def test_csrf_is_checked_in_constant_time(
    world: tuple[TestClient, LedgerApplication, SideStore, str],
) -> None:
    client, _, _, _ = world
    csrf = client.post("/in").json()["csrf"]
    request = Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "headers": [(b"cookie", f"{COOKIE}={client.cookies[COOKIE]}".encode())],
            "app": client.app,
        }
    )
    who = current_official(request)
    assert who is not None
    assert check_csrf(who, csrf)
    assert not check_csrf(who, csrf[:-1] + ("A" if csrf[-1] != "A" else "B"))
    assert not check_csrf(who, None)
    assert not check_csrf(who, "")
