"""Officials' browser sessions: a token exchanged for an HttpOnly cookie, with CSRF tokens.

Signing in checks an API token once and starts a session: the browser holds a random
256-bit session secret in a ``Secure; HttpOnly; SameSite=Strict`` cookie, the store keeps only
its SHA-256, the token it stands for, a per-session CSRF token and an expiry. Every request
re-checks the token behind the session, so revoking the token ends its sessions at once.
Every form that changes something carries the session's CSRF token, compared in constant
time (SameSite=Strict already stops cross-site posts in current browsers; this does not rely
on it).
"""

from __future__ import annotations

import hashlib
import hmac
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


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def start_session(side: SideStore, response: Response, token_id: str, *, hours: float) -> Session:
    """Start a session for an already-authenticated token; set its cookie on ``response``."""
    secret = secrets.token_urlsafe(32)
    now = _now()
    session = Session(
        session_hash=_hash(secret),
        token_id=token_id,
        csrf=secrets.token_urlsafe(32),
        created=now.strftime(_TIME),
        expires=(now + timedelta(hours=hours)).strftime(_TIME),
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
    session = side.session(_hash(secret), _now().strftime(_TIME))
    if session is None:
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
        side.end_session(_hash(secret))
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
