"""Checkpoints, signed notes and cosignatures: the service's side of DESIGN §3.

Formats, byte for byte (C2SP signed-note, tlog-checkpoint, tlog-cosignature):

* **checkpoint body**: ``<origin>\\n<tree size>\\n<base64 root>\\n`` followed by optional
  non-empty extension lines, each ending in ``\\n`` (:class:`Checkpoint`);
* **signed note**: the body, one blank line, then one line per signature,
  ``— <key name> <base64(key id || signature)>\\n`` (U+2014 EM DASH, then a space);
* **key id**: ``SHA-256(<key name> || 0x0A || <key type> || public key)[:4]``, key type
  ``0x01`` for the log's Ed25519 key and ``0x04`` for a witness's Ed25519 cosigning key;
* **verifier key** (vkey): ``<key name>+<8 hex digits of key id>+<base64(key type ||
  public key)>``;
* **cosignature** (``cosignature/v1``): the signature bytes are an 8-byte big-endian POSIX
  timestamp followed by an Ed25519 signature over ``cosignature/v1\\ntime <timestamp>\\n``
  and the checkpoint body.

Verification follows the signed-note rules: signatures from unknown keys (name and key id
not both matching) are ignored; a signature from a known key that fails to verify rejects
the whole note; a note with no verified signature from the wanted key is rejected.

Private keys are stored either as unencrypted PKCS#8 PEM (:meth:`Ed25519Signer.to_pem`;
the key name is kept alongside) or as the one-line signer key of Go's
``golang.org/x/mod/sumdb/note`` (:meth:`Ed25519Signer.to_skey`):
``PRIVATE+KEY+<key name>+<hex key id>+<base64(0x01 || 32-byte seed)>``.

The independent auditor (``ledger/audit``) re-implements the verifying half of this module
on purpose; the unit tests check that the two agree.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger.errors import InvalidInputError
from ledger.merkle import HASH_SIZE

__all__ = [
    "COSIGNATURE_HEADER",
    "COSIGNATURE_KEY_TYPE",
    "ED25519_KEY_TYPE",
    "MAX_SIGNATURES",
    "MAX_TIMESTAMP",
    "MAX_TREE_SIZE",
    "Checkpoint",
    "CheckpointError",
    "CosignatureSigner",
    "CosignatureVerifier",
    "Ed25519Signer",
    "Ed25519Verifier",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "add_signatures",
    "check_key_name",
    "cosignature_message",
    "key_id",
    "parse_note",
    "sign_note",
    "verify_cosignatures",
    "verify_note",
]

ED25519_KEY_TYPE = 0x01
"""Signature type byte of plain Ed25519 note signatures (signed-note)."""

COSIGNATURE_KEY_TYPE = 0x04
"""Signature type byte of timestamped Ed25519 cosignatures (tlog-cosignature v1)."""

COSIGNATURE_HEADER = b"cosignature/v1\n"
"""First line of the message an Ed25519 cosignature signs."""

MAX_SIGNATURES = 100
"""Most signature lines a note may carry (signed-note asks verifiers for a limit >= 16)."""

MAX_TREE_SIZE = 2**63 - 1
"""Largest tree size a checkpoint may state (what a signed 64-bit integer holds)."""

MAX_TIMESTAMP = 2**63 - 1
"""Largest cosignature timestamp (tlog-cosignature: MUST NOT exceed 2^63 - 1)."""

_EM_DASH_PREFIX = "\u2014 "
_KEY_ID_SIZE = 4
_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64
_TIMESTAMP_SIZE = 8
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX_KEY_ID = re.compile(r"[0-9a-f]{8}")


class CheckpointError(InvalidInputError):
    """A checkpoint, signed note, key or cosignature is malformed or does not verify."""


# --------------------------------------------------------------------------------------
# Small strict helpers
# --------------------------------------------------------------------------------------


def _b64decode(text: str, what: str) -> bytes:
    """Decode standard, padded base64 and insist on the canonical spelling."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise CheckpointError(f"{what} is not valid base64: {text!r}") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise CheckpointError(f"{what} is not canonical base64: {text!r}")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _check_note_text(text: str, what: str) -> None:
    """Reject ASCII control characters other than newline (signed-note requirement)."""
    for position, char in enumerate(text):
        if char < " " and char != "\n":
            raise CheckpointError(
                f"{what} contains the control character {char!r} at offset {position}"
            )
        if "\ud800" <= char <= "\udfff":
            raise CheckpointError(f"{what} contains a lone surrogate at offset {position}")


