"""Officials' bearer tokens: who is writing, in which role, and how fast.

``Authorization: Bearer olt_<id>_<secret>``. The token is looked up by its id in the store on
every request (so a revocation takes effect at once on every replica), its secret checked
against the salted hash in constant time, and its role against the endpoint's. The token
table is not trusted on its own: the row must agree with the token's issuing entry in the
log (holder, organisation, role; read once per token, then cached), and a revocation entry
in the log revokes it whatever the revocation table says. Each token has a write budget (a
token bucket, per API process): past it, 429 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from fastapi import Request

from api.errors import ProblemError
from ledger.actors import Actor
from ledger.errors import InvalidInputError
from ledger.storage.side import SideStore, StoredToken
from ledger.tokens import matches, parse_token

__all__ = [
    "ADMIN",
    "ANY_OFFICIAL",
    "PUBLISH",
    "RECORD",
    "UPLOAD",
    "Principal",
    "RateLimiter",
    "authenticate",
    "look_up_token",
]

RECORD = frozenset({"recorder", "admin"})
PUBLISH = frozenset({"publisher", "admin"})
UPLOAD = frozenset({"recorder", "publisher", "admin"})
ADMIN = frozenset({"admin"})
ANY_OFFICIAL = UPLOAD

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="open-policy-ledger"'}
log = logging.getLogger("ledger.security")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated official: the token they used and the actor entries will name."""

    token_id: str
    actor: Actor


class RateLimiter:
    """A token bucket per API token: ``rate`` writes a second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one write; 0.0 if allowed, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


def look_up_token(side: SideStore, text: str, *, check_log: bool = True) -> StoredToken | None:
    """The stored token ``text`` names, if its secret matches and (``check_log``) its row
    agrees with its issuing entry (revoked ones included: the caller tells the official
    so); None for anything that is not a valid token."""
    try:
        token_id, secret = parse_token(text)
    except InvalidInputError:
        return None
    stored = side.token_row(token_id)
    if stored is None or not matches(stored.salt, stored.hash, secret):
        return None
    if check_log and side.token_disagreement(stored) is not None:
        return None
    return stored


def authenticate(request: Request, roles: frozenset[str], *, write: bool = True) -> Principal:
    """The official behind the request's bearer token, allowed one of ``roles``."""
    header = request.headers.get("authorization")
    if not header:
        raise ProblemError(
            401,
            "Authentication required",
            "send an API token: Authorization: Bearer <token>",
            headers=_CHALLENGE,
        )
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise ProblemError(
            401,
            "Authentication required",
            "use the Bearer scheme with an API token",
            headers=_CHALLENGE,
        )
    side: SideStore = request.app.state.side
    stored = look_up_token(side, credentials.strip(), check_log=False)
    if stored is None:
        raise ProblemError(
            401, "Invalid token", "that is not a valid API token", headers=_CHALLENGE
        )
    disagreement = side.token_disagreement(stored)
    if disagreement is not None:
        log.warning(
            "token %s refused: its stored row disagrees with the log (%s)",
            stored.token_id,
            disagreement,
        )
        raise ProblemError(
            401,
            "Token does not match the log",
            f"this token's stored record is not what its issuing entry (log index "
            f"{stored.issued_index}) says: {disagreement}; it cannot be used",
            headers=_CHALLENGE,
        )
    if stored.revoked_index is not None:
        raise ProblemError(
            401,
            "Token revoked",
            f"this token was revoked at log index {stored.revoked_index}",
            headers=_CHALLENGE,
        )
    if stored.role not in roles:
        raise ProblemError(
            403,
            "Not allowed",
            f"a {stored.role} token cannot do this; it needs one of: {', '.join(sorted(roles))}",
        )
    if write:
        limiter: RateLimiter = request.app.state.rate_limiter
        wait = limiter.take(stored.token_id)
        if wait > 0:
            raise ProblemError(
                429,
                "Too many writes",
                f"this token may write {limiter.rate:g} times a second (bursts of "
                f"{limiter.burst}); retry after {math.ceil(wait)} s",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
    return Principal(stored.token_id, Actor(id=stored.principal, role=stored.role, org=stored.org))
