"""A C2SP tlog-witness: cosign only checkpoints that extend the last one cosigned.

Both halves of the synchronous witness protocol (https://c2sp.org/tlog-witness):

* the **witness** (:func:`create_witness_app`): a small FastAPI app serving
  ``POST /add-checkpoint``, keeping the latest cosigned checkpoint of every log it
  follows in a :class:`WitnessState` directory, and answering with a cosignature/v1
  (https://c2sp.org/tlog-cosignature) made by a :class:`~ledger.checkpoint.CosignatureSigner`;
* the **log's client** (:func:`submit_checkpoint`), using ``urllib.request`` only.

Request body (every line ends in ``\\n``)::

    old <size the witness last cosigned, 0 if never>
    <base64 consistency proof hash>        (0 to 63 lines, RFC 9162 order)
    <empty line>
    <signed checkpoint note>

Responses of ``add-checkpoint``, checked in the order the spec lists them:

=====  =========================================================================
 400   malformed body, or ``old`` larger than the checkpoint size
 404   the checkpoint's origin is not a log this witness follows
 403   no signature by the log's configured key, or one by it that does not verify
 409   ``old`` is not the size last cosigned: body ``<size>\\n`` with the exact
       ``Content-Type: text/x.tlog.size``; also (plain text, no size) when the
       checkpoint has the stored size but another root: a fork
 422   the consistency proof from the stored checkpoint does not verify
 413   the body is larger than :data:`MAX_BODY_BYTES`
 500   the stored state for the origin is unreadable (nothing is cosigned)
 200   ``— <witness name> <base64(key id || 8-byte timestamp || signature)>\\n``
=====  =========================================================================

State file format (one per origin, ``<hex SHA-256 of the origin>.json`` in the state
directory, written to a temporary file, fsynced, renamed over the old one, directory
fsynced)::

    {"checkpoint": "<the signed note as submitted>", "format": "opl-witness-state/v1",
     "origin": "<origin>", "root": "<base64 root>", "size": <int>}

A missing file means the witness never cosigned for that origin (size 0). A file that
does not parse, names another origin, or whose note disagrees with its size and root
raises :class:`WitnessStateError`: the witness refuses to cosign for that origin until an
operator repairs it, since forgetting the state would let it cosign a fork.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import http.client
import json
import logging
import os
import re
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from ledger.checkpoint import (
    MAX_TREE_SIZE,
    Checkpoint,
    CheckpointError,
    CosignatureSigner,
    Ed25519Verifier,
    NoteSignature,
    add_signatures,
    check_key_name,
    parse_note,
    verify_note,
)
from ledger.errors import ConflictError, LedgerError, StorageError
from ledger.merkle import EMPTY_ROOT, HASH_SIZE, ProofError, verify_consistency

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_PROOF_LINES",
    "SIZE_CONTENT_TYPE",
    "STATE_FORMAT",
    "AddCheckpointRequest",
    "StateConflictError",
    "WitnessError",
    "WitnessRecord",
    "WitnessState",
    "WitnessStateError",
    "create_witness_app",
    "format_add_checkpoint",
    "parse_add_checkpoint",
    "submit_checkpoint",
]

log = logging.getLogger(__name__)

SIZE_CONTENT_TYPE = "text/x.tlog.size"
"""Content type of a 409 answer that carries the witness's latest cosigned size."""

MAX_PROOF_LINES = 63
"""Most consistency proof lines a request may carry (tlog-witness)."""

MAX_BODY_BYTES = 64 * 1024
"""Largest add-checkpoint request (and response) body accepted, in bytes."""

