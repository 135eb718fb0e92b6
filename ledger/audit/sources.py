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

Every answer is read up to a size limit, and JSON (proofs, problem bodies, bundle headers,
entries, the state file) is refused before parsing if its arrays and objects nest deeper
than :data:`MAX_JSON_DEPTH`: hostile answers are a SourceError naming the URL or file and
the limit, never an internal error.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import http.client
import json
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from ledger.audit.errors import (
    AuditError,
    BundleError,
    EntryError,
    NoteError,
    ProofError,
    SourceError,
)
from ledger.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    hash_children,
    hash_leaf,
    verify_consistency,
)
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
    "MAX_JSON_DEPTH",
    "MAX_PAGE",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "BundleSource",
    "HttpSource",
    "Source",
    "TileId",
    "TilesSource",
    "atomic_write",
    "encode_bundle",
    "json_too_deep",
    "parse_bundle",
    "parse_tile_path",
    "printable",
    "source_for",
    "tile_path",
    "tile_width",
    "write_bundle",
]

BUNDLE_FORMAT = "open-policy-ledger-bundle/v1"
MAX_ENTRY_BYTES = 65_535
"""Largest entry the format allows; a longer line is refused before it is buffered."""

MAX_PAGE = 1000
"""Most entries one ``/entries`` response carries."""

MAX_JSON_DEPTH = 64
"""Deepest nesting of JSON arrays and objects parsed (entries nest at most 34 levels)."""

_MAX_NOTE_BYTES = 1 << 20
_MAX_PROOF_BYTES = 1 << 16
_MAX_HEADER_BYTES = 1 << 22
_MAX_PROBLEM_BYTES = 1 << 14
# A string (its closing quote optional, so an unterminated one is consumed in one match and
# the scan stays linear) or one bracket.
_JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.S)
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


_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}


def printable(text: str) -> str:
    """``text`` with control characters (CR, LF, ESC, C1 …) escaped as ``\\xNN``: a source's
    words quoted in an error stay on one line and cannot drive a terminal."""
    return text.translate(_CONTROLS)


