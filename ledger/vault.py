"""Personal data, encrypted per person so it can be erased from an append-only log.

Entries never change, so personal data (an individual attendee's name, a consultation
respondent's contact details) cannot be deleted from them. Instead it is written only as
ciphertext under a *data key* of that person's own; erasing the person destroys the key,
and every copy of the ciphertext — in the log, in backups, in read models — becomes noise.

* A data key is 256 random bits, used with AES-256-GCM; each sealed value has its own
  96-bit random nonce, and is bound (as associated data) to the person and key it belongs to,
  so a ciphertext cannot be moved to another person.
* Data keys are stored *wrapped* (AES-256-GCM under the master key), beside the log, never in
  it. The master key lives outside the database (a file or a secret store), so a copy of the
  database alone reveals nothing.
* Erasure deletes the wrapped key. A person can be given a new key afterwards (a new key id),
  which never opens what was sealed under the old one.

This module is storage-agnostic: a ``KeyStore`` keeps the wrapped keys.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.errors import InvalidInputError, LedgerError

__all__ = [
    "ErasedError",
    "KeyStore",
    "MemoryKeyStore",
    "NoMasterKeyError",
    "Sealed",
    "Vault",
    "check_person_id",
    "new_master_key",
]

_WRAP_AAD = b"open-policy-ledger data key v1\n"
_SEAL_AAD = b"open-policy-ledger personal data v1\n"


class ErasedError(LedgerError):
    """The person's data key was destroyed: what was sealed under it cannot be read."""


class NoMasterKeyError(InvalidInputError):
    """This ledger has no master key, so it refuses personal data (everything else works)."""

    def __init__(self) -> None:
        super().__init__(
            "this ledger is not configured to record personal data: create a master key with "
            "`ledger keys init-master --out FILE` and set LEDGER_MASTER_KEY_FILE"
        )


_OPAQUE_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


