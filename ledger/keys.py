"""The log's signing key: create, store, load.

Keys are stored in the signed-note private key format of Go's ``golang.org/x/mod/sumdb/note``
(``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || Ed25519 seed)>``), one line, in a file
readable only by its owner, or passed whole in ``LEDGER_SIGNING_KEY`` (e.g. from a secret
store). The public half is published as the verifier key line of DESIGN §3.
"""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.checkpoint import Checkpoint, Ed25519Signer, sign_note
from ledger.errors import StorageError
from ledger.sequencer import Publisher
from ledger.settings import Settings

__all__ = [
    "CheckpointPublisher",
    "ConfigurationError",
    "create_key_file",
    "create_master_key_file",
    "load_master_key",
    "load_signer",
    "parse_private_key",
    "publisher_for",
    "side_key",
]

_PREFIX = "PRIVATE+KEY+"


class ConfigurationError(StorageError):
    """The service is not configured well enough to run (e.g. no signing key)."""


def parse_private_key(text: str) -> Ed25519Signer:
    """Parse a ``PRIVATE+KEY+…`` line; refuse anything malformed or inconsistent."""
    return Ed25519Signer.from_skey(text)


def create_key_file(path: Path, name: str) -> Ed25519Signer:
    """Create a new key in ``path`` (mode 0600); refuse to overwrite an existing file."""
    signer = Ed25519Signer.generate(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(signer.to_skey() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return signer


def _read_key_file(path: Path, what: str = "signing key") -> str:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigurationError(f"{what} file {path} does not exist") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"{what} file {path} is readable by others; run: chmod 600 {path}")
    return path.read_text()


def load_signer(settings: Settings) -> Ed25519Signer | None:
    """The configured signing key; in demo mode a key kept in the data directory."""
    if settings.signing_key is not None:
        return parse_private_key(settings.signing_key.get_secret_value())
    if settings.signing_key_file is not None:
        return parse_private_key(_read_key_file(settings.signing_key_file))
    if settings.demo:
        demo_key = settings.data_dir / "demo-signing.key"
        if demo_key.exists():
            return parse_private_key(_read_key_file(demo_key))
        return create_key_file(demo_key, settings.log_name)
    return None


def create_master_key_file(path: Path) -> None:
    """Write a new personal-data master key (32 random bytes, base64) to ``path``, mode 0600;
    refuse to overwrite an existing file (that would make every sealed value unreadable)."""
    from ledger.vault import new_master_key

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(new_master_key()).decode("ascii") + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _parse_master_key(path: Path) -> bytes:
    text = _read_key_file(path, "master key").strip()
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigurationError(f"master key file {path} does not hold 32 bytes in base64")
    return key


def load_master_key(settings: Settings) -> bytes | None:
    """The personal-data master key (``LEDGER_MASTER_KEY_FILE``); in demo mode a throwaway
    key kept in the data directory; None when there is none (personal data is refused)."""
    if settings.master_key_file is not None:
        return _parse_master_key(settings.master_key_file)
    if settings.demo:
        demo_key = settings.data_dir / "demo-master.key"
        if not demo_key.exists():
            create_master_key_file(demo_key)
        return _parse_master_key(demo_key)
    return None


_SIDE_KEY_INFO = b"open-policy-ledger side-table MAC key v1"


def side_key(settings: Settings) -> bytes | None:
    """The key that MACs rows beside the log (sessions, uploaders): HKDF-SHA256 of the log's
    signing key, else of the personal-data master key; None when neither is configured.

    It lives outside the database, so a row inserted with SQL never carries a valid MAC.
    Every replica derives the same key; a new signing key ends sessions (sign in again)."""
    signer = load_signer(settings)
    if signer is not None:
        material = signer.to_skey().encode("ascii")
    else:
        master = load_master_key(settings)
        if master is None:
            return None
        material = master
    return HKDF(hashes.SHA256(), 32, salt=None, info=_SIDE_KEY_INFO).derive(material)


class CheckpointPublisher:
    """Signs the checkpoint of each new tree size with the log's key."""

    def __init__(self, origin: str, signer: Ed25519Signer) -> None:
        self._origin = origin
        self._signer = signer
        # The first note is made by the general (checking) sign_note; later ones reuse its
        # validated signature-line prefix, since this runs inside every write transaction.
        probe = sign_note(Checkpoint(origin, 0, bytes(32)).body(), [signer])
        self._line_prefix = probe[probe.index("\n\n") + 2 : probe.rindex(" ") + 1]

    @property
    def key_id(self) -> bytes:
        return self._signer.key_id

    def __call__(self, size: int, root: bytes) -> str:
        body = Checkpoint(self._origin, size, root).body()
        signature = base64.b64encode(self._signer.key_id + self._signer.sign(body)).decode()
        return f"{body.decode()}\n{self._line_prefix}{signature}\n"


def publisher_for(settings: Settings, signer: Ed25519Signer) -> Publisher:
    return CheckpointPublisher(settings.log_name, signer)
