"""Salted commitments: say in the log that something is fixed without saying what it is.

``commitment = SHA-256(salt ‖ value)`` (hex), with a fresh 32-byte random ``salt`` kept beside
the log, never in an entry. Without the salt nobody can confirm a guessed value (the salt is
too long to guess); once the salt is revealed anyone can recompute the commitment from the
value and check it against the entry that recorded it.

Used for embargoed publications (the value is the document's exact bytes; the salt is
revealed by the ``publication.released`` entry) and for who attended a Chatham House or
private meeting (one commitment per attending organisation, the value the organisation's id
as UTF-8; a salt is shown only to an authorised party, as an *attendance proof*).

This module imports nothing from the rest of the ledger: an auditor can copy it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

__all__ = [
    "SALT_BYTES",
    "attendance_commitment",
    "check_attendance_proof",
    "commit",
    "matches",
    "new_salt",
]

SALT_BYTES = 32


def new_salt() -> bytes:
    """A fresh random salt (32 bytes from the operating system's CSPRNG)."""
    return secrets.token_bytes(SALT_BYTES)


def commit(salt: bytes, value: bytes) -> str:
    """The commitment to ``value`` under ``salt``: SHA-256(salt ‖ value), lowercase hex."""
    if len(salt) != SALT_BYTES:
        raise ValueError(f"a salt is {SALT_BYTES} bytes, not {len(salt)}")
    return hashlib.sha256(salt + value).hexdigest()


def matches(commitment: str, salt: bytes | str, value: bytes) -> bool:
    """Whether ``value`` under ``salt`` (bytes, or hex as the log shows it) is ``commitment``."""
    try:
        raw = bytes.fromhex(salt) if isinstance(salt, str) else salt
        return hmac.compare_digest(commit(raw, value), commitment.lower())
    except ValueError:
        return False


def attendance_commitment(salt: bytes, organisation_id: str) -> str:
    """The commitment to one attending organisation: SHA-256(salt ‖ UTF-8 of its id)."""
    return commit(salt, organisation_id.encode("utf-8"))


def check_attendance_proof(entry: bytes | dict[str, Any], proof: dict[str, Any]) -> bool:
    """Whether ``proof`` shows that ``proof["organisation"]`` attended the meeting of ``entry``.

    ``entry`` is the ``meeting.held_in_confidence`` entry (its bytes as served by
    ``/entries/<index>``, or parsed); ``proof`` is what ``GET /meetings/{id}/attendance-proof``
    answered: ``organisation``, ``salt`` (hex) and ``position``, the commitment's place in the
    entry's ``attendance_commitments``. True only if the entry is that meeting's and the
    commitment there is SHA-256(salt ‖ organisation id).
    """
    fields = json.loads(entry) if isinstance(entry, bytes | str) else entry
    if fields.get("type") != "meeting.held_in_confidence":
        return False
    if "meeting_id" in proof and fields.get("subject", {}).get("id") != proof["meeting_id"]:
        return False
    if "index" in proof and fields.get("index") != proof["index"]:
        return False
    commitments = fields.get("data", {}).get("attendance_commitments") or []
    position = proof.get("position")
    if not isinstance(position, int) or isinstance(position, bool):
        return False
    if not 0 <= position < len(commitments):
        return False
    organisation = proof.get("organisation")
    salt = proof.get("salt")
    if not isinstance(organisation, str) or not isinstance(salt, str):
        return False
    return matches(commitments[position], salt, organisation.encode("utf-8"))
