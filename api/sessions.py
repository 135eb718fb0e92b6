"""Officials' browser sessions: a token exchanged for an HttpOnly cookie, with CSRF tokens.

Signing in checks an API token once and starts a session: the browser holds a random
256-bit session secret in a ``Secure; HttpOnly; SameSite=Strict`` cookie, the store keeps only
its HMAC under a key kept outside the database (``SideStore.mac``), the token it stands for,
the session's CSRF token and an expiry. The CSRF token is itself an HMAC of the secret, the
token id and the expiry, so a session row inserted or edited with SQL (another token id, a
later expiry) is never honoured. Every request re-checks the token behind the session, so
revoking the token ends its sessions at once.
Every form that changes something carries the session's CSRF token, compared in constant
time (SameSite=Strict already stops cross-site posts in current browsers; this does not rely
on it).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request, Response

from api.auth import Principal
from ledger.actors import Actor
from ledger.storage.side import Session, SideStore

__all__ = [
    "COOKIE",
    "SignedIn",
    "check_csrf",
    "current_official",
    "end_session",
    "start_session",
]

COOKIE = "ledger_session"
_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The official behind a browser session."""

    principal: Principal
    session: Session

    @property
    def csrf(self) -> str:
        return self.session.csrf


def _now() -> datetime:
    return datetime.now(UTC)


def _hash(side: SideStore, secret: str) -> str:
    return side.mac("session", secret)


def _csrf(side: SideStore, secret: str, token_id: str, expires: str) -> str:
    return side.mac("session csrf", secret, token_id, expires)


def start_session(side: SideStore, response: Response, token_id: str, *, hours: float) -> Session:
    """Start a session for an already-authenticated token; set its cookie on ``response``."""
    secret = secrets.token_urlsafe(32)
    now = _now()
    expires = (now + timedelta(hours=hours)).strftime(_TIME)
    session = Session(
        session_hash=_hash(side, secret),
        token_id=token_id,
        csrf=_csrf(side, secret, token_id, expires),
        created=now.strftime(_TIME),
        expires=expires,
    )
    side.create_session(session)
    response.set_cookie(
        COOKIE,
        secret,
        max_age=int(hours * 3600),
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )
    return session


def current_official(request: Request) -> SignedIn | None:
    """The signed-in official, if the request carries a live session whose token is valid."""
    secret = request.cookies.get(COOKIE)
    if not secret or len(secret) > 100:
        return None
    side: SideStore = request.app.state.side
    session = side.session(_hash(side, secret), _now().strftime(_TIME))
    if session is None:
        return None
    expected = _csrf(side, secret, session.token_id, session.expires)
    if not hmac.compare_digest(expected.encode(), session.csrf.encode()):
        logging.getLogger("ledger.security").warning(
            "session row for token %s does not carry its MAC (edited with SQL?): refused",
            session.token_id,
        )
        return None
    stored = side.token(session.token_id)
    if stored is None or stored.revoked_index is not None:
        side.end_session(session.session_hash)
        return None
    actor = Actor(id=stored.principal, role=stored.role, org=stored.org)
    return SignedIn(Principal(stored.token_id, actor), session)


def check_csrf(signed_in: SignedIn, submitted: str | None) -> bool:
    """Whether a form's CSRF token is this session's (constant-time)."""
    return bool(submitted) and hmac.compare_digest(
        signed_in.session.csrf.encode(), str(submitted).encode()
    )


def end_session(request: Request, response: Response) -> None:
    """Sign out: forget the session and clear its cookie."""
    secret = request.cookies.get(COOKIE)
    if secret:
        side: SideStore = request.app.state.side
        side.end_session(_hash(side, secret))
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