def _decode_utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{what} is not valid UTF-8 ({exc.reason} at {exc.start})") from exc


def check_key_name(name: str) -> str:
    """Return ``name`` if it is a valid signed-note key name, else raise CheckpointError.

    A key name is non-empty, contains no Unicode white space, no ``+`` and no control
    characters.
    """
    if not isinstance(name, str) or not name:
        raise CheckpointError("a key name must be a non-empty string")
    for char in name:
        if char.isspace():
            raise CheckpointError(f"key name {name!r} contains white space")
        if char == "+":
            raise CheckpointError(f"key name {name!r} contains '+'")
        if char < " " or char == "\x7f" or "\ud800" <= char <= "\udfff":
            raise CheckpointError(f"key name {name!r} contains a control character")
    return name


def key_id(name: str, key_type: int, public_key: bytes) -> bytes:
    """Return the 4-byte key id SHA-256(name || 0x0A || key_type || public_key)[:4]."""
    check_key_name(name)
    if not 0 <= key_type <= 0xFF:
        raise CheckpointError(f"key type must be one byte, got {key_type}")
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([key_type]) + public_key)
    return digest.digest()[:_KEY_ID_SIZE]


def _format_vkey(name: str, key_type: int, public_key: bytes) -> str:
    hex_id = key_id(name, key_type, public_key).hex()
    return f"{name}+{hex_id}+{_b64encode(bytes([key_type]) + public_key)}"


def _parse_vkey(vkey: str, key_type: int) -> tuple[str, bytes]:
    """Parse ``name+hexid+base64(type || key)`` strictly; return (name, public key)."""
    if not isinstance(vkey, str):
        raise CheckpointError("a verifier key must be a string")
    parts = vkey.split("+", 2)  # base64 may itself contain "+"
    if len(parts) != 3:
        raise CheckpointError(
            f"verifier key must be <name>+<hex key id>+<base64 key>, got {len(parts)} "
            f"'+'-separated parts: {vkey!r}"
        )
    name, hex_id, key64 = parts
    check_key_name(name)
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise CheckpointError(f"verifier key id must be 8 lowercase hex digits, got {hex_id!r}")
    raw = _b64decode(key64, "verifier key material")
    if len(raw) != 1 + _ED25519_KEY_SIZE:
        raise CheckpointError(
            f"verifier key material must be 1 type byte and a {_ED25519_KEY_SIZE}-byte "
            f"Ed25519 key, got {len(raw)} bytes"
        )
    if raw[0] != key_type:
        raise CheckpointError(
            f"verifier key has signature type 0x{raw[0]:02x}, expected 0x{key_type:02x}"
        )
    public_key = raw[1:]
    expected = key_id(name, key_type, public_key).hex()
    if hex_id != expected:
        raise CheckpointError(
            f"verifier key id {hex_id} does not match its name and key (expected {expected})"
        )
    return name, public_key


def _load_public_key(public_key: bytes) -> Ed25519PublicKey:
    if len(public_key) != _ED25519_KEY_SIZE:
        raise CheckpointError(
            f"an Ed25519 public key is {_ED25519_KEY_SIZE} bytes, got {len(public_key)}"
        )
    try:
        return Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError as exc:
        raise CheckpointError(f"not an Ed25519 public key: {exc}") from exc


def _load_private_key(raw: bytes) -> Ed25519PrivateKey:
    if len(raw) != _ED25519_KEY_SIZE:
        raise CheckpointError(
            f"an Ed25519 private key (seed) is {_ED25519_KEY_SIZE} bytes, got {len(raw)}"
        )
    return Ed25519PrivateKey.from_private_bytes(raw)


