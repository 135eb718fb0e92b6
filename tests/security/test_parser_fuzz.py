"""Every parser an outsider can feed, fuzzed: it accepts, or raises its documented error.

Threat model A, "Malformed checkpoints, notes, proofs, bundles, tiles, state files fed to our
parsers": random bytes and text, and mutations of valid inputs (bit flips, truncations,
splices), for entries, checkpoints and signed notes (the log's and the auditor's parsers),
cosignatures, verifier keys, inclusion and consistency proofs, bundle files, tlog-tiles paths
and entry bundles, the auditor's state file, witness add-checkpoint bodies, API cursors and
backup files. Any other exception, or an example slower than the deadline, fails.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.errors import ProblemError
from api.routes.log import _parse_tile_path as _api_tile_path
from ledger import checkpoint as log_note
from ledger import merkle as log_merkle
from ledger.audit import (
    BUNDLE_FORMAT,
    STATE_FORMAT,
    AuditState,
    BundleError,
    BundleSource,
    CompactRange,
    EntryError,
    NoteError,
    ProofError,
    SourceError,
    StateError,
    check_entry,
    encode_bundle,
    hash_leaf,
    parse_bundle,
    parse_checkpoint,
    parse_note,
    parse_tile_path,
    parse_vkey,
    tile_path,
    verify_checkpoint,
    verify_consistency,
    verify_cosignatures,
    verify_inclusion,
)
from ledger.audit.auditor import GENESIS_PREV
from ledger.audit.sources import json_too_deep
from ledger.chain import parse_entry
from ledger.encoding import canonical
from ledger.errors import InvalidInputError
from ledger.storage.backup import BACKUP_FORMAT, read_backup_header
from ledger.witness import WitnessError, parse_add_checkpoint
from projections.reader import CursorError, decode_cursor, encode_cursor

FUZZ = settings(
    max_examples=200,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# valid inputs to mutate -----------------------------------------------------------------------

ORIGIN = "ledger.test.example/open-policy"
SIGNER = log_note.Ed25519Signer.generate(ORIGIN)
VKEY = SIGNER.verifier_key()
WITNESS = log_note.CosignatureSigner.generate("witness.example/w1", clock=lambda: 1_700_000_000)


def _entries(n: int) -> list[bytes]:
    out, prev = [], "0" * 64
    for i in range(n):
        entry = canonical(
            {
                "index": i,
                "prev": prev,
                "type": "process.started",
                "subject": {"kind": "process", "id": f"p-{i}"},
                "time": "2025-01-01T00:00:00.000000Z",
                "actor": {"id": "j.smith", "role": "recorder", "org": ""},
                "data": {"title": f"Process {i}", "n": i},
            }
        )
        out.append(entry)
        prev = hashlib.sha256(entry).hexdigest()
    return out


ENTRIES = _entries(5)
LEAVES = [log_merkle.hash_leaf(e) for e in ENTRIES]
ROOT = log_merkle.root_from_leaf_hashes(LEAVES)
BODY = log_note.Checkpoint(ORIGIN, len(ENTRIES), ROOT).body()
NOTE = log_note.sign_note(BODY, [SIGNER, WITNESS])
NOTE_BYTES = NOTE.encode()


def _witness_vkey() -> str:
    return WITNESS.verifier_key()


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """``seed`` with bit flips, a truncation, an insertion or a deletion."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(seed)
        for _ in range(draw(st.integers(1, 4))):
            if not data:
                data += draw(st.binary(min_size=1, max_size=8))
                continue
            at = draw(st.integers(0, len(data) - 1))
            action = draw(st.sampled_from(["flip", "cut", "insert", "delete", "byte"]))
            if action == "flip":
                data[at] ^= 1 << draw(st.integers(0, 7))
            elif action == "cut":
                del data[at:]
            elif action == "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=16))
            elif action == "delete":
                del data[at : at + draw(st.integers(1, 16))]
            else:
                data[at] = draw(st.sampled_from([0, 10, 13, 32, 0x2D, 0xE2, 0xFF, 0x80]))
        return bytes(data)

    return build()


