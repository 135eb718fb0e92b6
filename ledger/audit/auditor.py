"""The auditor: check a log against the checkpoint it trusted last time, then trust more.

One audit, in order; any failure raises an :class:`AuditError` subclass and leaves the
state file exactly as it was:

1. parse the log's verifier key (and the witnesses' keys, and the pinned origin if any);
2. load the state file (absent means: nothing trusted yet, size 0); a pinned origin must be
   the one the state trusts;
3. fetch the signed note and verify the log's signature **before anything in it is compared
   with the state**: a note anyone could have made is no evidence of a rollback or fork.
   The one exception is a note that is larger than the state and carries no signature line
   of the trusted key: the log may have rotated its key since, so entries are streamed
   (step 6) to find the rotation, and any failure before the note verifies under the key
   in force is reported as "not signed by the log's key";
4. compare with the trusted state (or the pinned origin): same origin; a smaller size is a
   rollback; the same size must have the same root; from size 0 anything is consistent;
5. if the source gives consistency proofs, verify one from the trusted size and root to
   the new ones;
6. stream entries [trusted size, new size): each is a JSON object whose ``index`` is its
   position and whose ``prev`` is the hex SHA-256 of the entry before (64 zeros at 0); each
   leaf hash is appended to the trusted compact range;
7. the recomputed root must equal the checkpoint's root; if asked, a quorum of witnesses
   must have cosigned it;
8. write the new state atomically (temporary file, fsync, rename).

Memory stays flat: entries are streamed, and the tree is a compact range of at most 64
hashes.

State file (JSON, UTF-8)::

    {"format": "open-policy-ledger-audit-state/v1", "origin": "<origin>", "size": N,
     "root": "<hex>", "head": "<hex SHA-256 of entry N-1, or 64 zeros>",
     "range": ["<hex>", …], "checkpoint": "<the signed note last verified>"}
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ledger.audit.errors import (
    AuditError,
    ConsistencyError,
    EntryError,
    NoteError,
    ProofError,
    RootMismatchError,
    SourceError,
    StateError,
)
from ledger.audit.merkle import EMPTY_ROOT, CompactRange, hash_leaf, verify_consistency
from ledger.audit.note import (
    COSIGNATURE_KEY_TYPE,
    ED25519_KEY_TYPE,
    Checkpoint,
    VerifierKey,
    parse_checkpoint,
    parse_note,
    parse_vkey,
    verify_checkpoint,
    verify_cosignatures,
)
from ledger.audit.sources import (
    MAX_ENTRY_BYTES,
    MAX_JSON_DEPTH,
    Source,
    atomic_write,
    json_too_deep,
)

__all__ = [
    "GENESIS_PREV",
    "STATE_FORMAT",
    "AuditResult",
    "AuditState",
    "Auditor",
    "Progress",
    "audit",
    "check_entry",
]

STATE_FORMAT = "open-policy-ledger-audit-state/v1"
GENESIS_PREV = bytes(32)
"""The ``prev`` of entry 0, as bytes (64 zeros in hex)."""

PROGRESS_EVERY = 1000
MAX_STATE_BYTES = 1 << 22

Progress = Callable[[int, int], None]
"""Called as ``progress(entries checked, entries to check)`` while streaming."""

_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_STATE_KEYS = frozenset({"format", "origin", "size", "root", "head", "range", "checkpoint", "key"})
_KEY_ROTATED_END = b',"type":"log.key_rotated"}'  # canonical entries end with their type


# --------------------------------------------------------------------------------------
# Entries
# --------------------------------------------------------------------------------------


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_number(text: str) -> Any:
    raise ValueError(f"{text} is not allowed in an entry (no floats, NaN or Infinity)")


def check_entry(entry: bytes, index: int, prev: bytes, *, prev_is_trusted: bool = False) -> bytes:
    """Check one entry's form and chain link; return its hash SHA-256(entry).

    Raises EntryError if the entry is over 65,535 bytes, not UTF-8, not one JSON object
    (no surrounding white space, duplicate keys, floats, NaN or Infinity), if its
    ``index`` is not ``index`` or its ``prev`` is not the hex of ``prev``.
    ``prev_is_trusted`` says ``prev`` comes from the state file (the first new entry).
    """
    if not isinstance(entry, bytes):
        raise EntryError(index, f"the source gave {type(entry).__name__}, not bytes")
    if len(entry) > MAX_ENTRY_BYTES:
        raise EntryError(index, f"is {len(entry)} bytes, over the {MAX_ENTRY_BYTES}-byte limit")
    # The bracket count first, inline: this runs for every entry audited.
    if entry.count(b"[") + entry.count(b"{") > MAX_JSON_DEPTH and json_too_deep(entry):
        raise EntryError(index, f"nests JSON deeper than {MAX_JSON_DEPTH} levels")
    try:
        text = entry.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EntryError(index, f"is not valid UTF-8 (byte {exc.start})") from exc
    if not (text.startswith("{") and text.endswith("}")):
        raise EntryError(index, "is not a single JSON object without surrounding white space")
    try:
        fields = json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_float=_reject_number,
            parse_constant=_reject_number,
        )
    except (ValueError, RecursionError) as exc:
        raise EntryError(index, f"is not valid JSON for an entry ({exc})") from exc
    if not isinstance(fields, dict):
        raise EntryError(index, "is not a JSON object")
    got_index = fields.get("index")
    if isinstance(got_index, bool) or not isinstance(got_index, int):
        raise EntryError(index, f"its index field must be an integer, got {got_index!r}")
    if got_index != index:
        raise EntryError(index, f"its index field is {got_index}, but it is at position {index}")
    got_prev = fields.get("prev")
    if not isinstance(got_prev, str) or not _HEX_HASH.fullmatch(got_prev):
        raise EntryError(index, "its prev field must be 64 lowercase hex digits")
    if got_prev != prev.hex():
        if index == 0:
            raise EntryError(0, "prev must be 64 zeros for the first entry")
        if prev_is_trusted:
            raise EntryError(
                index,
                f"prev does not match the hash of entry {index - 1} in the trusted state "
                f"(entry {index} is damaged, or the log before it was rewritten)",
            )
        raise EntryError(index, f"prev does not match the hash of entry {index - 1}")
    return hashlib.sha256(entry).digest()


# --------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------


@dataclass
class AuditState:
    """What the auditor trusts: the last verified checkpoint and the tree behind it."""

    origin: str | None = None
    size: int = 0
    root: bytes = EMPTY_ROOT
    head: bytes = GENESIS_PREV
    compact: CompactRange = field(default_factory=CompactRange)
    checkpoint: str | None = None
    key: str | None = None  # the log key learned from a verified rotation, if any

    def to_json(self) -> bytes:
        """The state file's bytes."""
        document = {
            "format": STATE_FORMAT,
            "origin": self.origin,
            "size": self.size,
            "root": self.root.hex(),
            "head": self.head.hex(),
            "range": [node.hex() for node in self.compact.stack],
            "checkpoint": self.checkpoint,
            "key": self.key,
        }
        return (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, where: str = "state file") -> AuditState:
        """Parse and cross-check a state file; StateError says what is wrong."""
        if len(data) > MAX_STATE_BYTES:
            raise StateError(f"{where} is over {MAX_STATE_BYTES} bytes")
        if json_too_deep(data):
            raise StateError(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise StateError(f"{where} is not UTF-8 JSON: {exc}") from exc
        if not isinstance(document, dict) or set(document) != _STATE_KEYS:
            raise StateError(f"{where} must be a JSON object with the keys {sorted(_STATE_KEYS)}")
        if document["format"] != STATE_FORMAT:
            raise StateError(f"{where} has format {document['format']!r}, not {STATE_FORMAT!r}")
        size = document["size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise StateError(f"{where}: size must be a non-negative integer")
        root = _state_hash(document["root"], "root", where)
        head = _state_hash(document["head"], "head", where)
        nodes = document["range"]
        if not isinstance(nodes, list):
            raise StateError(f"{where}: range must be a list of hex hashes")
        stack = [_state_hash(node, f"range[{k}]", where) for k, node in enumerate(nodes)]
        try:
            compact = CompactRange.load(size, stack)
        except ProofError as exc:
            raise StateError(f"{where}: {exc}") from exc
        if compact.root() != root:
            raise StateError(f"{where}: the compact range does not hash to the root")
        origin, note, key = document["origin"], document["checkpoint"], document["key"]
        if key is not None:
            try:
                parse_vkey(key, ED25519_KEY_TYPE)
            except NoteError as exc:
                raise StateError(f"{where}: the learned log key is malformed: {exc}") from exc
        if size == 0 and origin is None and note is None:
            if head != GENESIS_PREV:
                raise StateError(f"{where}: an empty log's head must be 64 zeros")
            return cls()
        if not isinstance(origin, str) or not isinstance(note, str):
            raise StateError(f"{where}: origin and checkpoint must be strings")
        if size == 0 and head != GENESIS_PREV:
            raise StateError(f"{where}: an empty log's head must be 64 zeros")
        try:
            checkpoint = parse_checkpoint(parse_note(note)[0])
        except NoteError as exc:
            raise StateError(f"{where}: the stored checkpoint is malformed: {exc}") from exc
        if (checkpoint.origin, checkpoint.size, checkpoint.root) != (origin, size, root):
            raise StateError(f"{where}: the stored checkpoint disagrees with origin, size or root")
        return cls(origin, size, root, head, compact, note, key)

    @classmethod
    def load(cls, path: Path) -> AuditState:
        """The state at ``path``; an empty state if the file does not exist."""
        try:
            with path.open("rb") as stream:
                data = stream.read(MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise StateError(f"cannot read the state file {path}: {exc.strerror}") from exc
        return cls.from_json(data, f"state file {path}")

    def save(self, path: Path) -> None:
        """Replace the state file atomically (temporary file, fsync, rename)."""
        data = self.to_json()

        def write(stream: IO[bytes]) -> None:
            stream.write(data)

        try:
            atomic_write(path, write)
        except OSError as exc:
            raise StateError(f"cannot write the state file {path}: {exc.strerror}") from exc


def _state_hash(value: Any, name: str, where: str) -> bytes:
    if not isinstance(value, str) or not _HEX_HASH.fullmatch(value):
        raise StateError(f"{where}: {name} must be 64 lowercase hex digits")
    return bytes.fromhex(value)


# --------------------------------------------------------------------------------------
# The audit
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditResult:
    """What one successful audit established."""

    origin: str
    old_size: int
    new_size: int
    root: bytes
    head: bytes
    entries_checked: int
    proof_checked: bool
    cosignatures: dict[str, int]
    checkpoint: str
    origin_first_trusted: bool = False
    """True when no state and no pinned origin named the log: its origin was taken on trust."""


@dataclass
class _Walk:
    """Where streaming the new entries has got to: the tree, the head and the key in force."""

    compact: CompactRange
    head: bytes
    key: VerifierKey


class Auditor:
    """Audits sources against one log key, optional witnesses and one state file."""

    def __init__(
        self,
        *,
        vkey: str,
        state_path: str | Path,
        witnesses: Sequence[str] = (),
        quorum: int = 0,
        origin: str | None = None,
    ) -> None:
        """Parse the keys and the pinned origin up front (NoteError if malformed)."""
        self.log_key: VerifierKey = parse_vkey(vkey, ED25519_KEY_TYPE)
        self.witnesses: list[VerifierKey] = [parse_vkey(w, COSIGNATURE_KEY_TYPE) for w in witnesses]
        if isinstance(quorum, bool) or not isinstance(quorum, int):
            raise NoteError(f"quorum must be an integer, got {quorum!r}")
        if not 0 <= quorum <= len(self.witnesses):
            raise NoteError(f"quorum {quorum} must be between 0 and {len(self.witnesses)}")
        if origin is not None and (
            not isinstance(origin, str) or not origin or any(c < " " for c in origin)
        ):
            raise NoteError(f"the pinned origin must be one non-empty line of text, got {origin!r}")
        self.quorum = quorum
        self.origin = origin
        self.state_path = Path(state_path)

    def run(self, source: Source, progress: Progress | None = None) -> AuditResult:
        """Audit ``source``; on success the state file trusts its checkpoint.

        The log key is the one given, or the one this state learned from a rotation. A
        ``log.key_rotated`` entry met on the way is only accepted if the checkpoint sealing
        it (tree size = its index + 1) is signed by the key it rotates away from and covers
        exactly the entries verified so far; later checkpoints must then use the new key.
        """
        state = AuditState.load(self.state_path)
        if self.origin is not None and state.origin is not None and state.origin != self.origin:
            raise StateError(
                f"the state file {self.state_path} trusts the log {state.origin!r}, but the "
                f"pinned origin is {self.origin!r} (keep one state file per log)"
            )
        note = self._fetch_note(source)
        unverified = parse_checkpoint(parse_note(note)[0])
        key = parse_vkey(state.key, ED25519_KEY_TYPE) if state.key else self.log_key
        walk = _Walk(CompactRange.load(state.size, state.compact.stack), state.head, key)
        # The signature first, before anything in the note is compared with what we trust:
        # a note anyone could have written must never be reported as a rollback or a fork.
        try:
            checkpoint: Checkpoint | None = verify_checkpoint(note, key)
        except NoteError as unsigned:
            if unverified.size <= state.size or _has_line_for(note, key):
                raise _not_signed(key, unverified, unsigned) from None
            checkpoint = None  # perhaps signed by a key the log rotated to after state.size
        if checkpoint is not None:
            self._compare(state, checkpoint)
            proof_checked = self._check_proof(source, state, checkpoint)
            self._stream(source, state, checkpoint, progress, walk)
            if walk.key != key:
                try:
                    checkpoint = verify_checkpoint(note, walk.key)
                except NoteError as exc:
                    raise NoteError(
                        f"the checkpoint is signed by {key.label()}, but the log rotated its "
                        f"key to {walk.key.label()} before size {unverified.size}: {exc}"
                    ) from None
        else:
            try:
                self._stream(source, state, unverified, progress, walk)
                checkpoint = verify_checkpoint(note, walk.key)
            except AuditError as exc:
                if isinstance(exc, NoteError) or not _verifies(note, walk.key):
                    raise _not_signed(key, unverified, exc, rotation_sought=True) from None
                raise
            self._compare(state, checkpoint)
            proof_checked = self._check_proof(source, state, checkpoint)
        if walk.compact.root() != checkpoint.root:
            raise RootMismatchError(self._mismatch_message(state, checkpoint, proof_checked))
        cosignatures: dict[str, int] = {}
        if self.witnesses:
            cosignatures = verify_cosignatures(note, self.witnesses, self.quorum)
        learned = None if walk.key == self.log_key else walk.key.vkey()
        new_state = AuditState(
            checkpoint.origin, checkpoint.size, checkpoint.root, walk.head, walk.compact
        )
        new_state.checkpoint = note
        new_state.key = learned
        self._save_if_changed(new_state)
        return AuditResult(
            origin=checkpoint.origin,
            old_size=state.size,
            new_size=checkpoint.size,
            root=checkpoint.root,
            head=walk.head,
            entries_checked=checkpoint.size - state.size,
            proof_checked=proof_checked,
            cosignatures=cosignatures,
            checkpoint=note,
            origin_first_trusted=state.origin is None and self.origin is None,
        )

    @staticmethod
    def _fetch_note(source: Source) -> str:
        raw: Any = source.checkpoint()
        if isinstance(raw, str):
            return raw
        if not isinstance(raw, bytes):
            raise SourceError(f"the source gave a {type(raw).__name__} as its checkpoint")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError("the source's signed checkpoint is not valid UTF-8") from exc

    def _compare(self, state: AuditState, checkpoint: Checkpoint) -> None:
        """Compare a checkpoint whose signature was verified with what is trusted."""
        if self.origin is not None and checkpoint.origin != self.origin:
            raise ConsistencyError(
                f"origin: the checkpoint is for the log {checkpoint.origin!r}, but the pinned "
                f"origin is {self.origin!r}"
            )
        if state.origin is not None and checkpoint.origin != state.origin:
            raise ConsistencyError(
                f"origin: the checkpoint is for the log {checkpoint.origin!r}, but the state "
                f"trusts the log {state.origin!r}"
            )
        if checkpoint.size < state.size:
            raise ConsistencyError(
                f"rollback: the log now claims size {checkpoint.size}, but size {state.size} "
                "was already verified"
            )
        if checkpoint.size == state.size and checkpoint.root != state.root:
            raise ConsistencyError(
                f"fork: the log signed two different roots for size {state.size} (trusted "
                f"{state.root.hex()}, now {checkpoint.root.hex()})"
            )

    @staticmethod
    def _check_proof(source: Source, state: AuditState, checkpoint: Checkpoint) -> bool:
        if state.size in (0, checkpoint.size):
            return False
        proof = source.consistency_proof(state.size, checkpoint.size)
        if proof is None:
            return False
        try:
            verify_consistency(state.size, checkpoint.size, state.root, checkpoint.root, proof)
        except ProofError as exc:
            raise ConsistencyError(
                f"fork: the log at size {checkpoint.size} is not an extension of the trusted "
                f"log at size {state.size} ({exc})"
            ) from exc
        return True

    @staticmethod
    def _stream(
        source: Source,
        state: AuditState,
        checkpoint: Checkpoint,
        progress: Progress | None,
        walk: _Walk,
    ) -> None:
        """Check entries [state size, checkpoint size) into ``walk`` (key rotations too)."""
        start, stop = state.size, checkpoint.size
        total, index = stop - start, start
        if total == 0:
            return
        for entry in source.entries(start, stop):
            if index >= stop:
                raise SourceError(f"the source gave more than the {total} entries asked for")
            walk.head = check_entry(entry, index, walk.head, prev_is_trusted=index == start)
            walk.compact.append(hash_leaf(entry))
            if entry.endswith(_KEY_ROTATED_END):
                walk.key = Auditor._rotate(source, entry, index, walk, checkpoint.origin)
            index += 1
            if progress is not None and (index - start) % PROGRESS_EVERY == 0:
                progress(index - start, total)
        if index != stop:
            raise SourceError(f"the source ended after entry {index - 1}; expected {stop} entries")
        if progress is not None and total % PROGRESS_EVERY:
            progress(total, total)

    @staticmethod
    def _rotate(source: Source, entry: bytes, index: int, walk: _Walk, origin: str) -> VerifierKey:
        """Accept a key rotation only as sealed by the old key; return the new key."""
        key = walk.key
        try:
            data = json.loads(entry)["data"]
            old_key = parse_vkey(data["old_key"], ED25519_KEY_TYPE)
            new_key = parse_vkey(data["new_key"], ED25519_KEY_TYPE)
        except (ValueError, KeyError, TypeError, NoteError) as exc:
            raise EntryError(index, f"malformed key rotation: {exc}") from exc
        if old_key != key:
            raise EntryError(
                index, f"rotates away from {old_key.label()}, but the trusted key is {key.label()}"
            )
        fetch = getattr(source, "checkpoint_at", None)
        sealed_note = fetch(index + 1) if fetch is not None else None
        if sealed_note is None:
            raise SourceError(
                f"entry {index} rotates the log key; the source must give the checkpoint for "
                f"size {index + 1} that seals it"
            )
        sealed = verify_checkpoint(sealed_note, key)
        if sealed.origin != origin:
            raise NoteError(
                f"the checkpoint sealing the key rotation at entry {index} is for the log "
                f"{sealed.origin!r}, not {origin!r}"
            )
        if sealed.size != index + 1 or sealed.root != walk.compact.root():
            raise RootMismatchError(
                f"the checkpoint sealing the key rotation at entry {index} does not cover the "
                "verified entries"
            )
        return new_key

    @staticmethod
    def _mismatch_message(state: AuditState, checkpoint: Checkpoint, proof_checked: bool) -> str:
        span = f"entries {state.size} to {checkpoint.size - 1}"
        base = (
            f"the recomputed root of size {checkpoint.size} is not the root the log signed "
            f"({checkpoint.root.hex()})"
        )
        if state.size == 0 or proof_checked:
            return f"{base}: {span} are not the entries the log signed"
        return (
            f"{base}: either {span} are not the entries the log signed, or the log was "
            f"rewritten before size {state.size} (fork)"
        )

    def _save_if_changed(self, state: AuditState) -> None:
        data = state.to_json()
        try:
            if self.state_path.read_bytes() == data:
                return
        except OSError:
            pass
        state.save(self.state_path)


def _has_line_for(note: str, key: VerifierKey) -> bool:
    """Whether ``note`` has a signature line under ``key``'s name and key id."""
    return any(s.name == key.name and s.key_id == key.key_id for s in parse_note(note)[1])


def _verifies(note: str, key: VerifierKey) -> bool:
    try:
        verify_checkpoint(note, key)
    except NoteError:
        return False
    return True


def _not_signed(
    key: VerifierKey, claimed: Checkpoint, why: AuditError, *, rotation_sought: bool = False
) -> NoteError:
    """The error for a note the trusted key did not sign: no evidence about the log."""
    looked = (
        "; no key rotation verified in the entries before it could vouch for another key"
        if rotation_sought
        else ""
    )
    return NoteError(
        f"the checkpoint claiming size {claimed.size} is not signed by the log's key "
        f"{key.label()} ({why}{looked}): a forged or damaged note is no evidence of a "
        "rollback or fork, and nothing in it was compared with your state"
    )


def audit(
    source: Source,
    *,
    vkey: str,
    state_path: str | Path,
    witnesses: Sequence[str] = (),
    quorum: int = 0,
    progress: Progress | None = None,
    origin: str | None = None,
) -> AuditResult:
    """Audit ``source`` once with :class:`Auditor`; raise an AuditError subclass on failure.

    ``origin`` pins the log's origin: a checkpoint for another origin, or a state file
    that trusts another, is refused. Without it, a first audit trusts the origin the key
    signed (``AuditResult.origin_first_trusted``) and the state keeps it.
    """
    auditor = Auditor(
        vkey=vkey, state_path=state_path, witnesses=witnesses, quorum=quorum, origin=origin
    )
    return auditor.run(source, progress)
