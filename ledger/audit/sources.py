"""Where the auditor reads a log from: the service over HTTP, or a bundle file.

A :class:`Source` gives three things: the latest signed note, the verbatim entry bytes of
a range of indices in order, and (when it can) a consistency proof between two sizes.

HTTP endpoints (``HttpSource``), all ``GET`` below a base URL:

* ``/checkpoint``: the signed note, ``text/plain; charset=utf-8``;
* ``/entries?start=S&stop=E``: ``application/x-ndjson``, entries S, S+1, … verbatim, each
  followed by ``\\n``; at most 1000 per response (the client asks again for the rest);
* ``/proof/consistency?old=M&new=N``: ``application/json``,
  ``{"old": M, "new": N, "proof": ["<base64 hash>", …]}``.

Bundle file (``BundleSource``, written by :func:`write_bundle`): UTF-8 text; the first
line is a JSON object ``{"format": "open-policy-ledger-bundle/v1", "origin": "<origin>",
"size": N, "public_key": "<vkey>", "checkpoint": "<signed note>"}`` (these keys only);
then exactly N lines, line i+1 holding entry i's bytes; every line ends with ``\\n``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import http.client
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from ledger.audit.errors import AuditError, BundleError, EntryError, NoteError, SourceError
from ledger.audit.merkle import CompactRange, hash_leaf
from ledger.audit.note import (
    ED25519_KEY_TYPE,
    Checkpoint,
    parse_checkpoint,
    parse_note,
    parse_vkey,
    verify_checkpoint,
)

__all__ = [
    "BUNDLE_FORMAT",
    "MAX_ENTRY_BYTES",
    "MAX_PAGE",
    "BundleSource",
    "HttpSource",
    "Source",
    "atomic_write",
    "write_bundle",
]

BUNDLE_FORMAT = "open-policy-ledger-bundle/v1"
MAX_ENTRY_BYTES = 65_535
"""Largest entry the format allows; a longer line is refused before it is buffered."""

MAX_PAGE = 1000
"""Most entries one ``/entries`` response carries."""

_MAX_NOTE_BYTES = 1 << 20
_MAX_PROOF_BYTES = 1 << 16
_MAX_HEADER_BYTES = 1 << 22
_MAX_PROOF_HASHES = 64
_HEADER_KEYS = frozenset({"format", "origin", "size", "public_key", "checkpoint"})
_OPTIONAL_HEADER_KEYS = frozenset({"sealed"})  # {"<size>": note} for key rotations


@runtime_checkable
class Source(Protocol):
    """A log as the auditor sees it."""

    def checkpoint(self) -> bytes:
        """The latest signed note (checkpoint and signatures), verbatim."""
        ...

    def entries(self, start: int, stop: int) -> Iterator[bytes]:
        """Entries ``start`` … ``stop - 1``, verbatim and in index order."""
        ...

    def checkpoint_at(self, size: int) -> bytes | None:
        """The signed checkpoint the log published for ``size``, if the source keeps it."""
        ...

    def consistency_proof(self, old: int, new: int) -> list[bytes] | None:
        """RFC 9162 consistency proof from size ``old`` to ``new``; None if unavailable."""
        ...


def _check_range(start: int, stop: int) -> None:
    for value in (start, stop):
        if isinstance(value, bool) or not isinstance(value, int):
            raise SourceError(f"entry range bounds must be integers, got {value!r}")
    if not 0 <= start <= stop:
        raise SourceError(f"bad entry range [{start}, {stop})")


def _read_line(stream: IO[bytes], index: int, where: str) -> bytes | None:
    """Read one entry line; None at the end; EntryError if it is too long."""
    line = stream.readline(MAX_ENTRY_BYTES + 2)
    if not line:
        return None
    if not line.endswith(b"\n"):
        if len(line) > MAX_ENTRY_BYTES:
            raise EntryError(index, f"is longer than {MAX_ENTRY_BYTES} bytes ({where})")
        raise SourceError(f"entry {index} does not end with a newline ({where})")
    return line[:-1]


# --------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------


class HttpSource:
    """The service's public HTTP endpoints, read with :mod:`urllib.request` only."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        """Read from ``base_url`` (http or https); every request times out after ``timeout``."""
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise SourceError(f"the log URL must be http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        """The base URL."""
        return f"HttpSource({self.base_url!r})"

    @contextlib.contextmanager
    def _get(self, path: str, media_type: str) -> Iterator[IO[bytes]]:
        url = self.base_url + path
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            url, headers={"Accept": media_type, "User-Agent": "open-policy-ledger-audit/1"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                got = response.headers.get_content_type()
                if got != media_type:
                    raise SourceError(f"GET {url}: content type is {got}, expected {media_type}")
                yield response
        except urllib.error.HTTPError as exc:
            exc.close()
            raise SourceError(f"GET {url}: HTTP {exc.code} {exc.reason}") from exc
        except urllib.error.URLError as exc:
            raise SourceError(f"GET {url}: {exc.reason}") from exc
        except (TimeoutError, http.client.HTTPException, OSError) as exc:
            raise SourceError(f"GET {url}: {exc or type(exc).__name__}") from exc

    def _get_small(self, path: str, media_type: str, limit: int) -> bytes:
        with self._get(path, media_type) as response:
            data = response.read(limit + 1)
        if len(data) > limit:
            raise SourceError(f"GET {self.base_url}{path}: response is over {limit} bytes")
        return data

    def checkpoint(self) -> bytes:
        """``GET /checkpoint``: the signed note; SourceError unless it is UTF-8."""
        data = self._get_small("/checkpoint", "text/plain", _MAX_NOTE_BYTES)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(f"GET {self.base_url}/checkpoint: not valid UTF-8") from exc
        return data

    def checkpoint_at(self, size: int) -> bytes:
        """``GET /checkpoint/<size>``: the note published for that tree size."""
        return self._get_small(f"/checkpoint/{int(size)}", "text/plain", _MAX_NOTE_BYTES)

    def entries(self, start: int, stop: int) -> Iterator[bytes]:
        """``GET /entries`` page by page until exactly ``stop - start`` entries came."""
        _check_range(start, stop)
        next_index = start
        while next_index < stop:
            page_start, want = next_index, min(stop, next_index + MAX_PAGE)
            path = f"/entries?start={page_start}&stop={want}"
            got = 0
            with self._get(path, "application/x-ndjson") as response:
                while True:
                    try:
                        line = _read_line(response, next_index, f"GET {self.base_url}{path}")
                    except (TimeoutError, http.client.HTTPException, OSError) as exc:
                        raise SourceError(f"GET {self.base_url}{path}: {exc}") from exc
                    if line is None:
                        break
                    if next_index >= want:
                        raise SourceError(
                            f"GET {self.base_url}{path}: more than the {want - page_start} "
                            "entries asked for"
                        )
                    got += 1
                    next_index += 1
                    yield line
            if got == 0:
                raise SourceError(
                    f"GET {self.base_url}{path}: no entries, but the log should have entries "
                    f"{next_index} to {stop - 1}"
                )

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """``GET /proof/consistency``: the proof hashes; SourceError if malformed."""
        path = f"/proof/consistency?old={old}&new={new}"
        where = f"GET {self.base_url}{path}"
        data = self._get_small(path, "application/json", _MAX_PROOF_BYTES)
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise SourceError(f"{where}: not UTF-8 JSON") from exc
        if not isinstance(document, dict):
            raise SourceError(f"{where}: expected a JSON object")
        for key, expected in (("old", old), ("new", new)):
            value = document.get(key)
            if isinstance(value, bool) or value != expected:
                raise SourceError(f"{where}: {key!r} is {value!r}, expected {expected}")
        proof = document.get("proof")
        if not isinstance(proof, list) or len(proof) > _MAX_PROOF_HASHES:
            raise SourceError(f"{where}: 'proof' must be a list of at most 64 base64 hashes")
        hashes = []
        for position, item in enumerate(proof):
            raw = _b64_hash(item)
            if raw is None:
                raise SourceError(f"{where}: proof element {position} is not a base64 hash")
            hashes.append(raw)
        return hashes


def _b64_hash(item: Any) -> bytes | None:
    if not isinstance(item, str):
        return None
    try:
        raw = base64.b64decode(item.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return None
    if len(raw) != 32 or base64.b64encode(raw).decode("ascii") != item:
        return None
    return raw


# --------------------------------------------------------------------------------------
# Bundle
# --------------------------------------------------------------------------------------


class BundleSource:
    """A bundle file: a JSON header line, then one entry per line. Gives no proofs."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open and check the header of the bundle at ``path``; BundleError if malformed."""
        self.path = Path(path)
        try:
            with self.path.open("rb") as stream:
                line = stream.readline(_MAX_HEADER_BYTES + 1)
        except OSError as exc:
            raise BundleError(f"bundle {self.path}: cannot read ({exc.strerror})") from exc
        if not line.endswith(b"\n"):
            raise BundleError(f"bundle {self.path}: the first line (JSON header) is missing")
        try:
            header = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BundleError(f"bundle {self.path}: the header is not UTF-8 JSON") from exc
        if not isinstance(header, dict) or not (
            _HEADER_KEYS <= set(header) <= _HEADER_KEYS | _OPTIONAL_HEADER_KEYS
        ):
            raise BundleError(
                f"bundle {self.path}: the header must be an object with exactly the keys "
                f"{sorted(_HEADER_KEYS)}"
            )
        if header["format"] != BUNDLE_FORMAT:
            raise BundleError(
                f"bundle {self.path}: format is {header['format']!r}, expected {BUNDLE_FORMAT!r}"
            )
        size = header["size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise BundleError(f"bundle {self.path}: size must be a non-negative integer")
        for key in ("origin", "public_key", "checkpoint"):
            if not isinstance(header[key], str):
                raise BundleError(f"bundle {self.path}: {key} must be a string")
        try:
            body, _ = parse_note(header["checkpoint"])
            checkpoint = parse_checkpoint(body)
        except NoteError as exc:
            raise BundleError(f"bundle {self.path}: its checkpoint is malformed: {exc}") from exc
        if checkpoint.origin != header["origin"] or checkpoint.size != size:
            raise BundleError(
                f"bundle {self.path}: the header says {header['origin']!r} size {size}, its "
                f"checkpoint says {checkpoint.origin!r} size {checkpoint.size}"
            )
        self.origin: str = header["origin"]
        self.size: int = size
        self.public_key: str = header["public_key"]
        self._note: bytes = header["checkpoint"].encode("utf-8")
        sealed = header.get("sealed", {})
        if not isinstance(sealed, dict) or not all(
            isinstance(k, str) and k.isdigit() and isinstance(v, str) for k, v in sealed.items()
        ):
            raise BundleError(f"bundle {self.path}: sealed must map sizes to signed notes")
        self._sealed: dict[int, bytes] = {int(k): v.encode("utf-8") for k, v in sealed.items()}
        self._header_length = len(line)

    def __repr__(self) -> str:
        """The path."""
        return f"BundleSource({str(self.path)!r})"

    def checkpoint(self) -> bytes:
        """The signed note from the header (verified by the auditor, not here)."""
        return self._note

    def checkpoint_at(self, size: int) -> bytes | None:
        """A checkpoint the bundle carries for ``size`` (those sealing key rotations)."""
        return self._sealed.get(size)

    def entries(self, start: int, stop: int) -> Iterator[bytes]:
        """Stream entry lines ``start`` … ``stop - 1``; the last line must be entry size-1."""
        _check_range(start, stop)
        if stop > self.size:
            raise BundleError(f"bundle {self.path} holds {self.size} entries, not {stop}")
        where = f"bundle {self.path}"
        try:
            with self.path.open("rb") as stream:
                stream.seek(self._header_length)
                for index in range(stop):
                    line = _read_line(stream, index, where)
                    if line is None:
                        raise BundleError(
                            f"{where} ends after {index} entries; its header says {self.size}"
                        )
                    if index >= start:
                        yield line
                if stop == self.size and stream.read(1):
                    raise BundleError(f"{where} has more than the {self.size} entries it declares")
        except OSError as exc:
            raise BundleError(f"{where}: cannot read ({exc.strerror})") from exc

    def consistency_proof(self, old: int, new: int) -> list[bytes] | None:
        """None: a bundle carries no proofs; consistency is checked by recomputing the root."""
        return None
        return


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write a file via a temporary file in the same directory, fsync, then rename.

    Readers see the old file or the whole new one, never a part. On any error the
    temporary file is removed and ``path`` is untouched.
    """
    directory = path.parent
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # make the rename durable where the OS allows it
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_bundle(
    path: str | os.PathLike[str],
    *,
    public_key: str,
    checkpoint_note: str,
    entries: Iterable[bytes],
    size: int,
    sealed: Mapping[int, str] | None = None,
) -> None:
    """Write a bundle of ``size`` entries atomically; BundleError if it would not verify.

    The note must verify with ``public_key`` and state ``size``; the entries must hash to
    its root. ``entries`` is consumed as a stream. ``sealed`` carries the checkpoints that
    seal key rotations (tree size → note), so an auditor holding an older key can follow.
    """
    target = Path(path)
    try:
        key = parse_vkey(public_key, ED25519_KEY_TYPE)
        checkpoint: Checkpoint = verify_checkpoint(checkpoint_note, key)
    except NoteError as exc:
        raise BundleError(f"cannot write bundle {target}: {exc}") from exc
    if checkpoint.size != size:
        raise BundleError(
            f"cannot write bundle {target}: the checkpoint is for size {checkpoint.size}, "
            f"not {size}"
        )
    header = {
        "format": BUNDLE_FORMAT,
        "origin": checkpoint.origin,
        "size": size,
        "public_key": public_key,
        "checkpoint": checkpoint_note,
    }
    if sealed:
        header["sealed"] = {str(k): v for k, v in sorted(sealed.items())}

    def write(stream: IO[bytes]) -> None:
        stream.write(json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode())
        stream.write(b"\n")
        compact = CompactRange()
        for entry in entries:
            if compact.size >= size:
                raise BundleError(f"cannot write bundle {target}: more than {size} entries")
            if b"\n" in entry:
                raise BundleError(
                    f"cannot write bundle {target}: entry {compact.size} contains a newline"
                )
            stream.write(entry)
            stream.write(b"\n")
            compact.append(hash_leaf(entry))
        if compact.size != size:
            raise BundleError(
                f"cannot write bundle {target}: got {compact.size} entries, expected {size}"
            )
        if compact.root() != checkpoint.root:
            raise BundleError(
                f"cannot write bundle {target}: the entries do not hash to the checkpoint root"
            )

    try:
        atomic_write(target, write)
    except AuditError:
        raise
    except OSError as exc:
        raise BundleError(f"cannot write bundle {target}: {exc.strerror}") from exc