def check_person_id(value: Any) -> str:
    """A person id as entries may show it: a UUID (canonical form) or an opaque id.

    The id is the reference to the person's data key and stays in the log after erasure, so
    it must not itself be personal: an e-mail address, a name or a handle is refused. An
    opaque id is 16–64 letters, digits, ``-`` or ``_`` with at least one digit (a random
    reference from the official's own records, say).
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError("person_id must be a UUID or an opaque id")
    try:
        return str(UUID(value))
    except ValueError:
        pass
    if "@" in value:
        raise InvalidInputError(
            "person_id looks like an e-mail address: it stays in the log after erasure, so "
            "use a UUID or an opaque id"
        )
    if not _OPAQUE_ID.fullmatch(value) or not any(c.isdigit() for c in value):
        raise InvalidInputError(
            "person_id must be a UUID or an opaque id (16-64 letters, digits, - or _, with at "
            "least one digit): it stays in the log after erasure, so it must not be personal"
        )
    return value


class KeyStore(Protocol):
    """Where wrapped data keys live (beside the log, never in it)."""

    def get_key(self, person_id: str, key_id: str) -> bytes | None: ...

    def current_key(self, person_id: str) -> tuple[str, bytes] | None: ...

    def put_key(self, person_id: str, key_id: str, wrapped: bytes) -> None: ...

    def delete_keys(self, person_id: str) -> int: ...


class MemoryKeyStore:
    """A KeyStore in memory (tests, tools)."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], bytes] = {}

    def get_key(self, person_id: str, key_id: str) -> bytes | None:
        return self._keys.get((person_id, key_id))

    def current_key(self, person_id: str) -> tuple[str, bytes] | None:
        for (pid, kid), wrapped in reversed(self._keys.items()):
            if pid == person_id:
                return kid, wrapped
        return None

    def put_key(self, person_id: str, key_id: str, wrapped: bytes) -> None:
        self._keys[(person_id, key_id)] = wrapped

    def delete_keys(self, person_id: str) -> int:
        doomed = [k for k in self._keys if k[0] == person_id]
        for k in doomed:
            del self._keys[k]
        return len(doomed)


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed value as it appears in an entry: JSON strings only (canonical-safe)."""

    person: str
    key_id: str
    nonce: str
    ciphertext: str

    def as_entry(self) -> dict[str, str]:
        return {
            "person": self.person,
            "key_id": self.key_id,
            "nonce": self.nonce,
            "ciphertext": self.ciphertext,
        }

    @classmethod
    def from_entry(cls, value: Any) -> Sealed:
        if not isinstance(value, dict) or set(value) != {"person", "key_id", "nonce", "ciphertext"}:
            raise InvalidInputError("not a sealed personal-data value")
        if not all(isinstance(v, str) for v in value.values()):
            raise InvalidInputError("not a sealed personal-data value")
        return cls(value["person"], value["key_id"], value["nonce"], value["ciphertext"])


def new_master_key() -> bytes:
    """A fresh 256-bit master key (keep it outside the database)."""
    return AESGCM.generate_key(bit_length=256)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise InvalidInputError("malformed sealed value") from None


class Vault:
    """Seals and opens personal data per person; erases a person by destroying their key."""

    def __init__(self, master_key: bytes, keys: KeyStore) -> None:
        if len(master_key) != 32:
            raise InvalidInputError("the master key must be 32 bytes (AES-256)")
        self._master = AESGCM(master_key)
        self._keys = keys

    def _aad(self, person: str, key_id: str) -> bytes:
        return _SEAL_AAD + person.encode("utf-8") + b"\n" + key_id.encode("ascii")

    def _data_key(self, person: str) -> tuple[str, AESGCM]:
        found = self._keys.current_key(person)
        if found is not None:
            key_id, wrapped = found
            return key_id, AESGCM(self._unwrap(person, key_id, wrapped))
        key_id = secrets.token_hex(16)
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(12)
        wrapped = nonce + self._master.encrypt(
            nonce, data_key, _WRAP_AAD + person.encode() + b"\n" + key_id.encode()
        )
        self._keys.put_key(person, key_id, wrapped)
        return key_id, AESGCM(data_key)

    def _unwrap(self, person: str, key_id: str, wrapped: bytes) -> bytes:
        try:
            return self._master.decrypt(
                wrapped[:12], wrapped[12:], _WRAP_AAD + person.encode() + b"\n" + key_id.encode()
            )
        except InvalidTag:
            raise LedgerError(
                f"the data key of {person!r} does not open with this master key"
            ) from None

    def seal(self, person: str, value: Any) -> Sealed:
        """Encrypt a JSON value for ``person`` (creating their data key on first use)."""
        if not isinstance(person, str) or not person.strip():
            raise InvalidInputError("a person id is needed to seal personal data")
        key_id, aead = self._data_key(person)
        nonce = secrets.token_bytes(12)
        ciphertext = aead.encrypt(nonce, orjson.dumps(value), self._aad(person, key_id))
        return Sealed(person, key_id, _b64(nonce), _b64(ciphertext))

    def open(self, sealed: Sealed) -> Any:
        """The sealed value; ErasedError if the person was erased."""
        wrapped = self._keys.get_key(sealed.person, sealed.key_id)
        if wrapped is None:
            raise ErasedError(f"the personal data of {sealed.person!r} was erased")
        aead = AESGCM(self._unwrap(sealed.person, sealed.key_id, wrapped))
        try:
            plain = aead.decrypt(
                _unb64(sealed.nonce),
                _unb64(sealed.ciphertext),
                self._aad(sealed.person, sealed.key_id),
            )
        except InvalidTag:
            raise InvalidInputError("the sealed value was altered") from None
        return orjson.loads(plain)

    def erase(self, person: str) -> int:
        """Destroy every data key of ``person``; how many were destroyed."""
        return self._keys.delete_keys(person)
