"""Officials' bearer API tokens: ``olt_<id>_<secret>``.

The id (a UUID, the token's subject in the log) is public; the secret is 256 random bits,
shown once at issue and stored only as SHA-256(salt ‖ secret) with a per-token random salt.
A slow password hash would add nothing for a 256-bit random secret and would cost every
request; the salt keeps equal secrets (there are none) and precomputed tables useless.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import orjson

from ledger.errors import InvalidInputError, LedgerError

__all__ = [
    "ISSUED",
    "PREFIX",
    "REVOKED",
    "NewToken",
    "TokenRevokedError",
    "issuing_disagreement",
    "matches",
    "new_token",
    "parse_token",
]

PREFIX = "olt"
ISSUED = "access_token.issued"
REVOKED = "access_token.revoked"


class TokenRevokedError(LedgerError):
    """A write by a token whose revocation was committed first (checked under the write
    lock): nothing of it was written."""

    def __init__(self, token_id: str, index: int | None = None) -> None:
        at = f" at log index {index}" if index is not None else ""
        super().__init__(f"this token was revoked{at}: nothing was recorded")
        self.token_id = token_id
        self.index = index


@dataclass(frozen=True, slots=True)
class NewToken:
    token_id: UUID
    secret: str
    salt: bytes
    hash: bytes

    @property
    def text(self) -> str:
        """The bearer token as the official uses it (shown once, never stored)."""
        return f"{PREFIX}_{self.token_id.hex}_{self.secret}"


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode("utf-8")).digest()


def new_token() -> NewToken:
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    return NewToken(uuid4(), secret, salt, _digest(salt, secret))


def parse_token(text: str) -> tuple[str, str]:
    """(token id as a hyphenated UUID, secret); InvalidInputError if it is not a token."""
    prefix, _, rest = text.partition("_")
    token_hex, _, secret = rest.partition("_")
    if prefix != PREFIX or len(token_hex) != 32 or not secret or len(secret) > 128:
        raise InvalidInputError("not an Open Policy Ledger API token")
    try:
        return str(UUID(hex=token_hex)), secret
    except ValueError:
        raise InvalidInputError("not an Open Policy Ledger API token") from None


def matches(salt: bytes, stored_hash: bytes, secret: str) -> bool:
    """Constant-time check of a presented secret against the stored salted hash."""
    return hmac.compare_digest(_digest(salt, secret), stored_hash)


def issuing_disagreement(
    token_id: str, principal: str, org: str, role: str, entry: bytes | None
) -> str | None:
    """Why a stored token row (id, holder, organisation, role) is not what its issuing
    entry says; None when they agree. ``entry`` is the entry at the row's index."""
    if entry is None:
        return "there is no entry at the token's issuing index"
    try:
        fields: Any = orjson.loads(entry)
        kind, subject, data = fields["type"], fields["subject"], fields["data"]
        issued = (str(subject["id"]), str(data["principal"]), str(data["org"]), str(data["role"]))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "the entry at the token's issuing index is not a token's issue"
    if kind != ISSUED:
        return f"the entry at the token's issuing index is a {kind!r} entry, not a token's issue"
    for name, stored, recorded in zip(
        ("token id", "holder", "organisation", "role"),
        (token_id, principal, org, role),
        issued,
        strict=True,
    ):
        if stored != recorded:
            return f"its {name} is not the one its issuing entry records"
    return None