def hostile(seed: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, random text, or mutations of a valid ``seed``."""
    return st.one_of(
        st.binary(max_size=400),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        mutated(seed),
        mutated(seed),
    )


def only(errors: tuple[type[BaseException], ...], call: Callable[[], Any]) -> Any:
    """Run ``call``; the documented ``errors`` are fine, anything else propagates."""
    try:
        return call()
    except errors:
        return None


def test_the_seeds_are_valid() -> None:
    """The inputs mutated below really parse, so mutations start from the accepted form."""
    for entry in ENTRIES:
        parse_entry(entry)
    prev = GENESIS_PREV
    for i, entry in enumerate(ENTRIES):
        prev = check_entry(entry, i, prev)
    assert verify_checkpoint(NOTE, parse_vkey(VKEY)).root == ROOT
    log_note.verify_note(NOTE, log_note.Ed25519Verifier.from_vkey(VKEY))
    witness_vkey = _witness_vkey()
    assert verify_cosignatures(NOTE, [parse_vkey(witness_vkey, 0x04)], 1)
    assert log_note.verify_cosignatures(
        NOTE, [log_note.CosignatureVerifier.from_vkey(witness_vkey)], 1
    )


# entries ---------------------------------------------------------------------------------------


@FUZZ
@given(data=hostile(ENTRIES[1]))
def test_entries(data: bytes) -> None:
    only((InvalidInputError,), lambda: parse_entry(data))
    only((EntryError,), lambda: check_entry(data, 1, hashlib.sha256(ENTRIES[0]).digest()))


@FUZZ
@given(depth=st.integers(1, 100_000), opener=st.sampled_from([b"[", b'{"a":']))
def test_deeply_nested_entries(depth: int, opener: bytes) -> None:
    data = opener * depth
    only((InvalidInputError,), lambda: parse_entry(data))
    only((EntryError,), lambda: check_entry(data, 0, GENESIS_PREV))


# checkpoints, notes, cosignatures, keys ------------------------------------------------------


@FUZZ
@given(data=hostile(NOTE_BYTES))
def test_signed_notes_and_checkpoints(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    for note in (data, text):
        parsed = only((NoteError,), lambda note=note: parse_note(note))
        if parsed is not None:
            only((NoteError,), lambda parsed=parsed: parse_checkpoint(parsed[0]))
        only((NoteError,), lambda note=note: verify_checkpoint(note, parse_vkey(VKEY)))
        only(
            (NoteError,),
            lambda note=note: verify_cosignatures(note, [parse_vkey(_witness_vkey(), 0x04)], 1),
        )
        ours = only((log_note.CheckpointError,), lambda note=note: log_note.parse_note(note))
        if ours is not None:
            only((log_note.CheckpointError,), lambda ours=ours: log_note.Checkpoint.parse(ours[0]))
        only(
            (log_note.CheckpointError,),
            lambda note=note: log_note.verify_note(note, log_note.Ed25519Verifier.from_vkey(VKEY)),
        )
        only(
            (log_note.CheckpointError,),
            lambda note=note: log_note.verify_cosignatures(
                note, [log_note.CosignatureVerifier.from_vkey(_witness_vkey())], 1
            ),
        )
    only((NoteError,), lambda: parse_checkpoint(data))
    only((log_note.CheckpointError,), lambda: log_note.Checkpoint.parse(data))


@FUZZ
@given(data=st.one_of(hostile(VKEY.encode()), hostile(_witness_vkey().encode())))
def test_verifier_keys(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    for key_type in (0x01, 0x04):
        only((NoteError,), lambda key_type=key_type: parse_vkey(text, key_type))
    only((log_note.CheckpointError,), lambda: log_note.Ed25519Verifier.from_vkey(text))
    only((log_note.CheckpointError,), lambda: log_note.CosignatureVerifier.from_vkey(text))


# proofs ----------------------------------------------------------------------------------------

HASHES = st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40))
SIZES = st.one_of(st.integers(-3, 70), st.integers(-(2**64), 2**64))


@FUZZ
@given(
    leaf=HASHES,
    index=SIZES,
    size=SIZES,
    proof=st.lists(HASHES, max_size=70),
    root=HASHES,
)
def test_inclusion_proofs(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> None:
    only((ProofError,), lambda: verify_inclusion(leaf, index, size, proof, root))
    only(
        (log_merkle.ProofError,),
        lambda: log_merkle.verify_inclusion(leaf, index, size, proof, root),
    )


@FUZZ
@given(
    old=SIZES,
    new=SIZES,
    old_root=HASHES,
    new_root=HASHES,
    proof=st.lists(HASHES, max_size=70),
)
def test_consistency_proofs(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    only((ProofError,), lambda: verify_consistency(old, new, old_root, new_root, proof))
    only(
        (log_merkle.ProofError,),
        lambda: log_merkle.verify_consistency(old, new, old_root, new_root, proof),
    )


@FUZZ
@given(old=st.integers(1, 5), flip=st.integers(0, 255), which=st.integers(0, 10))
def test_mutated_real_proofs_are_refused(old: int, flip: int, which: int) -> None:
    """A real proof verifies; with one bit changed it is refused with ProofError."""
    proof = log_merkle.consistency_proof(old, LEAVES)
    old_root = log_merkle.root_from_leaf_hashes(LEAVES[:old])
    verify_consistency(old, len(LEAVES), old_root, ROOT, proof)
    if not proof:
        return
    bad = [bytearray(h) for h in proof]
    bad[which % len(bad)][flip % 32] ^= 1 << (flip % 8)
    try:
        verify_consistency(old, len(LEAVES), old_root, ROOT, [bytes(h) for h in bad])
    except ProofError:
        return
    raise AssertionError("a damaged consistency proof verified")


@FUZZ
@given(size=SIZES, stack=st.lists(HASHES, max_size=70))
def test_compact_ranges(size: int, stack: list[bytes]) -> None:
    only((ProofError,), lambda: CompactRange.load(size, stack))


# bundle files, tiles --------------------------------------------------------------------------


def _bundle_file(size: int = len(ENTRIES)) -> bytes:
    header = {
        "format": BUNDLE_FORMAT,
        "origin": ORIGIN,
        "size": size,
        "public_key": VKEY,
        "checkpoint": NOTE,
    }
    return json.dumps(header).encode() + b"\n" + b"".join(e + b"\n" for e in ENTRIES[:size])


def test_the_bundle_seed_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "seed.bundle"
    path.write_bytes(_bundle_file())
    source = BundleSource(path)
    assert list(source.entries(0, len(ENTRIES))) == ENTRIES


@FUZZ
@given(data=st.one_of(hostile(_bundle_file()), st.binary(max_size=2000)))
def test_bundle_files(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "fuzzed.bundle"
        path.write_bytes(data)
        try:
            source = BundleSource(path)
        except BundleError:
            return
        source.checkpoint()
        source.checkpoint_at(3)
        only((SourceError,), lambda: list(source.entries(0, source.size)))


@FUZZ
@given(
    depth=st.integers(1, 100_000),
    opener=st.sampled_from([b"[", b'{"a":', b'{"sealed":', b'[{"b":']),
    inside=st.booleans(),
)
def test_deeply_nested_bundle_headers(depth: int, opener: bytes, inside: bool) -> None:
    nested = opener * depth
    header = b'{"format":"' + BUNDLE_FORMAT.encode() + b'","x":' + nested if inside else nested
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "nested.bundle"
        path.write_bytes(header + b"\n" + ENTRIES[0] + b"\n")
        only((BundleError,), lambda: BundleSource(path))


def _json_depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_json_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_json_depth(v) for v in value.values()), default=0)
    return 0


JSON_TEXT = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(alphabet='[]{}"\\\\:,a \n\u2014', max_size=12),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\\\a', max_size=6), children, max_size=3)
    ),
    max_leaves=30,
)


@FUZZ
@given(value=JSON_TEXT, indent=st.sampled_from([None, 1]), ascii_only=st.booleans())
def test_the_auditors_json_depth_is_exact_for_valid_json(
    value: Any, indent: int | None, ascii_only: bool
) -> None:
    data = json.dumps(value, indent=indent, ensure_ascii=ascii_only).encode()
    depth = _json_depth(value)
    for limit in range(depth + 2):
        assert json_too_deep(data, limit) == (depth > limit), (data, limit)


@FUZZ
@given(data=st.one_of(st.binary(max_size=2000), st.text(alphabet='[]{}"\\\\,1', max_size=3000)))
def test_json_not_too_deep_never_recurses_in_the_parser(data: bytes | str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    if not json_too_deep(raw):
        only((ValueError,), lambda: json.loads(raw))


@FUZZ
@given(
    path=st.one_of(
        st.text(max_size=60),
        st.text(alphabet="0123456789x/.pentris", max_size=40),
        st.builds(
            tile_path,
            st.one_of(st.none(), st.integers(0, 63)),
            st.integers(0, 2**40),
            st.integers(1, 256),
        ).flatmap(lambda p: mutated(p.encode()).map(lambda b: b.decode("utf-8", "replace"))),
    )
)
def test_tile_paths(path: str) -> None:
    tile = only((ValueError,), lambda: parse_tile_path(path))
    if tile is not None:
        assert tile.path == path


@FUZZ
@given(
    path=st.one_of(
        st.text(alphabet="0123456789x/.p", max_size=9000),
        st.integers(0, 40).map(lambda n: "x999/" * n + "000"),
        st.text(max_size=60),
    )
)
def test_the_api_tile_path_parser(path: str) -> None:
    """The server's own tile-path parser (GET /tile/...): an index and width, or a 404
    problem — a path of thousands of digit groups once raised ValueError (a 500)."""
    try:
        index, width = _api_tile_path(path)
    except ProblemError as exc:
        status = exc.status
    else:
        assert 0 <= index < 10**21  # seven groups of three digits at most
        assert width is None or 1 <= width < 256
        return
    assert status == 404


@FUZZ
@given(
    data=st.one_of(st.binary(max_size=600), mutated(encode_bundle(ENTRIES))),
    width=st.one_of(st.none(), st.integers(0, 300)),
)
def test_entry_bundles(data: bytes, width: int | None) -> None:
    only((SourceError,), lambda: parse_bundle(data, width))


# the auditor's state file ---------------------------------------------------------------------


def _state_seed() -> bytes:
    compact = CompactRange()
    for entry in ENTRIES:
        compact.append(hash_leaf(entry))
    document = {
        "format": STATE_FORMAT,
        "origin": ORIGIN,
        "size": len(ENTRIES),
        "root": ROOT.hex(),
        "head": hashlib.sha256(ENTRIES[-1]).hexdigest(),
        "range": [node.hex() for node in compact.stack],
        "checkpoint": NOTE,
        "key": VKEY,
    }
    return json.dumps(document).encode()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def state_documents(draw: st.DrawFn) -> bytes:
    """The valid state with one key replaced by a random JSON value (or removed)."""
    document = json.loads(_state_seed())
    key = draw(st.sampled_from(sorted(document)))
    if draw(st.booleans()):
        document[key] = draw(JSON_VALUES)
    else:
        del document[key]
    return json.dumps(document).encode()


@FUZZ
@given(data=st.one_of(hostile(_state_seed()), state_documents(), st.binary(max_size=300)))
def test_audit_state_files(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "auditor.state"
        path.write_bytes(data)
        only((StateError,), lambda: AuditState.load(path))


def test_the_state_seed_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "auditor.state"
    path.write_bytes(_state_seed())
    assert AuditState.load(path).size == len(ENTRIES)
    path.write_bytes(b"[" * 200_000)
    only((StateError,), lambda: AuditState.load(path))


# witness requests ----------------------------------------------------------------------------

WITNESS_BODY = (
    b"old 3\n"
    + b"".join(base64.b64encode(h) + b"\n" for h in log_merkle.consistency_proof(3, LEAVES))
    + b"\n"
    + NOTE_BYTES
)


def test_the_witness_seed_is_valid() -> None:
    request = parse_add_checkpoint(WITNESS_BODY)
    assert request.old_size == 3
    assert request.checkpoint.size == len(ENTRIES)


@FUZZ
@given(data=hostile(WITNESS_BODY))
def test_witness_request_bodies(data: bytes) -> None:
    try:
        parse_add_checkpoint(data)
    except WitnessError as exc:
        status = exc.status
    else:
        return
    assert status == 400


# API cursors -----------------------------------------------------------------------------------

SECRET = b"k" * 32
CURSOR = encode_cursor(42, ("b", 7), scope="/proposals", secret=SECRET)


@FUZZ
@given(
    cursor=st.one_of(
        st.text(max_size=300),
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="),
        mutated(CURSOR.encode()).map(lambda b: b.decode("utf-8", "replace")),
        st.binary(max_size=200).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    )
)
def test_cursors(cursor: str) -> None:
    assert decode_cursor(CURSOR, scope="/proposals", secret=SECRET) == (42, ("b", 7))
    only(
        (CursorError,),
        lambda: decode_cursor(cursor, scope="/proposals", secret=SECRET, shape=(str, int)),
    )


# backups ---------------------------------------------------------------------------------------


def _backup_seed() -> bytes:
    header = {
        "format": BACKUP_FORMAT,
        "origin": ORIGIN,
        "size": 5,
        "checkpoint": NOTE,
        "tables": {"entries": 5},
        "created": "2025-01-01T00:00:00Z",
        "source": "sqlite",
    }
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as stream:
        stream.write(json.dumps(header).encode() + b"\n" + b'{"end": true}\n')
    return raw.getvalue()


def test_the_backup_seed_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "seed.backup"
    path.write_bytes(_backup_seed())
    assert read_backup_header(path).size == 5


@st.composite
def gzipped(draw: st.DrawFn) -> bytes:
    """A well-formed gzip stream of hostile content (so the JSON reader is reached)."""
    inner = draw(hostile(gzip.decompress(_backup_seed())))
    return gzip.compress(inner, mtime=0)


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), mutated(_backup_seed()), gzipped()))
def test_backup_headers(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "fuzzed.backup"
        path.write_bytes(data)
        only((InvalidInputError,), lambda: read_backup_header(path))
