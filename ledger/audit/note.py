"""Signed notes, checkpoints, verifier keys and cosignatures, for the auditor alone.

The rules, in the order a verifier applies them (docs/VERIFYING.md has the same list):

1. A signed note is UTF-8 with no control characters other than newline. It is split at
   its last blank line: before it the text (ending in a newline; we also refuse a text
   that itself ends in a blank line), after it 1 to 100 signature lines, each
   ``— <key name> <base64(4-byte key id || signature)>`` and a newline, where ``—`` is
   U+2014 and base64 is standard and padded.
2. A verifier key is ``<key name>+<8 lowercase hex digits of key id>+<base64(type byte ||
   32-byte Ed25519 public key)>``; the key id must equal
   ``SHA-256(key name || 0x0A || type byte || public key)[:4]``. Type 0x01 is the log's
   note signature, 0x04 a witness's cosignature/v1.
3. Signature lines whose (name, key id) match no trusted key are ignored. A matching line
   that does not verify rejects the note; so does the absence of any matching line.
4. The log's signature is Ed25519 over the note text. A cosignature is 8 bytes of
   big-endian POSIX time then an Ed25519 signature over
   ``cosignature/v1\\ntime <decimal time>\\n`` followed by the note text.
5. The verified text must be a checkpoint: origin, decimal size without leading zeros,
   base64 32-byte root, then optional non-empty extension lines, each ending in newline.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.audit.errors import NoteError

__all__ = [
    "COSIGNATURE_KEY_TYPE",
    "ED25519_KEY_TYPE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "NoteSignature",
    "VerifierKey",
    "key_id",
    "parse_checkpoint",
    "parse_note",
    "parse_vkey",
    "verify_checkpoint",
    "verify_cosignatures",
]

ED25519_KEY_TYPE = 0x01
COSIGNATURE_KEY_TYPE = 0x04
MAX_SIGNATURES = 100
_MAX_INT63 = 2**63 - 1
_ROOT_SIZE = 32
_KEY_SIZE = 32
_SIGNATURE_SIZE = 64
_DASH = "\u2014 "
_SIZE_LINE = re.compile(r"0|[1-9][0-9]*")
_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")


def _strict_b64(text: str, what: str) -> bytes:
    """Standard padded base64 in its one canonical spelling, or NoteError."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise NoteError(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


def _no_controls(text: str, what: str) -> None:
    for offset, char in enumerate(text):
        if char < " " and char != "\n":
            raise NoteError(f"{what} contains the control character {char!r} at offset {offset}")


def _valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() or c == "+" or c < " " or c == "\x7f" for c in name)