def json_too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON arrays and objects in ``data`` nest deeper than ``limit`` (strings skipped).

    Linear in ``data``; answered without scanning when there are at most ``limit`` brackets.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    for match in _JSON_TOKEN.finditer(data):
        char = data[match.start()]
        if char in b"[{":
            depth += 1
            if depth > limit:
                return True
        elif char in b"]}":
            depth -= 1
    return False


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
            detail = _problem_detail(exc)
            raise SourceError(f"GET {url}: HTTP {exc.code} {exc.reason}{detail}") from exc
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
        if json_too_deep(data):
            raise SourceError(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
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


def _problem_detail(error: urllib.error.HTTPError) -> str:
    """``: <detail>`` of an RFC 9457 problem answer (at most 500 characters), else ``""``.

    A problem body over 16,384 bytes or nested too deep is named, not parsed.
    """
    try:
        if error.headers.get_content_type() != "application/problem+json":
            return ""
        data = error.read(_MAX_PROBLEM_BYTES + 1)
        if len(data) > _MAX_PROBLEM_BYTES:
            return f" (problem body not read: over {_MAX_PROBLEM_BYTES} bytes)"
        if json_too_deep(data):
            return f" (problem body not read: JSON nested deeper than {MAX_JSON_DEPTH} levels)"
        body = json.loads(data)
        detail = body.get("detail") if isinstance(body, dict) else None
        return f": {printable(detail[:500])}" if isinstance(detail, str) and detail else ""
    except (ValueError, OSError, AttributeError, RecursionError):
        return ""
    finally:
        error.close()


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
        if len(line) > _MAX_HEADER_BYTES:
            raise BundleError(
                f"bundle {self.path}: the header line is over {_MAX_HEADER_BYTES} bytes"
            )
        if not line.endswith(b"\n"):
            raise BundleError(f"bundle {self.path}: the first line (JSON header) is missing")
        if json_too_deep(line):
            raise BundleError(
                f"bundle {self.path}: the header's JSON is nested deeper than {MAX_JSON_DEPTH} "
                "levels"
            )
        try:
            header = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
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


# --------------------------------------------------------------------------------------
# tlog-tiles
# --------------------------------------------------------------------------------------

TILE_HEIGHT = 8
"""Tree levels one tile spans (C2SP tlog-tiles fixes it at 8)."""

TILE_WIDTH = 1 << TILE_HEIGHT
"""Hashes in a full tile, entries in a full entry bundle."""

_HASH_SIZE = 32
_MAX_TILE_LEVEL = 63
_MAX_BUNDLE_BYTES = TILE_WIDTH * (2 + MAX_ENTRY_BYTES)
_NOT_FOUND = (403, 404, 410)  # 403: object stores answer it for a missing key


@dataclass(frozen=True)
class TileId:
    """One tlog-tiles resource: a hash tile (``level`` 0–63) or an entry bundle (None)."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    @property
    def path(self) -> str:
        """``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]``, relative to the root."""
        return tile_path(self.level, self.index, self.width)


def tile_path(level: int | None, index: int, width: int = TILE_WIDTH) -> str:
    """The tlog-tiles path of a hash tile (``level`` 0–63) or entry bundle (``level`` None).

    ``index`` is written in groups of three digits, all but the last prefixed ``x``
    (1234067 → ``x001/x234/067``); a partial tile (``width`` 1–255) ends in ``.p/<width>``.
    """
    if level is not None and not 0 <= level <= _MAX_TILE_LEVEL:
        raise ValueError(f"tile level {level} is not 0..{_MAX_TILE_LEVEL}")
    if index < 0:
        raise ValueError(f"tile index {index} is negative")
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} is not 1..{TILE_WIDTH}")
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[k : k + 3] for k in range(0, len(digits), 3)]
    encoded = "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])
    partial = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{'entries' if level is None else level}/{encoded}{partial}"


_TILE_PATH = re.compile(
    r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/)*)([0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?"
)


def parse_tile_path(path: str) -> TileId:
    """Parse a canonical tlog-tiles path (as :func:`tile_path` writes it); ValueError if not."""
    match = _TILE_PATH.fullmatch(path)
    if match is None:
        raise ValueError(f"{path!r} is not a tlog-tiles path")
    level = None if match.group(1) == "entries" else int(match.group(1))
    index = int(match.group(2).replace("x", "").replace("/", "") + match.group(3))
    width = TILE_WIDTH if match.group(4) is None else int(match.group(4))
    if (level is not None and level > _MAX_TILE_LEVEL) or width >= TILE_WIDTH + (
        match.group(4) is None
    ):
        raise ValueError(f"{path!r} is not a tlog-tiles path (level or width out of range)")
    tile = TileId(level, index, width)
    if tile.path != path:  # leading zero groups such as x000/005 are not canonical
        raise ValueError(f"{path!r} is not the canonical spelling {tile.path!r}")
    return tile


def tile_width(level: int | None, index: int, size: int) -> int:
    """Width of tile ``index`` at ``level`` (None: entry bundle) in a tree of ``size``; 0 if
    the tree has not reached it."""
    count = size >> (TILE_HEIGHT * (level or 0))
    return max(0, min(TILE_WIDTH, count - index * TILE_WIDTH))


def encode_bundle(entries: Iterable[bytes]) -> bytes:
    """An entry bundle: each entry prefixed by its length as a big-endian uint16."""
    parts = []
    for entry in entries:
        if len(entry) > MAX_ENTRY_BYTES:
            raise ValueError(f"an entry of {len(entry)} bytes does not fit an entry bundle")
        parts.append(len(entry).to_bytes(2, "big") + entry)
    return b"".join(parts)


def parse_bundle(data: bytes, width: int | None = None, where: str = "entry bundle") -> list[bytes]:
    """Split an entry bundle into entries; SourceError if it is malformed.

    Every entry is a big-endian uint16 length and that many bytes, with nothing left over;
    with ``width``, there must be exactly that many entries.
    """
    entries: list[bytes] = []
    offset, end = 0, len(data)
    while offset < end:
        if len(entries) >= TILE_WIDTH:
            raise SourceError(f"{where}: more than {TILE_WIDTH} entries")
        if end - offset < 2:
            raise SourceError(f"{where}: truncated length prefix at byte {offset}")
        length = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        if end - offset < length:
            raise SourceError(
                f"{where}: entry {len(entries)} claims {length} bytes, only {end - offset} remain"
            )
        entries.append(data[offset : offset + length])
        offset += length
    if width is not None and len(entries) != width:
        raise SourceError(f"{where}: holds {len(entries)} entries, expected {width}")
    return entries


def _perfect_root(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree (a power-of-two count of node hashes)."""
    level = list(hashes)
    while len(level) > 1:
        level = [hash_children(level[k], level[k + 1]) for k in range(0, len(level), 2)]
    return level[0]


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class TilesSource:
    """A static C2SP tlog-tiles tree: a directory, or the same files below an http(s) URL.

    Reads ``checkpoint``, entry bundles ``tile/entries/<N>[.p/<W>]`` and hash tiles
    ``tile/<L>/<N>[.p/<W>]``; tile widths follow the checkpoint's tree size, and a partial
    tile that is gone is read from the full tile that replaced it. Key-rotation checkpoints
    come from ``sealed/<size>`` (or the API's ``checkpoint/<size>``).

    The hash tiles are checked too (``check_tiles``), so a mirror that would serve wrong
    inclusion proofs fails its audit: every tile overlapping the entries read is compared
    with the hashes recomputed from those entries, and consistency proofs, computed from
    O(log n) tiles, must lead to the checkpoint's root.
    """

    def __init__(
        self,
        base: str | os.PathLike[str],
        *,
        timeout: float = 30.0,
        check_tiles: bool = True,
        checkpoint: bytes | None = None,
    ) -> None:
        """Read below ``base``; ``checkpoint`` pins the note instead of reading it."""
        text = os.fspath(base)
        self._url: str | None = None
        self._dir: Path | None = None
        if text.startswith(("http://", "https://")):
            parsed = urllib.parse.urlsplit(text)
            if not parsed.netloc:
                raise SourceError(f"the tiles URL has no host: {text!r}")
            self._url = text.rstrip("/")
            self.base = self._url
        else:
            self._dir = Path(text)
            self.base = str(self._dir)
        self.timeout = timeout
        self.check_tiles = check_tiles
        self._note = checkpoint
        self._tree: Checkpoint | None = None if checkpoint is None else self._parse(checkpoint)

    def __repr__(self) -> str:
        """The base directory or URL."""
        return f"TilesSource({self.base!r})"

    # -- fetching ------------------------------------------------------------------

    def _where(self, path: str) -> str:
        if self._url is not None:
            return f"GET {self._url}/{path}"
        return str(Path(self.base) / path)

    def fetch(self, path: str, limit: int) -> bytes | None:
        """The bytes at ``path`` below the base (at most ``limit``); None if there are none."""
        if self._dir is not None:
            try:
                with (self._dir / path).open("rb") as stream:
                    data = stream.read(limit + 1)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return None
            except OSError as exc:
                raise SourceError(f"{self._where(path)}: cannot read ({exc.strerror})") from exc
        else:
            url = f"{self._url}/{path}"
            request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
                url, headers={"User-Agent": "open-policy-ledger-audit/1"}
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    data = response.read(limit + 1)
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code in _NOT_FOUND:
                    return None
                raise SourceError(f"GET {url}: HTTP {exc.code} {exc.reason}") from exc
            except urllib.error.URLError as exc:
                raise SourceError(f"GET {url}: {exc.reason}") from exc
            except (TimeoutError, http.client.HTTPException, OSError) as exc:
                raise SourceError(f"GET {url}: {exc or type(exc).__name__}") from exc
        if len(data) > limit:
            raise SourceError(f"{self._where(path)}: over {limit} bytes")
        return data

    def _fetch_tile(self, tile: TileId, limit: int) -> tuple[str, bytes]:
        """A tile's bytes, falling back from a partial tile to its full tile (then cut)."""
        data = self.fetch(tile.path, limit)
        if data is not None:
            return tile.path, data
        if tile.width < TILE_WIDTH:
            full = replace(tile, width=TILE_WIDTH)
            data = self.fetch(full.path, limit)
            if data is not None:
                return full.path, data
        raise SourceError(
            f"{self._where(tile.path)}: not found, but the checkpoint (size "
            f"{self._tree_size()}) needs it: the mirror is incomplete, or its checkpoint is "
            "not the one its tiles were written for"
        )

    # -- the checkpoint --------------------------------------------------------------

    @staticmethod
    def _parse(note: bytes) -> Checkpoint:
        return parse_checkpoint(parse_note(note)[0])

    def checkpoint(self) -> bytes:
        """``checkpoint``: the latest signed note (pinned for this source's life)."""
        if self._note is None:
            data = self.fetch("checkpoint", _MAX_NOTE_BYTES)
            if data is None:
                raise SourceError(f"{self._where('checkpoint')}: not found (not a tiles tree?)")
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SourceError(f"{self._where('checkpoint')}: not valid UTF-8") from exc
            self._note = data
        return self._note

    def _tree_size(self) -> int:
        if self._tree is None:
            self._tree = self._parse(self.checkpoint())
        return self._tree.size

    def checkpoint_at(self, size: int) -> bytes | None:
        """The note for ``size`` from ``sealed/<size>`` (or the API's ``checkpoint/<size>``)."""
        found = self.fetch(f"sealed/{int(size)}", _MAX_NOTE_BYTES)
        if found is None and self._url is not None:
            found = self.fetch(f"checkpoint/{int(size)}", _MAX_NOTE_BYTES)
        return found

    # -- tiles -----------------------------------------------------------------------

    def tile(self, level: int, index: int, width: int) -> list[bytes]:
        """The first ``width`` hashes of tile ``level``/``index`` (width per the checkpoint)."""
        needed = tile_width(level, index, self._tree_size())
        if not 1 <= width <= needed:
            raise SourceError(
                f"tile {level}/{index} has {needed} hashes at size {self._tree_size()}, not {width}"
            )
        wanted = TileId(level, index, needed)
        path, data = self._fetch_tile(wanted, TILE_WIDTH * _HASH_SIZE)
        expected = needed if path == wanted.path else TILE_WIDTH
        if len(data) != expected * _HASH_SIZE:
            raise SourceError(
                f"{self._where(path)}: {len(data)} bytes is not {expected} hashes of 32 bytes"
            )
        return [data[k : k + _HASH_SIZE] for k in range(0, width * _HASH_SIZE, _HASH_SIZE)]

    def bundle(self, index: int) -> list[bytes]:
        """Every entry of entry bundle ``index`` at the checkpoint's size."""
        width = tile_width(None, index, self._tree_size())
        if width == 0:
            raise SourceError(f"entry bundle {index} is beyond size {self._tree_size()}")
        wanted = TileId(None, index, width)
        path, data = self._fetch_tile(wanted, _MAX_BUNDLE_BYTES)
        expected = width if path == wanted.path else TILE_WIDTH
        return parse_bundle(data, expected, self._where(path))[:width]

    def entries(self, start: int, stop: int) -> Iterator[bytes]:
        """Entries from the entry bundles; with ``check_tiles``, the hash tiles over them too."""
        _check_range(start, stop)
        if stop > self._tree_size():
            raise SourceError(
                f"entries up to {stop} asked for, but the checkpoint is for "
                f"size {self._tree_size()}"
            )
        if start == stop:
            return
        check = _TileCheck(self) if self.check_tiles else None
        pending: tuple[int, list[bytes]] | None = None
        for number in range(start // TILE_WIDTH, (stop - 1) // TILE_WIDTH + 1):
            bundle = self.bundle(number)
            first = number * TILE_WIDTH
            for offset in range(max(start, first) - first, min(stop, first + len(bundle)) - first):
                yield bundle[offset]
                if pending is not None and check is not None:
                    # Checked one entry late: the auditor has seen the next entry's prev,
                    # so a damaged entry is reported as such, not as a tile mismatch.
                    check.leaves(*pending)
                    pending = None
            pending = (number, bundle)
        if check is not None:
            if pending is not None:
                check.leaves(*pending)
            check.finish()

    # -- proofs ----------------------------------------------------------------------

    def root(self, size: int) -> bytes:
        """MTH(D[0:size]) computed from the hash tiles alone (not verified)."""
        if not 0 <= size <= self._tree_size():
            raise SourceError(f"no root for size {size} in a tree of size {self._tree_size()}")
        return EMPTY_ROOT if size == 0 else _TileTree(self).subtree(0, size)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """RFC 9162 PROOF(old, D[new]) from O(log n) hash tiles.

        With ``check_tiles`` and ``new`` the checkpoint's size, the proof is first checked
        to lead to the checkpoint's root from the tiles' own root of size ``old``: if it
        does not, the tiles are damaged (SourceError), not the log forked.
        """
        if not 0 <= old <= new <= self._tree_size():
            raise SourceError(
                f"no consistency proof from {old} to {new} at size {self._tree_size()}"
            )
        if old in (0, new):
            return []
        tree = _TileTree(self)
        proof: list[bytes] = []
        start, end, m, whole = 0, new, old, True
        while m != end - start:
            k = _split(end - start)
            if m <= k:
                proof.append(tree.subtree(start + k, end))
                end = start + k
            else:
                proof.append(tree.subtree(start, start + k))
                start += k
                m -= k
                whole = False
        if not whole:
            proof.append(tree.subtree(start, end))
        proof.reverse()
        assert self._tree is not None
        if self.check_tiles and new == self._tree.size:
            try:
                verify_consistency(old, new, tree.subtree(0, old), self._tree.root, proof)
            except ProofError as exc:
                raise SourceError(
                    f"{self.base}: the hash tiles ({', '.join(tree.read)}) do not lead to the "
                    f"root of the checkpoint for size {new}: a hash tile or the checkpoint is "
                    "damaged"
                ) from exc
        return proof


class _TileTree:
    """Subtree hashes from hash tiles, each tile read once."""

    def __init__(self, source: TilesSource) -> None:
        self._source = source
        self._tiles: dict[tuple[int, int], list[bytes]] = {}
        self.read: list[str] = []

    def perfect(self, height: int, index: int) -> bytes:
        level, rest = divmod(height, TILE_HEIGHT)
        first = index << rest
        number, offset = divmod(first, TILE_WIDTH)
        key = (level, number)
        if key not in self._tiles:
            width = tile_width(level, number, self._source._tree_size())
            self._tiles[key] = self._source.tile(level, number, width)
            self.read.append(tile_path(level, number, width))
        hashes = self._tiles[key]
        if offset + (1 << rest) > len(hashes):
            raise SourceError(f"tile {level}/{number} is too short for subtree {height}/{index}")
        return _perfect_root(hashes[offset : offset + (1 << rest)])

    def subtree(self, start: int, end: int) -> bytes:
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self.perfect(n.bit_length() - 1, start // n)
        k = _split(n)
        return hash_children(self.subtree(start, start + k), self.subtree(start + k, end))


class _TileCheck:
    """Checks hash tiles against the hashes recomputed from the entries, level by level.

    Memory stays flat: at most one tile's worth of hashes per level is pending.
    """

    def __init__(self, source: TilesSource) -> None:
        self._source = source
        self._size = source._tree_size()
        # level -> (tile number, offset of the first known hash, known hashes)
        self._pending: dict[int, tuple[int, int, list[bytes]]] = {}

    def leaves(self, number: int, bundle: list[bytes]) -> None:
        """Compare entry bundle ``number`` with hash tile 0/``number``."""
        leaves = [hash_leaf(entry) for entry in bundle]
        tile = self._source.tile(0, number, len(leaves))
        for offset, (got, want) in enumerate(zip(tile, leaves, strict=True)):
            if got != want:
                index = number * TILE_WIDTH + offset
                raise SourceError(
                    f"{self._source._where(tile_path(0, number, len(leaves)))}: hash {offset} is "
                    f"not the leaf hash of entry {index} from "
                    f"{tile_path(None, number, len(leaves))}: the hash tile or the entry bundle "
                    "is damaged"
                )
        if len(leaves) == TILE_WIDTH:
            self._feed(1, number, _perfect_root(leaves))

    def _feed(self, level: int, index: int, node: bytes) -> None:
        number, offset = divmod(index, TILE_WIDTH)
        pending = self._pending.get(level)
        if pending is not None and pending[0] != number:
            self._flush(level)
            pending = None
        if pending is None:
            self._pending[level] = (number, offset, [node])
        else:
            pending[2].append(node)

    def _flush(self, level: int) -> None:
        number, first, known = self._pending.pop(level)
        width = tile_width(level, number, self._size)
        tile = self._source.tile(level, number, width)
        for offset, node in enumerate(known, start=first):
            if tile[offset] != node:
                raise SourceError(
                    f"{self._source._where(tile_path(level, number, width))}: hash {offset} "
                    f"does not match the tiles below it (level {level - 1}): a hash tile is "
                    "damaged"
                )
        if first == 0 and len(known) == TILE_WIDTH:
            self._feed(level + 1, number, _perfect_root(known))

    def finish(self) -> None:
        """Compare what is still pending, lowest level first."""
        level = 1
        while self._pending:
            if level in self._pending:
                self._flush(level)
            level += 1


def _serves_entries(api: HttpSource) -> bool:
    """Whether ``api`` answers ``/entries`` as the ledger's API does (see source_for)."""
    url = api.base_url + "/entries?start=0&stop=0"
    request = urllib.request.Request(  # noqa: S310 - HttpSource checked the scheme
        url, headers={"Accept": "application/x-ndjson", "User-Agent": "open-policy-ledger-audit/1"}
    )
    try:
        with urllib.request.urlopen(request, timeout=api.timeout) as response:  # noqa: S310
            return bool(response.headers.get_content_type() == "application/x-ndjson")
    except urllib.error.HTTPError as exc:
        exc.close()
        return False
    except urllib.error.URLError as exc:
        raise SourceError(f"GET {url}: {exc.reason}") from exc
    except (TimeoutError, http.client.HTTPException, OSError) as exc:
        raise SourceError(f"GET {url}: {exc or type(exc).__name__}") from exc


def source_for(location: str, *, timeout: float = 30.0) -> Source:
    """The source for a command-line location.

    * ``http(s)://…``: the ledger's API (:class:`HttpSource`) when ``GET
      <url>/entries?start=0&stop=0`` answers ``application/x-ndjson``; otherwise (an HTTP
      error status, or another content type) a static tlog-tiles tree
      (:class:`TilesSource`). A network failure is a SourceError;
    * a directory holding ``checkpoint`` and ``tile/``: a :class:`TilesSource`;
    * anything else: a bundle file (:class:`BundleSource`).
    """
    if location.startswith(("http://", "https://")):
        api = HttpSource(location, timeout=timeout)
        if _serves_entries(api):
            return api
        return TilesSource(location, timeout=timeout)
    path = Path(location)
    if path.is_dir():
        if (path / "checkpoint").is_file() and (path / "tile").is_dir():
            return TilesSource(path, timeout=timeout)
        raise SourceError(
            f"{path} is a directory but not a tlog-tiles tree (no checkpoint file and tile/)"
        )
    return BundleSource(path)


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


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