STATE_FORMAT = "opl-witness-state/v1"
"""Value of the ``format`` key of every state file."""

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_OLD_LINE = re.compile(r"old (0|[1-9][0-9]*)")
_SIZE_BODY = re.compile(r"(0|[1-9][0-9]*)\n")
_STATE_KEYS = frozenset({"checkpoint", "format", "origin", "root", "size"})


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class WitnessError(LedgerError):
    """A witness request failed; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        """Keep ``message`` and the HTTP ``status`` (None for network or local failures)."""
        super().__init__(message)
        self.status = status


class WitnessStateError(WitnessError, StorageError):
    """A witness state file is corrupt or cannot be read or written."""


class StateConflictError(WitnessError, ConflictError):
    """The stored size is not the one a compare-and-swap expected."""

    def __init__(self, message: str, *, current_size: int) -> None:
        """Carry the size actually stored (what a 409 answer reports)."""
        super().__init__(message, status=409)
        self.current_size = current_size


# --------------------------------------------------------------------------------------
# Durable state
# --------------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64_hash(text: str, what: str) -> bytes:
    """Decode canonical, padded base64 of exactly one 32-byte hash; raise ValueError."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError(f"{what} is not valid base64: {text[:60]!r}") from exc
    if _b64(raw) != text:
        raise ValueError(f"{what} is not canonical base64: {text[:60]!r}")
    if len(raw) != HASH_SIZE:
        raise ValueError(f"{what} must decode to {HASH_SIZE} bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True)
class WitnessRecord:
    """The latest checkpoint a witness cosigned for one origin: size, root and note."""

    origin: str
    size: int
    root: bytes
    note: str

    def to_json(self) -> bytes:
        """The state file's bytes (sorted keys, indented, final newline)."""
        document = {
            "checkpoint": self.note,
            "format": STATE_FORMAT,
            "origin": self.origin,
            "root": _b64(self.root),
            "size": self.size,
        }
        return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode(
            "utf-8"
        )

    @classmethod
    def from_json(cls, data: bytes) -> WitnessRecord:
        """Parse and cross-check a state file; raise ValueError naming the problem."""
        try:
            document: Any = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not UTF-8 JSON ({exc})") from exc
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        if set(document) != _STATE_KEYS:
            raise ValueError(f"keys must be exactly {sorted(_STATE_KEYS)}, got {sorted(document)}")
        if document["format"] != STATE_FORMAT:
            raise ValueError(f"format must be {STATE_FORMAT!r}, got {document['format']!r}")
        origin, size, root_text, note = (
            document["origin"],
            document["size"],
            document["root"],
            document["checkpoint"],
        )
        if not isinstance(origin, str) or not origin:
            raise ValueError("origin must be a non-empty string")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_TREE_SIZE:
            raise ValueError(f"size must be an integer in 0..2^63-1, got {size!r}")
        if not isinstance(root_text, str):
            raise ValueError("root must be a base64 string")
        root = _b64_hash(root_text, "root")
        if not isinstance(note, str):
            raise ValueError("checkpoint must be the signed note as a string")
        try:
            body, _ = parse_note(note)
            checkpoint = Checkpoint.parse(body)
        except CheckpointError as exc:
            raise ValueError(f"the stored checkpoint note is malformed: {exc}") from exc
        if (checkpoint.origin, checkpoint.size, checkpoint.root) != (origin, size, root):
            raise ValueError("the stored checkpoint note disagrees with origin, size or root")
        return cls(origin, size, root, note)


class WitnessState:
    """Durable per-origin latest cosigned checkpoints, one JSON file per origin.

    Writes are atomic (temporary file, fsync, rename, directory fsync) and go through
    :meth:`compare_and_swap`, which holds a per-origin lock (a thread lock and an
    ``flock`` on ``<file>.lock``, so several processes may share the directory) while it
    re-reads the stored size, compares it with the expected one and writes.
    """

    def __init__(self, directory: Path) -> None:
        """Use (and create if needed) ``directory``."""
        self._dir = Path(directory)
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WitnessStateError(
                f"cannot create the witness state directory {self._dir}: {exc}"
            ) from exc
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @property
    def directory(self) -> Path:
        """The state directory."""
        return self._dir

    def path(self, origin: str) -> Path:
        """The state file of ``origin``: ``<hex SHA-256 of the UTF-8 origin>.json``."""
        return self._dir / (hashlib.sha256(origin.encode("utf-8")).hexdigest() + ".json")

    def get(self, origin: str) -> WitnessRecord | None:
        """The record for ``origin`` (None if never cosigned); WitnessStateError if corrupt."""
        path = self.path(origin)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise WitnessStateError(f"cannot read witness state file {path}: {exc}") from exc
        try:
            record = WitnessRecord.from_json(data)
        except ValueError as exc:
            raise WitnessStateError(f"witness state file {path} is corrupt: {exc}") from exc
        if record.origin != origin:
            raise WitnessStateError(
                f"witness state file {path} is corrupt: it holds origin {record.origin!r}, "
                f"expected {origin!r}"
            )
        return record

    def size(self, origin: str) -> int:
        """The latest cosigned size for ``origin`` (0 if never cosigned)."""
        record = self.get(origin)
        return record.size if record is not None else 0

    def compare_and_swap(self, origin: str, old_size: int, record: WitnessRecord) -> None:
        """Store ``record`` if the stored size (0 if none) is still ``old_size``.

        Raises StateConflictError (with the stored size) if it is not, or if ``record``
        would roll the size back or change the root stored for the same size. The record
        is durable when this returns.
        """
        if record.origin != origin:
            raise ValueError(f"record for {record.origin!r} cannot be stored under {origin!r}")
        with self._locked(origin):
            current = self.get(origin)
            current_size = current.size if current is not None else 0
            if current_size != old_size:
                raise StateConflictError(
                    f"the witness's latest size for {origin} is {current_size}, not {old_size}",
                    current_size=current_size,
                )
            if record.size < current_size:
                raise StateConflictError(
                    f"size {record.size} would roll back {origin} from {current_size}",
                    current_size=current_size,
                )
            if current is not None and record.size == current.size:
                if record.root != current.root:
                    raise StateConflictError(
                        f"size {record.size} of {origin} is stored with another root",
                        current_size=current_size,
                    )
                return  # the same tree head: nothing to change
            self._write(self.path(origin), record.to_json())

    @contextlib.contextmanager
    def _locked(self, origin: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(origin, threading.Lock())
        lock_path = self.path(origin).with_suffix(".lock")
        with lock:
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise WitnessStateError(f"cannot open lock file {lock_path}: {exc}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock

    def _write(self, path: Path, data: bytes) -> None:
        fd, temp_name = tempfile.mkstemp(dir=self._dir, prefix=f".{path.stem}.", suffix=".tmp")
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp_name, path)
            directory = os.open(self._dir, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise WitnessStateError(f"cannot write witness state file {path}: {exc}") from exc


# --------------------------------------------------------------------------------------
# Request body
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddCheckpointRequest:
    """A parsed add-checkpoint body: old size, consistency proof, note and its checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str
    checkpoint: Checkpoint


def _bad_request(message: str) -> WitnessError:
    return WitnessError(message, status=400)


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Parse an add-checkpoint body strictly; WitnessError(status=400) if malformed.

    Nothing is verified here beyond the syntax of the note and of its checkpoint body.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad_request(f"the body is not valid UTF-8 ({exc.reason} at {exc.start})") from exc
    first, newline, rest = text.partition("\n")
    if not newline:
        raise _bad_request("the body must start with an 'old <size>' line ending in a newline")
    match = _OLD_LINE.fullmatch(first)
    if match is None:
        raise _bad_request(
            f"the first line must be 'old <size>' (decimal, no leading zeros), got {first[:60]!r}"
        )
    old_size = int(match.group(1))
    if old_size > MAX_TREE_SIZE:
        raise _bad_request(f"old size {old_size} is larger than 2^63-1")
    proof: list[bytes] = []
    while True:
        line, newline, rest = rest.partition("\n")
        if not newline:
            raise _bad_request("the body has no empty line before the checkpoint")
        if not line:
            break
        if len(proof) == MAX_PROOF_LINES:
            raise _bad_request(f"more than {MAX_PROOF_LINES} consistency proof lines")
        try:
            proof.append(_b64_hash(line, f"consistency proof line {len(proof) + 1}"))
        except ValueError as exc:
            raise _bad_request(str(exc)) from exc
    if not rest:
        raise _bad_request("the body has no checkpoint after the empty line")
    try:
        note_body, _ = parse_note(rest)
        checkpoint = Checkpoint.parse(note_body)
    except CheckpointError as exc:
        raise _bad_request(f"malformed checkpoint: {exc}") from exc
    return AddCheckpointRequest(old_size, tuple(proof), rest, checkpoint)


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: str) -> bytes:
    """Build an add-checkpoint body; WitnessError if an argument cannot be sent."""
    if isinstance(old_size, bool) or not isinstance(old_size, int):
        raise WitnessError(f"old size must be an integer, got {old_size!r}")
    if not 0 <= old_size <= MAX_TREE_SIZE:
        raise WitnessError(f"old size {old_size} is outside 0..2^63-1")
    if len(proof) > MAX_PROOF_LINES:
        raise WitnessError(f"a consistency proof has at most {MAX_PROOF_LINES} hashes")
    for position, node in enumerate(proof):
        if not isinstance(node, bytes) or len(node) != HASH_SIZE:
            raise WitnessError(f"consistency proof element {position} is not a 32-byte hash")
    if old_size == 0 and proof:
        raise WitnessError("the consistency proof from old size 0 must be empty")
    if not isinstance(note, str):
        raise WitnessError("the checkpoint note must be a string")
    try:
        parse_note(note)
    except CheckpointError as exc:
        raise WitnessError(f"the checkpoint note is malformed: {exc}") from exc
    lines = [f"old {old_size}", *(_b64(node) for node in proof), ""]
    return ("".join(line + "\n" for line in lines) + note).encode("utf-8")


# --------------------------------------------------------------------------------------
# The witness
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    status: int
    text: str
    content_type: str = "text/plain; charset=utf-8"

    def response(self) -> Response:
        # Set the header ourselves: Starlette would append "; charset=utf-8" to a bare
        # media type, and text/x.tlog.size must be sent exactly.
        return Response(
            content=self.text.encode("utf-8"),
            status_code=self.status,
            headers={"Content-Type": self.content_type},
        )


def _plain(status: int, message: str) -> _Answer:
    return _Answer(status, message.rstrip("\n") + "\n")


class _Witness:
    """The add-checkpoint logic, independent of the web framework."""

    def __init__(
        self, signer: CosignatureSigner, logs: Mapping[str, str], state: WitnessState
    ) -> None:
        self.signer = signer
        self.state = state
        self.logs: dict[str, Ed25519Verifier] = {}
        for origin, vkey in logs.items():
            Checkpoint(origin, 0, EMPTY_ROOT)  # a valid origin line, or CheckpointError
            self.logs[origin] = Ed25519Verifier.from_vkey(vkey)

    def describe(self) -> str:
        lines = [
            "Open Policy Ledger witness (C2SP tlog-witness, tlog-cosignature cosignature/v1)",
            f"name: {self.signer.name}",
            f"verifier key: {self.signer.verifier_key()}",
            "submit: POST /add-checkpoint",
            f"logs ({len(self.logs)}):",
            *(f"  {origin} {v.verifier_key()}" for origin, v in sorted(self.logs.items())),
        ]
        return "\n".join(lines) + "\n"

    def add_checkpoint(self, body: bytes) -> _Answer:
        try:
            request = parse_add_checkpoint(body)
        except WitnessError as exc:
            return _plain(400, str(exc))
        checkpoint = request.checkpoint
        origin = checkpoint.origin
        verifier = self.logs.get(origin)
        if verifier is None:
            return _plain(404, f"unknown log origin {origin!r}")
        try:
            verify_note(request.note, verifier)
        except CheckpointError as exc:
            return _plain(403, f"the checkpoint is not signed by the log's key: {exc}")
        if request.old_size > checkpoint.size:
            return _plain(
                400, f"old size {request.old_size} is larger than checkpoint size {checkpoint.size}"
            )
        try:
            current = self.state.get(origin)
        except WitnessStateError:
            log.exception("witness state for %s is unusable; refusing to cosign", origin)
            return _plain(500, f"the witness state for {origin} is unusable; ask the operator")
        current_size = current.size if current is not None else 0
        if request.old_size != current_size:
            return _Answer(409, f"{current_size}\n", SIZE_CONTENT_TYPE)
        old_root = current.root if current is not None else EMPTY_ROOT
        if checkpoint.size == request.old_size:
            if request.proof:
                return _plain(422, "old size equals the checkpoint size but the proof is not empty")
            if checkpoint.root != old_root:
                if checkpoint.size == 0:
                    return _plain(422, "a checkpoint of size 0 must carry the empty-tree root")
                log.warning(
                    "log %s signed a second root for size %d (a fork):\n%s",
                    origin,
                    checkpoint.size,
                    request.note,
                )
                return _plain(
                    409,
                    f"size {checkpoint.size} was cosigned with another root hash: refusing a fork",
                )
        else:
            try:
                verify_consistency(
                    request.old_size, checkpoint.size, old_root, checkpoint.root, request.proof
                )
            except ProofError as exc:
                log.warning(
                    "log %s signed a checkpoint that is not consistent with size %d (%s):\n%s",
                    origin,
                    request.old_size,
                    exc,
                    request.note,
                )
                return _plain(422, f"the consistency proof does not verify: {exc}")
        record = WitnessRecord(origin, checkpoint.size, checkpoint.root, request.note)
        try:
            self.state.compare_and_swap(origin, request.old_size, record)
        except StateConflictError as exc:
            # Another request advanced the state since we read it: report its size.
            return _Answer(409, f"{exc.current_size}\n", SIZE_CONTENT_TYPE)
        except WitnessStateError:
            log.exception("cannot store the witness state for %s", origin)
            return _plain(500, f"the witness could not store the checkpoint for {origin}")
        timestamp = int(time.time())
        signature = self.signer.cosign(checkpoint.body(), timestamp)
        line = NoteSignature(self.signer.name, self.signer.key_id, signature).line()
        return _Answer(200, line + "\n")


def create_witness_app(
    *, signer: CosignatureSigner, logs: Mapping[str, str], state_dir: Path
) -> FastAPI:
    """A FastAPI app serving ``POST /add-checkpoint`` and ``GET /`` for one witness key.

    ``logs`` maps each followed log's origin to its Ed25519 verifier key (vkey); a bad
    vkey or origin raises CheckpointError here. State lives in ``state_dir``.
    """
    if not isinstance(signer, CosignatureSigner):
        raise TypeError("signer must be a CosignatureSigner (cosignature/v1, key type 0x04)")
    check_key_name(signer.name)
    witness = _Witness(signer, logs, WitnessState(state_dir))
    app = FastAPI(
        title="Open Policy Ledger witness", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.witness = witness

    @app.get("/", response_class=PlainTextResponse)
    def describe() -> str:
        """What this witness is and its cosigning verifier key."""
        return witness.describe()

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        """tlog-witness add-checkpoint: verify, store by compare-and-swap, cosign."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _plain(413, f"the body is larger than {MAX_BODY_BYTES} bytes").response()
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return _plain(413, f"the body is larger than {MAX_BODY_BYTES} bytes").response()
        answer = await run_in_threadpool(witness.add_checkpoint, bytes(body))
        return answer.response()

    return app


# --------------------------------------------------------------------------------------
# The log's client
# --------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Do not follow redirects: urllib would turn the POST into a GET without a body."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _excerpt(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return text[:300] + ("…" if len(text) > 300 else "")


def submit_checkpoint(
    witness_url: str, note: str, old_size: int, proof: Sequence[bytes], *, timeout: float = 5
) -> list[str] | int:
    """POST ``note`` to ``{witness_url}/add-checkpoint``; return cosignature lines or a size.

    ``old_size`` is the size the witness last cosigned for this log (0 if it never did)
    and ``proof`` the consistency proof from that size to the note's size (empty for 0).

    * 200: the witness's signature lines (``— <name> <base64>``, without newline),
      checked for syntax only; verify them with the witness's verifier key
      (:func:`ledger.checkpoint.verify_cosignatures`) before trusting them.
    * 409 with ``text/x.tlog.size``: the size the witness last cosigned (an int); build
      the proof from that size and submit again.

    Anything else (403, 404, 422, a 409 refusing a fork, a malformed answer, a network
    failure or timeout) raises :class:`WitnessError` with the HTTP status, if any.
    """
    body = format_add_checkpoint(old_size, proof, note)
    url = witness_url.rstrip("/") + "/add-checkpoint"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise WitnessError(
            f"witness URL must be http(s)://host[:port][/prefix], got {witness_url!r}"
        )
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "text/plain; charset=utf-8",
            "Accept": f"text/plain, {SIZE_CONTENT_TYPE}",
            "User-Agent": "open-policy-ledger-witness-client/1",
        },
    )
    try:
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                status = response.status
                content_type = response.headers.get("Content-Type")
                data = response.read(MAX_BODY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            with exc:
                status = exc.code
                content_type = exc.headers.get("Content-Type")
                data = exc.read(MAX_BODY_BYTES + 1)
    except urllib.error.URLError as exc:
        raise WitnessError(f"cannot reach the witness at {url}: {exc.reason}") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise WitnessError(
            f"the request to the witness at {url} failed: {exc or type(exc).__name__}"
        ) from exc
    if len(data) > MAX_BODY_BYTES:
        raise WitnessError(
            f"the witness at {url} answered {status} with a body over {MAX_BODY_BYTES} bytes",
            status=status,
        )
    if status == 200:
        return _cosignature_lines(url, note, data)
    if status == 409 and _media_type(content_type) == SIZE_CONTENT_TYPE:
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if not _SIZE_BODY.fullmatch(text) or int(text) > MAX_TREE_SIZE:
            raise WitnessError(
                f"the witness at {url} answered 409 with a malformed size: {_excerpt(data)!r}",
                status=409,
            )
        size = int(text)
        if size == old_size:
            raise WitnessError(
                f"the witness at {url} answered 409 with the old size {size} it was sent",
                status=409,
            )
        return size
    if status == 409:
        raise WitnessError(
            f"the witness at {url} refused the checkpoint as a conflict with the one it "
            f"cosigned for the same size (a fork?): {_excerpt(data)}",
            status=409,
        )
    raise WitnessError(
        f"the witness at {url} answered {status}: {_excerpt(data) or '(empty body)'}",
        status=status,
    )


def _cosignature_lines(url: str, note: str, data: bytes) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WitnessError(f"the witness at {url} answered 200 with non-UTF-8", status=200) from exc
    if not text or not text.endswith("\n"):
        raise WitnessError(
            f"the witness at {url} answered 200 without newline-terminated signature lines: "
            f"{_excerpt(data)!r}",
            status=200,
        )
    lines = text[:-1].split("\n")
    try:
        add_signatures(note, lines)
    except CheckpointError as exc:
        raise WitnessError(
            f"the witness at {url} answered 200 with malformed signature lines: {exc}",
            status=200,
        ) from exc
    return lines