def _private_key_from_pem(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"not an unencrypted PKCS#8 PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"the PEM key is {type(key).__name__}, not an Ed25519 key")
    return key


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _seed(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes_raw()


# --------------------------------------------------------------------------------------
# Checkpoint body
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint body: origin, tree size, root hash and extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse values that have no valid checkpoint body."""
        if not isinstance(self.origin, str) or not self.origin:
            raise CheckpointError("checkpoint origin must be a non-empty string")
        if "\n" in self.origin:
            raise CheckpointError("checkpoint origin must not contain a newline")
        _check_note_text(self.origin, "checkpoint origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointError(f"checkpoint size must be an integer, got {self.size!r}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint size {self.size} is outside 0..2^63-1")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root must be {HASH_SIZE} bytes")
        for number, line in enumerate(self.extensions, start=4):
            if not isinstance(line, str) or not line:
                raise CheckpointError(f"checkpoint extension line {number} must be non-empty")
            if "\n" in line:
                raise CheckpointError(f"checkpoint extension line {number} contains a newline")
            _check_note_text(line, f"checkpoint extension line {number}")

    def body(self) -> bytes:
        """Return the note text: origin, size, base64 root and extensions, each + ``\\n``."""
        lines = [self.origin, str(self.size), _b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines).encode("utf-8")

    @classmethod
    def parse(cls, body: bytes) -> Checkpoint:
        """Parse a checkpoint body strictly; raise CheckpointError naming the problem."""
        if not isinstance(body, bytes):
            raise CheckpointError("a checkpoint body must be bytes")
        text = _decode_utf8(body, "checkpoint body")
        _check_note_text(text, "checkpoint body")
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint body must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError(
                f"checkpoint body needs origin, size and root lines, got {len(lines)} line(s)"
            )
        for number, line in enumerate(lines, start=1):
            if not line:
                raise CheckpointError(f"checkpoint line {number} is empty")
        origin, size_text, root_text, *extensions = lines
        if not _DECIMAL.fullmatch(size_text):
            raise CheckpointError(
                f"checkpoint size must be a decimal number without leading zeros, got {size_text!r}"
            )
        size = int(size_text)
        if size > MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint size {size_text} is larger than 2^63-1")
        root = _b64decode(root_text, "checkpoint root")
        if len(root) != HASH_SIZE:
            raise CheckpointError(
                f"checkpoint root must decode to {HASH_SIZE} bytes, got {len(root)}"
            )
        return cls(origin, size, root, tuple(extensions))


# --------------------------------------------------------------------------------------
# Signers and verifiers
# --------------------------------------------------------------------------------------


@runtime_checkable
class NoteSigner(Protocol):
    """Anything that can add its signature line to a note."""

    @property
    def name(self) -> str:
        """Key name written in the signature line."""
        ...

    @property
    def key_id(self) -> bytes:
        """4-byte key id written before the signature."""
        ...

    def note_signature(self, text: bytes) -> bytes:
        """Signature bytes (without the key id) for the note text ``text``."""
        ...


@runtime_checkable
class NoteVerifier(Protocol):
    """Anything that can check a signature line of a note."""

    @property
    def name(self) -> str:
        """Key name the signature line must carry."""
        ...

    @property
    def key_id(self) -> bytes:
        """4-byte key id the signature must start with."""
        ...

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if ``signature`` (without the key id) is valid for note text ``message``."""
        ...


class _Ed25519Key:
    """Shared state of the two Ed25519 signer kinds (note signer and cosigner)."""

    key_type: int = ED25519_KEY_TYPE

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        """Wrap ``private_key`` under the key name ``name``."""
        self._name = check_key_name(name)
        self._private_key = private_key
        self._public_key = private_key.public_key().public_bytes_raw()
        self._key_id = key_id(name, self.key_type, self._public_key)

    @property
    def name(self) -> str:
        """The key name."""
        return self._name

    @property
    def key_id(self) -> bytes:
        """The 4-byte key id."""
        return self._key_id

    @property
    def public_key(self) -> bytes:
        """The 32-byte raw Ed25519 public key."""
        return self._public_key

    def private_bytes(self) -> bytes:
        """The 32-byte raw Ed25519 private key (seed). Keep it secret."""
        return _seed(self._private_key)

    def to_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (the key name is not included)."""
        return _pem(self._private_key)

    def to_skey(self) -> str:
        """The private key as ``PRIVATE+KEY+<name>+<hex id>+<base64(type || seed)>``."""
        material = _b64encode(bytes([self.key_type]) + self.private_bytes())
        return f"PRIVATE+KEY+{self._name}+{self._key_id.hex()}+{material}"

    def verifier_key(self) -> str:
        """The public verifier key ``<name>+<hex key id>+<base64(type || public key)>``."""
        return _format_vkey(self._name, self.key_type, self._public_key)

    def __repr__(self) -> str:
        """Name and key id only: never the private key."""
        return f"{type(self).__name__}({self._name}+{self._key_id.hex()})"


def _parse_skey(skey: str, key_type: int) -> tuple[str, Ed25519PrivateKey]:
    parts = skey.strip().split("+", 4)  # base64 may itself contain "+"
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise CheckpointError(
            "a signer key must look like PRIVATE+KEY+<name>+<hex key id>+<base64 key>"
        )
    name, hex_id, material = check_key_name(parts[2]), parts[3], parts[4]
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise CheckpointError(f"signer key id must be 8 lowercase hex digits, got {hex_id!r}")
    raw = _b64decode(material, "signer key material")
    if len(raw) != 1 + _ED25519_KEY_SIZE or raw[0] != key_type:
        raise CheckpointError(
            f"signer key material must be the type byte 0x{key_type:02x} and a 32-byte seed"
        )
    private_key = _load_private_key(raw[1:])
    public_key = private_key.public_key().public_bytes_raw()
    if key_id(name, key_type, public_key).hex() != hex_id:
        raise CheckpointError(f"signer key id {hex_id} does not match its name and key")
    return name, private_key


class Ed25519Signer(_Ed25519Key):
    """The log's Ed25519 note signer (signature type 0x01)."""

    key_type = ED25519_KEY_TYPE

    @classmethod
    def generate(cls, name: str) -> Ed25519Signer:
        """A new random key under ``name``."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, name: str, raw: bytes) -> Ed25519Signer:
        """The key with the 32-byte seed ``raw`` under ``name``."""
        return cls(name, _load_private_key(raw))

    @classmethod
    def from_pem(cls, name: str, pem: bytes) -> Ed25519Signer:
        """The key from unencrypted PKCS#8 PEM under ``name``."""
        return cls(name, _private_key_from_pem(pem))

    @classmethod
    def from_skey(cls, skey: str) -> Ed25519Signer:
        """The key from a ``PRIVATE+KEY+…`` signer key string (name and id checked)."""
        name, private_key = _parse_skey(skey, cls.key_type)
        return cls(name, private_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._private_key.sign(message)

    def note_signature(self, text: bytes) -> bytes:
        """The signature of the note text (NoteSigner protocol)."""
        return self.sign(text)

    def verifier(self) -> Ed25519Verifier:
        """The matching verifier."""
        return Ed25519Verifier(self._name, self._public_key)


class _Ed25519PublicKey:
    key_type: int = ED25519_KEY_TYPE

    def __init__(self, name: str, public_key: bytes) -> None:
        """Wrap the 32-byte raw Ed25519 ``public_key`` under ``name``."""
        self._name = check_key_name(name)
        self._key = _load_public_key(public_key)
        self._public_key = bytes(public_key)
        self._key_id = key_id(name, self.key_type, self._public_key)

    @property
    def name(self) -> str:
        """The key name."""
        return self._name

    @property
    def key_id(self) -> bytes:
        """The 4-byte key id."""
        return self._key_id

    @property
    def public_key(self) -> bytes:
        """The 32-byte raw Ed25519 public key."""
        return self._public_key

    def verifier_key(self) -> str:
        """The verifier key string ``<name>+<hex key id>+<base64(type || public key)>``."""
        return _format_vkey(self._name, self.key_type, self._public_key)

    def _verify_raw(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != _ED25519_SIG_SIZE:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        """Name and key id."""
        return f"{type(self).__name__}({self._name}+{self._key_id.hex()})"


class Ed25519Verifier(_Ed25519PublicKey):
    """Verifies the log's Ed25519 note signatures (signature type 0x01)."""

    key_type = ED25519_KEY_TYPE

    @classmethod
    def from_vkey(cls, vkey: str) -> Ed25519Verifier:
        """Parse a ``<name>+<hex id>+<base64(0x01 || key)>`` verifier key strictly."""
        name, public_key = _parse_vkey(vkey, cls.key_type)
        return cls(name, public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if ``signature`` is a valid Ed25519 signature of ``message``."""
        return self._verify_raw(message, signature)


def cosignature_message(checkpoint_body: bytes, timestamp: int) -> bytes:
    """The message a cosignature/v1 signs: header, ``time <t>`` line, checkpoint body."""
    _check_timestamp(timestamp)
    return COSIGNATURE_HEADER + f"time {timestamp}\n".encode("ascii") + checkpoint_body


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise CheckpointError(f"a cosignature timestamp must be an integer, got {timestamp!r}")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CheckpointError(f"cosignature timestamp {timestamp} is outside 0..2^63-1")


def _unix_now() -> int:
    return int(time.time())


class CosignatureSigner(_Ed25519Key):
    """A witness's timestamped Ed25519 cosigner (tlog-cosignature v1, type 0x04).

    ``clock`` gives the POSIX time used by :meth:`note_signature`; :meth:`cosign` takes it
    explicitly.
    """

    key_type = COSIGNATURE_KEY_TYPE

    def __init__(
        self, name: str, private_key: Ed25519PrivateKey, clock: Callable[[], int] = _unix_now
    ) -> None:
        """Wrap ``private_key`` under ``name``; ``clock`` returns POSIX seconds."""
        super().__init__(name, private_key)
        self._clock = clock

    @classmethod
    def generate(cls, name: str, clock: Callable[[], int] = _unix_now) -> CosignatureSigner:
        """A new random cosigning key under ``name``."""
        return cls(name, Ed25519PrivateKey.generate(), clock)

    @classmethod
    def from_private_bytes(
        cls, name: str, raw: bytes, clock: Callable[[], int] = _unix_now
    ) -> CosignatureSigner:
        """The cosigning key with the 32-byte seed ``raw`` under ``name``."""
        return cls(name, _load_private_key(raw), clock)

    @classmethod
    def from_pem(
        cls, name: str, pem: bytes, clock: Callable[[], int] = _unix_now
    ) -> CosignatureSigner:
        """The cosigning key from unencrypted PKCS#8 PEM under ``name``."""
        return cls(name, _private_key_from_pem(pem), clock)

    @classmethod
    def from_skey(cls, skey: str, clock: Callable[[], int] = _unix_now) -> CosignatureSigner:
        """The cosigning key from a ``PRIVATE+KEY+…`` string with type byte 0x04."""
        name, private_key = _parse_skey(skey, cls.key_type)
        return cls(name, private_key, clock)

    def cosign(self, checkpoint_body: bytes, timestamp: int) -> bytes:
        """Return timestamp (8 bytes, big-endian) || Ed25519 signature of the v1 message.

        The body must be a valid checkpoint: a cosigner only ever vouches for one.
        """
        Checkpoint.parse(checkpoint_body)
        message = cosignature_message(checkpoint_body, timestamp)
        return timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + self._private_key.sign(message)

    def note_signature(self, text: bytes) -> bytes:
        """A cosignature of the note text at the clock's current time (NoteSigner)."""
        return self.cosign(text, self._clock())

    def verifier(self) -> CosignatureVerifier:
        """The matching verifier."""
        return CosignatureVerifier(self._name, self._public_key)


class CosignatureVerifier(_Ed25519PublicKey):
    """Verifies a witness's cosignature/v1 lines (signature type 0x04)."""

    key_type = COSIGNATURE_KEY_TYPE

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        """Parse a ``<name>+<hex id>+<base64(0x04 || key)>`` verifier key strictly."""
        name, public_key = _parse_vkey(vkey, cls.key_type)
        return cls(name, public_key)

    def verify_cosignature(self, checkpoint_body: bytes, signature: bytes) -> int:
        """Return the cosignature's timestamp if it is valid; raise CheckpointError if not."""
        if len(signature) != _TIMESTAMP_SIZE + _ED25519_SIG_SIZE:
            raise CheckpointError(
                f"cosignature by {self._name} must be {_TIMESTAMP_SIZE + _ED25519_SIG_SIZE} "
                f"bytes (timestamp and Ed25519 signature), got {len(signature)}"
            )
        timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
        if timestamp > MAX_TIMESTAMP:
            raise CheckpointError(f"cosignature by {self._name} has a timestamp above 2^63-1")
        message = cosignature_message(checkpoint_body, timestamp)
        if not self._verify_raw(message, signature[_TIMESTAMP_SIZE:]):
            raise CheckpointError(f"cosignature by {self._name} does not verify")
        return timestamp

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if ``signature`` is a valid cosignature of the note text ``message``."""
        try:
            self.verify_cosignature(message, signature)
        except CheckpointError:
            return False
        return True


# --------------------------------------------------------------------------------------
# Signed notes
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note: key name, 4-byte key id and signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """The signature line, ``— <name> <base64(key id || signature)>``, no newline."""
        return f"{_EM_DASH_PREFIX}{self.name} {_b64encode(self.key_id + self.signature)}"


def _parse_signature_line(line: str, number: int) -> NoteSignature:
    if not line.startswith(_EM_DASH_PREFIX):
        raise CheckpointError(
            f"signature line {number} must start with an em dash (U+2014) and a space: "
            f"{line[:40]!r}"
        )
    rest = line[len(_EM_DASH_PREFIX) :]
    name, separator, encoded = rest.partition(" ")
    if not separator:
        raise CheckpointError(f"signature line {number} has no space between name and signature")
    try:
        check_key_name(name)
    except CheckpointError as exc:
        raise CheckpointError(f"signature line {number}: {exc}") from exc
    raw = _b64decode(encoded, f"signature line {number}")
    if len(raw) < _KEY_ID_SIZE + 1:
        raise CheckpointError(
            f"signature line {number} must carry a 4-byte key id and a signature, got "
            f"{len(raw)} bytes"
        )
    return NoteSignature(name, raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:])


def parse_note(text: str | bytes) -> tuple[bytes, list[NoteSignature]]:
    """Split a signed note into its text (body) and signatures, strictly.

    The note must be UTF-8 without control characters other than newline; the body ends
    with a newline and is followed by exactly one blank line, then 1 to 100 signature
    lines, each ending with a newline. Nothing is verified here.
    """
    if isinstance(text, bytes):
        decoded = _decode_utf8(text, "signed note")
    elif isinstance(text, str):
        decoded = text
    else:
        raise CheckpointError("a signed note must be str or bytes")
    _check_note_text(decoded, "signed note")
    split = decoded.rfind("\n\n")
    if split < 0:
        raise CheckpointError("signed note has no blank line between its text and signatures")
    body, block = decoded[: split + 1], decoded[split + 2 :]
    if body.endswith("\n\n") or body == "\n":
        raise CheckpointError(
            "signed note text and signatures must be separated by exactly one blank line"
        )
    if not block:
        raise CheckpointError("signed note has no signature lines")
    if not block.endswith("\n"):
        raise CheckpointError("signed note must end with a newline after the last signature")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(
            f"signed note has {len(lines)} signature lines; at most {MAX_SIGNATURES} are allowed"
        )
    signatures = [_parse_signature_line(line, n) for n, line in enumerate(lines, start=1)]
    return body.encode("utf-8"), signatures


def sign_note(body: bytes, signers: Sequence[NoteSigner]) -> str:
    """Sign the note text ``body`` with every signer; return the signed note."""
    if not isinstance(body, bytes):
        raise CheckpointError("a note body must be bytes")
    text = _decode_utf8(body, "note body")
    _check_note_text(text, "note body")
    if not text.endswith("\n") or text.endswith("\n\n") or text == "\n":
        raise CheckpointError("a note body must end with exactly one newline")
    if not signers:
        raise CheckpointError("a signed note needs at least one signer")
    if len(signers) > MAX_SIGNATURES:
        raise CheckpointError(f"at most {MAX_SIGNATURES} signatures fit in a note")
    lines = []
    for signer in signers:
        name = check_key_name(signer.name)
        signature = NoteSignature(name, signer.key_id, signer.note_signature(body))
        lines.append(signature.line() + "\n")
    return text + "\n" + "".join(lines)


def add_signatures(note: str, extra_lines: Sequence[str]) -> str:
    """Append signature lines (e.g. witness cosignatures) to a signed note.

    Each extra line is parsed strictly (a trailing newline is optional). A line whose key
    (name and key id) already signed the note replaces that key's line; identical lines
    are kept once. Nothing is verified: check the result with :func:`verify_note` or
    :func:`verify_cosignatures`.
    """
    body, signatures = parse_note(note)
    keyed: dict[tuple[str, bytes], NoteSignature] = {}
    for signature in signatures:
        keyed.setdefault((signature.name, signature.key_id), signature)
    for number, line in enumerate(extra_lines, start=1):
        if not isinstance(line, str):
            raise CheckpointError(f"extra signature line {number} must be a string")
        bare = line[:-1] if line.endswith("\n") else line
        if "\n" in bare:
            raise CheckpointError(f"extra signature line {number} spans more than one line")
        _check_note_text(bare, f"extra signature line {number}")
        signature = _parse_signature_line(bare, number)
        keyed[(signature.name, signature.key_id)] = signature
    if len(keyed) > MAX_SIGNATURES:
        raise CheckpointError(
            f"the note would carry {len(keyed)} signatures; at most {MAX_SIGNATURES} fit"
        )
    return body.decode("utf-8") + "\n" + "".join(s.line() + "\n" for s in keyed.values())


def _matching(signatures: list[NoteSignature], verifier: NoteVerifier) -> list[NoteSignature]:
    return [s for s in signatures if s.name == verifier.name and s.key_id == verifier.key_id]


def verify_note(text: str | bytes, verifier: NoteVerifier) -> Checkpoint:
    """Verify the note's signature by ``verifier`` and return its checkpoint.

    Signatures by other keys are ignored. Raises CheckpointError if no signature by the
    verifier's key (name and key id) is present, if one of them does not verify, or if
    the verified text is not a valid checkpoint body.
    """
    body, signatures = parse_note(text)
    mine = _matching(signatures, verifier)
    label = f"{verifier.name}+{verifier.key_id.hex()}"
    if not mine:
        raise CheckpointError(f"the note carries no signature by the key {label}")
    for signature in mine:
        if not verifier.verify(body, signature.signature):
            raise CheckpointError(f"the signature by the key {label} does not verify")
    return Checkpoint.parse(body)


def verify_cosignatures(
    text: str | bytes, verifiers: Sequence[CosignatureVerifier], quorum: int
) -> dict[str, int]:
    """Verify witness cosignatures; return {witness name: timestamp} for the valid ones.

    Unknown signatures are ignored; a cosignature line from a known witness that does not
    verify rejects the note. Raises CheckpointError if fewer than ``quorum`` of the given
    witnesses cosigned, or if the note text is not a checkpoint.
    """
    if isinstance(quorum, bool) or not isinstance(quorum, int) or quorum < 0:
        raise CheckpointError(f"quorum must be a non-negative integer, got {quorum!r}")
    if quorum > len(verifiers):
        raise CheckpointError(f"quorum {quorum} is larger than the {len(verifiers)} witnesses")
    keys = [(v.name, v.key_id) for v in verifiers]
    if len(set(keys)) != len(keys):
        raise CheckpointError("two witnesses share a key name and key id")
    if len({v.name for v in verifiers}) != len(verifiers):
        raise CheckpointError("two witnesses share a key name")
    body, signatures = parse_note(text)
    Checkpoint.parse(body)
    cosigned: dict[str, int] = {}
    for verifier in verifiers:
        for signature in _matching(signatures, verifier):
            timestamp = verifier.verify_cosignature(body, signature.signature)
            cosigned.setdefault(verifier.name, timestamp)
    if len(cosigned) < quorum:
        raise CheckpointError(
            f"only {len(cosigned)} of the required {quorum} witness cosignatures are present "
            "and valid"
        )
    return cosigned