def key_id(name: str, key_type: int, public_key: bytes) -> bytes:
    """SHA-256(key name || 0x0A || key type byte || public key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([key_type]) + public_key).digest()[
        :4
    ]


# --------------------------------------------------------------------------------------
# Checkpoint body
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The three mandatory lines of a checkpoint and its extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()


def parse_checkpoint(body: bytes) -> Checkpoint:
    """Parse a checkpoint body strictly (rule 5); raise NoteError naming the problem."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError("checkpoint is not valid UTF-8") from exc
    _no_controls(text, "checkpoint")
    if not text.endswith("\n"):
        raise NoteError("checkpoint must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError(f"checkpoint needs origin, size and root lines, got {len(lines)}")
    for number, line in enumerate(lines, start=1):
        if not line:
            raise NoteError(f"checkpoint line {number} is empty")
    origin, size_line, root_line, *extensions = lines
    if not _SIZE_LINE.fullmatch(size_line):
        raise NoteError(f"checkpoint size {size_line!r} is not a decimal without leading zeros")
    size = int(size_line)
    if size > _MAX_INT63:
        raise NoteError(f"checkpoint size {size_line} is larger than 2^63-1")
    root = _strict_b64(root_line, "checkpoint root")
    if len(root) != _ROOT_SIZE:
        raise NoteError(f"checkpoint root is {len(root)} bytes, not {_ROOT_SIZE}")
    return Checkpoint(origin, size, root, tuple(extensions))


# --------------------------------------------------------------------------------------
# Signed note
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key id, signature bytes."""

    name: str
    key_id: bytes
    signature: bytes


def parse_note(note: str | bytes) -> tuple[bytes, list[NoteSignature]]:
    """Split a signed note into its text and its signature lines (rule 1); verify nothing."""
    if isinstance(note, bytes):
        try:
            text = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("signed note is not valid UTF-8") from exc
    else:
        text = note
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise NoteError("signed note is not valid UTF-8") from exc
    _no_controls(text, "signed note")
    cut = text.rfind("\n\n")
    if cut < 0:
        raise NoteError("signed note has no blank line before its signatures")
    body, block = text[: cut + 1], text[cut + 2 :]
    if body == "\n" or body.endswith("\n\n"):
        raise NoteError("signed note must have exactly one blank line before its signatures")
    if not block or not block.endswith("\n"):
        raise NoteError("signed note must end with signature lines, each ending in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"signed note has {len(lines)} signature lines, more than 100")
    signatures = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith(_DASH):
            raise NoteError(f"signature line {number} does not start with '— ' (U+2014, space)")
        name, space, encoded = line[len(_DASH) :].partition(" ")
        if not space or not _valid_name(name):
            raise NoteError(f"signature line {number} has no valid key name")
        raw = _strict_b64(encoded, f"signature line {number}")
        if len(raw) < 5:
            raise NoteError(f"signature line {number} is too short for a key id and signature")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    return body.encode("utf-8"), signatures


# --------------------------------------------------------------------------------------
# Verifier keys
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifierKey:
    """A parsed verifier key: name, type byte, key id and raw Ed25519 public key."""

    name: str
    key_type: int
    key_id: bytes
    public_key: bytes

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if ``signature`` is a valid Ed25519 signature of ``message`` by this key."""
        if len(signature) != _SIGNATURE_SIZE:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def verify_cosignature(self, body: bytes, signature: bytes) -> int:
        """The timestamp of a valid cosignature/v1 of ``body``; NoteError otherwise."""
        if len(signature) != 8 + _SIGNATURE_SIZE:
            raise NoteError(f"cosignature by {self.name} is {len(signature)} bytes, not 72")
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > _MAX_INT63:
            raise NoteError(f"cosignature by {self.name} has a timestamp above 2^63-1")
        message = b"cosignature/v1\ntime " + str(timestamp).encode("ascii") + b"\n" + body
        if not self.verify(message, signature[8:]):
            raise NoteError(f"cosignature by {self.name} does not verify")
        return timestamp

    def label(self) -> str:
        """``name+hexid``, the way errors name a key."""
        return f"{self.name}+{self.key_id.hex()}"

    def vkey(self) -> str:
        """The verifier key string ``name+hexid+base64(type || key)``."""
        material = base64.b64encode(bytes([self.key_type]) + self.public_key).decode("ascii")
        return f"{self.label()}+{material}"


def parse_vkey(vkey: str, key_type: int = ED25519_KEY_TYPE) -> VerifierKey:
    """Parse a verifier key of the given type byte strictly (rule 2)."""
    # The name and the hex key id contain no "+", but base64 may: split twice only.
    parts = vkey.split("+", 2) if isinstance(vkey, str) else []
    if len(parts) != 3:
        raise NoteError("verifier key must be <name>+<hex key id>+<base64 key>")
    name, hex_id, encoded = parts
    if not _valid_name(name):
        raise NoteError(f"verifier key name {name!r} is empty or has spaces or control characters")
    if not _KEY_ID_HEX.fullmatch(hex_id):
        raise NoteError(f"verifier key id {hex_id!r} is not 8 lowercase hex digits")
    raw = _strict_b64(encoded, "verifier key")
    if len(raw) != 1 + _KEY_SIZE:
        raise NoteError(f"verifier key material is {len(raw)} bytes, not 33")
    if raw[0] != key_type:
        raise NoteError(f"verifier key has type 0x{raw[0]:02x}, expected 0x{key_type:02x}")
    public_key = raw[1:]
    if key_id(name, key_type, public_key).hex() != hex_id:
        raise NoteError(f"verifier key id {hex_id} does not match its name and public key")
    try:
        Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError as exc:
        raise NoteError("verifier key is not an Ed25519 public key") from exc
    return VerifierKey(name, key_type, bytes.fromhex(hex_id), public_key)


# --------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------


def _signed_by(signatures: list[NoteSignature], key: VerifierKey) -> list[NoteSignature]:
    return [s for s in signatures if s.name == key.name and s.key_id == key.key_id]


def verify_checkpoint(note: str | bytes, log_key: VerifierKey) -> Checkpoint:
    """Verify the log's signature on ``note`` (rules 1, 3, 4) and parse its checkpoint."""
    if log_key.key_type != ED25519_KEY_TYPE:
        raise NoteError(f"the log key must have type 0x01, not 0x{log_key.key_type:02x}")
    body, signatures = parse_note(note)
    mine = _signed_by(signatures, log_key)
    if not mine:
        raise NoteError(f"the checkpoint is not signed by the log key {log_key.label()}")
    for signature in mine:
        if not log_key.verify(body, signature.signature):
            raise NoteError(f"the log signature by {log_key.label()} does not verify")
    return parse_checkpoint(body)


def verify_cosignatures(
    note: str | bytes, witnesses: Sequence[VerifierKey], quorum: int
) -> dict[str, int]:
    """Check cosignatures; return {witness name: timestamp}; NoteError below ``quorum``."""
    if quorum < 0 or quorum > len(witnesses):
        raise NoteError(f"quorum {quorum} must be between 0 and {len(witnesses)} witnesses")
    if len({w.name for w in witnesses}) != len(witnesses):
        raise NoteError("two witness keys share a name")
    for witness in witnesses:
        if witness.key_type != COSIGNATURE_KEY_TYPE:
            raise NoteError(f"witness key {witness.label()} must have type 0x04")
    body, signatures = parse_note(note)
    parse_checkpoint(body)
    cosigned: dict[str, int] = {}
    for witness in witnesses:
        for signature in _signed_by(signatures, witness):
            timestamp = witness.verify_cosignature(body, signature.signature)
            cosigned.setdefault(witness.name, timestamp)
    if len(cosigned) < quorum:
        raise NoteError(
            f"{len(cosigned)} valid witness cosignature(s), fewer than the quorum of {quorum}"
        )
    return cosigned
