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
from uuid import UUID, uuid4

from ledger.errors import InvalidInputError

__all__ = ["PREFIX", "NewToken", "matches", "new_token", "parse_token"]

PREFIX = "olt"


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
