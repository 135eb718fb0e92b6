"""Tests for ledger.audit, the independent auditor, against logs built with the service.

The logs here are real chains made with ledger.encoding, their roots and proofs come from
ledger.merkle and their checkpoints are signed with ledger.checkpoint; only ledger.audit
itself must stay independent of the service (checked by parsing its imports).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import http.server
import json
import re
import sys
import threading
import tracemalloc
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ledger.audit as audit_package
from ledger import merkle
from ledger.audit import (
    BUNDLE_FORMAT,
    AuditError,
    AuditState,
    BundleError,
    BundleSource,
    CompactRange,
    ConsistencyError,
    EntryError,
    HttpSource,
    NoteError,
    ProofError,
    RootMismatchError,
    SourceError,
    StateError,
    audit,
    check_entry,
    verify_consistency,
    verify_inclusion,
    write_bundle,
)
from ledger.audit import merkle as audit_merkle
from ledger.audit.auditor import MAX_STATE_BYTES
from ledger.audit.sources import MAX_JSON_DEPTH, Source, json_too_deep
from ledger.checkpoint import (
    Checkpoint,
    CosignatureSigner,
    Ed25519Signer,
    sign_note,
)
from ledger.cli import main as ledger_cli
from ledger.encoding import GENESIS_PREV, encode_entry, entry_hash

LOG_NAME = "example.gov.uk/open-policy"
AUDIT_DIR = Path(audit_package.__file__ or "").parent
TESTDATA = Path(__file__).parent.parent / "testdata" / "rfc9162"
DOCS = Path(__file__).parent.parent.parent / "docs" / "VERIFYING.md"


# --------------------------------------------------------------------------------------
# Building logs
# --------------------------------------------------------------------------------------


def log_signer(label: str = "log") -> Ed25519Signer:
    """A deterministic log key."""
    return Ed25519Signer.from_private_bytes(LOG_NAME, hashlib.sha256(label.encode()).digest())


def witness(label: str, now: int = 1_700_000_000) -> CosignatureSigner:
    """A deterministic witness key with a fixed clock."""
    seed = hashlib.sha256(b"witness " + label.encode()).digest()
    return CosignatureSigner.from_private_bytes(f"witness.example/{label}", seed, lambda: now)


def make_entry(index: int, prev: str, name: str | None = None, padding: int = 0) -> bytes:
    """One real entry, as the service's encoder writes it."""
    return encode_entry(
        index=index,
        prev=prev,
        type="organisation.registered",
        subject={"kind": "organisation", "id": f"org-{index}", "version": 1},
        time="2015-01-01T10:00:00.000000Z",
        actor={"id": "j.smith", "role": "recorder", "org": "cabinet-office"},
        data={"name": name if name is not None else f"Org {index}", "note": "x" * padding},
    )


def make_chain(size: int, *, start: Sequence[bytes] = (), rename: str = "") -> list[bytes]:
    """A valid chain of ``size`` entries extending ``start``; ``rename`` varies the content."""
    entries = list(start)
    prev = entry_hash(entries[-1]).hex() if entries else GENESIS_PREV
    for index in range(len(entries), size):
        entry = make_entry(index, prev, f"Org {index}{rename}")
        entries.append(entry)
        prev = entry_hash(entry).hex()
    return entries


def root_of(entries: Sequence[bytes]) -> bytes:
    """RFC 9162 root computed by the service's merkle module."""
    return merkle.root_from_leaf_hashes([merkle.hash_leaf(e) for e in entries])


def sign(entries: Sequence[bytes], signers: Sequence[Any] = (), origin: str = LOG_NAME) -> str:
    """A signed checkpoint note for the log ``entries``."""
    body = Checkpoint(origin, len(entries), root_of(entries)).body()
    return sign_note(body, list(signers) or [log_signer()])


@dataclass
class MemorySource:
    """A Source over a list of entries, recording what the auditor asked for."""

    log: list[bytes]
    note: str
    proofs: bool = True
    proof_override: list[bytes] | None = None
    requests: list[tuple[int, int]] = field(default_factory=list)
    proof_requests: list[tuple[int, int]] = field(default_factory=list)

    def checkpoint(self) -> bytes:
        """The signed note."""
        return self.note.encode()

    def entries(self, start: int, stop: int) -> Iterator[bytes]:
        """Entries start..stop-1, lazily."""
        self.requests.append((start, stop))
        for index in range(start, min(stop, len(self.log))):
            yield self.log[index]

    def consistency_proof(self, old: int, new: int) -> list[bytes] | None:
        """A real RFC 9162 proof, an injected one, or None."""
        self.proof_requests.append((old, new))
        if not self.proofs:
            return None
        if self.proof_override is not None:
            return self.proof_override
        return merkle.consistency_proof(old, [merkle.hash_leaf(e) for e in self.log[:new]])


def proof_between(old: int, entries: Sequence[bytes]) -> list[bytes]:
    """The RFC 9162 consistency proof from size ``old`` to the whole of ``entries``."""
    return merkle.consistency_proof(old, [merkle.hash_leaf(e) for e in entries])


def source_for(entries: list[bytes], **kwargs: Any) -> MemorySource:
    """A MemorySource serving ``entries`` under a checkpoint signed by the log key."""
    return MemorySource(entries, sign(entries), **kwargs)


VKEY = log_signer().verifier_key()


def run(source: Source, state: Path, **kwargs: Any) -> Any:
    """Audit ``source`` against the log key with the state file ``state``."""
    return audit(source, vkey=VKEY, state_path=state, **kwargs)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """Where the auditor keeps its state in this test."""
    return tmp_path / "audit-state.json"


@pytest.fixture
def trusted(state: Path) -> tuple[Path, list[bytes]]:
    """A state file that trusts the first 8 entries of the standard chain."""
    entries = make_chain(8)
    run(source_for(entries), state)
    return state, entries


# --------------------------------------------------------------------------------------
# Independence
# --------------------------------------------------------------------------------------


def test_audit_package_imports_only_stdlib_and_cryptography() -> None:
    """Every import in ledger/audit/*.py is the standard library, cryptography or itself."""
    files = sorted(AUDIT_DIR.glob("*.py"))
    assert {f.name for f in files} >= {
        "__init__.py",
        "merkle.py",
        "note.py",
        "sources.py",
        "auditor.py",
    }
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import"
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if name.startswith("ledger."):
                    assert name.startswith("ledger.audit"), f"{path.name} imports {name}"
                else:
                    assert top in sys.stdlib_module_names or top == "cryptography", (
                        f"{path.name} imports {name}"
                    )
                assert top != "orjson", f"{path.name} imports orjson"


def test_audit_package_all_is_complete() -> None:
    """ledger.audit.__all__ names exist, and every error class is exported."""
    for name in audit_package.__all__:
        assert hasattr(audit_package, name), name
    errors = {
        name
        for name, value in vars(audit_package).items()
        if isinstance(value, type) and issubclass(value, AuditError)
    }
    assert errors <= set(audit_package.__all__)
    assert issubclass(BundleError, SourceError)


# --------------------------------------------------------------------------------------
# Merkle
# --------------------------------------------------------------------------------------


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


# ledger.merkle documents the same deliberate override (12-byte placeholder roots).
AUDIT_VECTOR_OVERRIDES = {"consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"}


@pytest.mark.parametrize(
    "path",
    sorted(TESTDATA.glob("*/**/*.json")),
    ids=lambda p: p.relative_to(TESTDATA).as_posix(),
)
def test_audit_merkle_on_rfc9162_vectors(path: Path) -> None:
    """The auditor's verifiers accept exactly the vectors that should verify."""
    case = json.loads(path.read_text())
    proof = [_b64(p) for p in case["proof"] or []]
    want_error = bool(case["wantErr"])
    if path.relative_to(TESTDATA).as_posix() in AUDIT_VECTOR_OVERRIDES:
        want_error = True
    try:
        if path.relative_to(TESTDATA).parts[0] == "inclusion":
            verify_inclusion(
                _b64(case["leafHash"]),
                case["leafIdx"],
                case["treeSize"],
                proof,
                _b64(case["root"]),
            )
        else:
            verify_consistency(
                case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), proof
            )
    except ProofError:
        rejected = True
    else:
        rejected = False
    assert rejected is want_error, case["desc"]


@settings(max_examples=60, deadline=None)
@given(
    leaves=st.lists(st.binary(max_size=8), min_size=1, max_size=40),
    data=st.data(),
)
def test_audit_merkle_agrees_with_the_service(leaves: list[bytes], data: st.DataObject) -> None:
    """Proofs made by ledger.merkle verify in ledger.audit.merkle; flipped bits do not."""
    hashes = [audit_merkle.hash_leaf(leaf) for leaf in leaves]
    assert hashes == [merkle.hash_leaf(leaf) for leaf in leaves]
    size = len(hashes)
    root = merkle.root_from_leaf_hashes(hashes)
    index = data.draw(st.integers(0, size - 1))
    inclusion = merkle.inclusion_proof(index, hashes)
    verify_inclusion(hashes[index], index, size, inclusion, root)
    old = data.draw(st.integers(0, size))
    old_root = merkle.root_from_leaf_hashes(hashes[:old])
    proof = merkle.consistency_proof(old, hashes)
    verify_consistency(old, size, old_root, root, proof)
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[position] = bytes([bad[position][0] ^ 1]) + bad[position][1:]
        with pytest.raises(ProofError):
            verify_consistency(old, size, old_root, root, bad)
    if inclusion:
        with pytest.raises(ProofError):
            verify_inclusion(hashes[index], index, size, inclusion[:-1], root)


def test_compact_range_matches_the_service_root_and_reloads() -> None:
    """The compact range gives the service's root at every size and survives save/load."""
    compact = CompactRange()
    hashes: list[bytes] = []
    assert compact.root() == merkle.EMPTY_ROOT
    for n in range(70):
        leaf = merkle.hash_leaf(n.to_bytes(2, "big"))
        hashes.append(leaf)
        compact.append(leaf)
        assert compact.root() == merkle.root_from_leaf_hashes(hashes)
        assert len(compact.stack) == (n + 1).bit_count()
        reloaded = CompactRange.load(compact.size, compact.stack)
        assert reloaded.root() == compact.root()
    with pytest.raises(ProofError, match="subtree roots"):
        CompactRange.load(5, [bytes(32)])
    with pytest.raises(ProofError, match="32-byte"):
        CompactRange.load(1, [bytes(31)])


def test_consistency_edge_case_policy() -> None:
    """From size 0 any root is consistent with an empty proof; equal sizes need equal roots."""
    root = merkle.hash_leaf(b"x")
    verify_consistency(0, 1, audit_merkle.EMPTY_ROOT, root, [])
    verify_consistency(0, 0, audit_merkle.EMPTY_ROOT, audit_merkle.EMPTY_ROOT, [])
    verify_consistency(1, 1, root, root, [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(0, 1, audit_merkle.EMPTY_ROOT, root, [root])
    with pytest.raises(ProofError, match="different roots"):
        verify_consistency(1, 1, root, bytes(32), [])
    with pytest.raises(ProofError, match="larger than"):
        verify_consistency(2, 1, root, root, [])


# --------------------------------------------------------------------------------------
# Entries
# --------------------------------------------------------------------------------------


def test_check_entry_returns_the_chain_hash() -> None:
    """A well-formed entry gives SHA-256 of its bytes, the next entry's prev."""
    entry = make_entry(0, GENESIS_PREV)
    assert check_entry(entry, 0, bytes(32)) == hashlib.sha256(entry).digest()


BAD_ENTRIES: list[tuple[bytes, str]] = [
    (b"not json", "not a single JSON object"),
    (b' {"index":3}', "not a single JSON object"),
    (b"[1]", "not a single JSON object"),
    (b"\xff{}", "not valid UTF-8"),
    (b'{"index":3,"index":3,"prev":"' + b"0" * 64 + b'"}', "duplicate key"),
    (b'{"index":3,"prev":"' + b"0" * 64 + b'","x":1.5}', "no floats"),
    (b'{"index":3,"prev":"' + b"0" * 64 + b'","x":NaN}', "no floats"),
    (b'{"index":"3","prev":"' + b"0" * 64 + b'"}', "index field must be an integer"),
    (b'{"index":true,"prev":"' + b"0" * 64 + b'"}', "index field must be an integer"),
    (b'{"prev":"' + b"0" * 64 + b'"}', "index field must be an integer"),
    (b'{"index":4,"prev":"' + b"0" * 64 + b'"}', "index field is 4"),
    (b'{"index":3,"prev":"' + b"A" * 64 + b'"}', "64 lowercase hex"),
    (b'{"index":3,"prev":"' + b"0" * 63 + b'"}', "64 lowercase hex"),
    (b'{"index":3,"prev":"' + b"1" * 64 + b'"}', "prev does not match the hash of entry 2"),
    (b'{"index":3,"x":"' + b"y" * 65_600 + b'"}', "over the 65535-byte limit"),
    (b'{"a":' + b"[" * 30_000 + b"]" * 30_000 + b"}", "nests JSON deeper than 64 levels"),
    (b'{"a":' + b"[" * 64 + b"]" * 64 + b"}", "nests JSON deeper than 64 levels"),
    (b'{"a":' + b"[" * 63 + b"]" * 63 + b"}", "index field must be an integer"),
]


@pytest.mark.parametrize(("entry", "message"), BAD_ENTRIES, ids=[m for _, m in BAD_ENTRIES])
def test_check_entry_rejects_malformed_entries_naming_the_index(entry: bytes, message: str) -> None:
    """Each malformed entry is an EntryError that names its index and the problem."""
    with pytest.raises(EntryError, match=re.escape(message)) as caught:
        check_entry(entry, 3, bytes(32))
    assert caught.value.index == 3
    assert str(caught.value).startswith("entry 3: ")


# --------------------------------------------------------------------------------------
# The audit
# --------------------------------------------------------------------------------------


def test_audit_from_empty_state_then_incrementally(state: Path) -> None:
    """A first audit trusts the whole log; the next one checks only the new entries."""
    entries = make_chain(13)
    first = run(source_for(entries), state)
    assert (first.old_size, first.new_size, first.entries_checked) == (0, 13, 13)
    assert first.root == root_of(entries)
    assert first.head == entry_hash(entries[-1])
    assert not first.proof_checked
    saved = json.loads(state.read_text())
    assert saved["size"] == 13
    assert saved["root"] == root_of(entries).hex()
    assert saved["head"] == entry_hash(entries[-1]).hex()
    assert len(saved["range"]) == (13).bit_count()
    assert saved["origin"] == LOG_NAME
    assert saved["format"] == "open-policy-ledger-audit-state/v1"

    longer = make_chain(40, start=entries)
    source = source_for(longer)
    second = run(source, state)
    assert (second.old_size, second.new_size, second.entries_checked) == (13, 40, 27)
    assert second.proof_checked
    assert source.requests == [(13, 40)]
    assert source.proof_requests == [(13, 40)]
    assert json.loads(state.read_text())["size"] == 40


def test_audit_of_an_unchanged_log_fetches_nothing(trusted: tuple[Path, list[bytes]]) -> None:
    """Auditing the same checkpoint again reads no entries and no proof."""
    state, entries = trusted
    before = state.read_bytes()
    source = source_for(entries)
    result = run(source, state)
    assert result.entries_checked == 0
    assert source.requests == []
    assert source.proof_requests == []
    assert state.read_bytes() == before


def test_audit_of_an_empty_log(state: Path) -> None:
    """A log of size 0 has the empty root and is trusted as such."""
    result = run(source_for([]), state)
    assert (result.new_size, result.root) == (0, merkle.EMPTY_ROOT)
    assert json.loads(state.read_text())["head"] == "0" * 64


def test_audit_without_proofs_recomputes_consistency(state: Path) -> None:
    """A source without proofs is still checked: the root is rebuilt from the trusted range."""
    entries = make_chain(8)
    run(source_for(entries, proofs=False), state)
    result = run(source_for(make_chain(21, start=entries), proofs=False), state)
    assert (result.old_size, result.new_size, result.proof_checked) == (8, 21, False)


def test_rollback_is_a_consistency_error(trusted: tuple[Path, list[bytes]]) -> None:
    """A checkpoint smaller than the trusted one is a rollback."""
    state, entries = trusted
    with pytest.raises(ConsistencyError, match="rollback: the log now claims size 5"):
        run(source_for(entries[:5]), state)


def test_same_size_with_another_root_is_a_fork(trusted: tuple[Path, list[bytes]]) -> None:
    """Two signed roots for one size are a fork."""
    state, _ = trusted
    with pytest.raises(ConsistencyError, match="fork: the log signed two different roots"):
        run(source_for(make_chain(8, rename="'")), state)


def test_rewritten_log_is_caught_by_the_servers_proof(
    trusted: tuple[Path, list[bytes]],
) -> None:
    """A log rewritten from entry 2 and re-signed fails the consistency proof it serves."""
    state, entries = trusted
    rewritten = make_chain(12, start=entries[:2], rename=" (rewritten)")
    source = source_for(rewritten)
    with pytest.raises(ConsistencyError, match="not an extension of the trusted log at size 8"):
        run(source, state)
    assert source.requests == []


def test_rewritten_log_is_caught_by_local_recomputation(
    trusted: tuple[Path, list[bytes]],
) -> None:
    """Without proofs, a rewritten and re-chained log breaks the trusted head link."""
    state, entries = trusted
    rewritten = make_chain(12, start=entries[:2], rename=" (rewritten)")
    with pytest.raises(EntryError, match=r"entry 8: prev does not match .* trusted state"):
        run(source_for(rewritten, proofs=False), state)


def test_rewrite_that_keeps_the_head_link_is_caught_by_the_root(
    trusted: tuple[Path, list[bytes]],
) -> None:
    """Without proofs, rewriting an old entry but keeping later ones fails the root check."""
    state, entries = trusted
    forged = [*entries[:2], make_entry(2, entry_hash(entries[1]).hex(), "Forged"), *entries[3:]]
    extended = make_chain(12, start=forged)
    with pytest.raises(RootMismatchError, match="rewritten before size 8"):
        run(source_for(extended, proofs=False), state)


def test_mutated_entry_is_named_by_the_next_link(trusted: tuple[Path, list[bytes]]) -> None:
    """Changing entry 9's bytes is caught at entry 10, whose prev no longer matches."""
    state, entries = trusted
    longer = make_chain(16, start=entries)
    source = MemorySource(longer, sign(longer), proof_override=proof_between(8, longer))
    longer[9] = longer[9].replace(b"Org 9", b"Org X")
    with pytest.raises(EntryError, match=r"^entry 10: prev does not match the hash of entry 9$"):
        run(source, state)


def test_mutated_last_entry_fails_the_root(trusted: tuple[Path, list[bytes]]) -> None:
    """Changing the last entry keeps the chain but not the signed root."""
    state, entries = trusted
    longer = make_chain(16, start=entries)
    source = MemorySource(longer, sign(longer), proof_override=proof_between(8, longer))
    longer[15] = longer[15].replace(b"Org 15", b"Org XV")
    with pytest.raises(RootMismatchError, match="entries 8 to 15 are not the entries"):
        run(source, state)


def test_mutated_entry_on_first_audit_is_named(state: Path) -> None:
    """On a first audit, a changed entry is named by the link after it."""
    entries = make_chain(6)
    signed = sign(entries)
    entries[2] = entries[2].replace(b"Org 2", b"Org Z")
    with pytest.raises(EntryError, match=r"^entry 3: prev does not match the hash of entry 2$"):
        run(MemorySource(entries, signed), state)


@pytest.mark.parametrize("flip", [0, 1, 2, 3])
def test_mutated_proofs_are_rejected(state: Path, flip: int) -> None:
    """A consistency proof from 6 to 13 (four hashes) with one changed bit does not verify."""
    entries = make_chain(6)
    run(source_for(entries), state)
    longer = make_chain(13, start=entries)
    proof = proof_between(6, longer)
    assert len(proof) == 4
    proof[flip] = bytes([proof[flip][0] ^ 0x80]) + proof[flip][1:]
    with pytest.raises(ConsistencyError, match="not an extension of the trusted log at size 6"):
        run(source_for(longer, proof_override=proof), state)


def test_truncated_and_padded_proofs_are_rejected(trusted: tuple[Path, list[bytes]]) -> None:
    """Proofs one element too short or too long are refused."""
    state, entries = trusted
    longer = make_chain(13, start=entries)
    proof = proof_between(8, longer)
    for bad in (proof[:-1], [*proof, proof[0]], [], [b"short"]):
        with pytest.raises(ConsistencyError):
            run(source_for(longer, proof_override=bad), state)


def test_wrong_index_is_named(state: Path) -> None:
    """An entry whose index field is not its position is refused at that position."""
    entries = make_chain(6)
    entries[4] = make_entry(5, entry_hash(entries[3]).hex(), "Org 4")
    with pytest.raises(EntryError, match=r"^entry 4: its index field is 5") as caught:
        run(source_for(entries), state)
    assert caught.value.index == 4


def test_broken_prev_is_named(state: Path) -> None:
    """An entry whose prev is not the previous entry's hash is refused at its index."""
    entries = make_chain(6)
    entries[4] = make_entry(4, "ab" * 32)
    with pytest.raises(EntryError, match=r"^entry 4: prev does not match the hash of entry 3$"):
        run(source_for(entries), state)


def test_first_entry_must_have_a_zero_prev(state: Path) -> None:
    """Entry 0 must carry 64 zeros as its prev."""
    entries = [make_entry(0, "11" * 32)]
    with pytest.raises(EntryError, match=r"^entry 0: prev must be 64 zeros"):
        run(source_for(entries), state)


def test_source_with_too_few_or_too_many_entries(state: Path) -> None:
    """A source that ends early or keeps going is a SourceError."""
    entries = make_chain(6)
    short = MemorySource(entries[:4], sign(entries))
    with pytest.raises(SourceError, match="ended after entry 3; expected 6"):
        run(short, state)

    class Chatty(MemorySource):
        def entries(self, start: int, stop: int) -> Iterator[bytes]:
            yield from self.log[start:]

    chatty = Chatty([*entries, make_entry(6, entry_hash(entries[5]).hex())], sign(entries))
    with pytest.raises(SourceError, match="more than the 6 entries"):
        run(chatty, state)


def test_checkpoint_must_be_signed_by_the_log_key(state: Path) -> None:
    """A note signed by another key, or not a note at all, is a NoteError."""
    entries = make_chain(3)
    with pytest.raises(NoteError, match="not signed by the log key"):
        run(MemorySource(entries, sign(entries, [log_signer("impostor")])), state)
    with pytest.raises(NoteError):
        run(MemorySource(entries, "garbage"), state)

    class Binary(MemorySource):
        def checkpoint(self) -> bytes:
            return b"\xff\xfe"

    with pytest.raises(SourceError, match="not valid UTF-8"):
        run(Binary(entries, ""), state)


def test_malformed_vkeys_are_refused_before_reading(state: Path) -> None:
    """A bad log key or witness key is a NoteError, and the source is not read."""
    source = source_for(make_chain(2))
    with pytest.raises(NoteError):
        audit(source, vkey="nonsense", state_path=state)
    with pytest.raises(NoteError, match="type 0x01, expected 0x04"):
        audit(source, vkey=VKEY, state_path=state, witnesses=[VKEY], quorum=1)
    with pytest.raises(NoteError, match="quorum 2"):
        audit(
            source, vkey=VKEY, state_path=state, witnesses=[witness("a").verifier_key()], quorum=2
        )
    assert source.requests == []
    assert not state.exists()


def test_witness_quorum(state: Path) -> None:
    """Cosignatures are counted per witness; the audit fails below the quorum."""
    entries = make_chain(5)
    w1, w2, w3 = witness("a", 11), witness("b", 22), witness("c")
    note = sign(entries, [log_signer(), w1, w2])
    vkeys = [w.verifier_key() for w in (w1, w2, w3)]
    with pytest.raises(NoteError, match="fewer than the quorum of 3"):
        run(MemorySource(entries, note), state, witnesses=vkeys, quorum=3)
    assert not state.exists()
    result = run(MemorySource(entries, note), state, witnesses=vkeys, quorum=2)
    assert result.cosignatures == {w1.name: 11, w2.name: 22}


def test_origin_change_is_a_consistency_error(trusted: tuple[Path, list[bytes]]) -> None:
    """A checkpoint for another origin under the same key is not this log; both are named."""
    state, entries = trusted
    before = state.read_bytes()
    longer = make_chain(10, start=entries)
    source = MemorySource(longer, sign(longer, origin="other.example/log"))
    with pytest.raises(ConsistencyError, match="origin") as caught:
        run(source, state)
    assert "'other.example/log'" in str(caught.value)
    assert repr(LOG_NAME) in str(caught.value)
    assert source.requests == []
    assert source.proof_requests == []
    assert state.read_bytes() == before


# --------------------------------------------------------------------------------------
# The signature first: a note the log's key did not sign is no evidence of anything
# --------------------------------------------------------------------------------------


def _garbage_signature(note: str) -> str:
    """``note`` with the log's signature replaced by garbage, under the log's key id."""
    body, _, line = note[:-1].rpartition("\n")
    name, encoded = line[2:].split(" ")
    raw = base64.b64decode(encoded)
    garbage = raw[:4] + hashlib.sha512(raw).digest()
    return f"{body}\n\u2014 {name} {base64.b64encode(garbage).decode()}\n"


FORGERIES: dict[str, Callable[[list[bytes]], str]] = {
    "another key": lambda log: sign(log, [log_signer("impostor")]),
    "garbage under the log's key id": lambda log: _garbage_signature(sign(log)),
}

# What the forged note claims, against a state that trusts the 8 entries of make_chain(8):
CLAIMS: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    "smaller (looks like a rollback)": lambda trusted: trusted[:5],
    "same size, other root (looks like a fork)": lambda trusted: make_chain(8, rename="!"),
    "same size, same root": lambda trusted: trusted,
    "larger, extends the trusted log": lambda trusted: make_chain(12, start=trusted),
    "larger, rewritten (looks like a fork)": lambda trusted: make_chain(12, rename="!"),
}


@pytest.mark.parametrize("proofs", [True, False], ids=["with proofs", "without proofs"])
@pytest.mark.parametrize("claim", sorted(CLAIMS))
@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_forged_checkpoint_is_not_signed_never_a_rollback_or_fork(
    trusted: tuple[Path, list[bytes]], forgery: str, claim: str, proofs: bool
) -> None:
    """A man in the middle cannot make the auditor report false evidence against the log.

    Whatever the forged note claims (smaller, same size with another root, larger and
    rewritten), the audit says it is not signed by the log's key, and no proof was asked
    for: nothing in the note was compared with the kept state before its signature.
    """
    state, entries = trusted
    before = state.read_bytes()
    served = CLAIMS[claim](entries)
    source = MemorySource(served, FORGERIES[forgery](served), proofs=proofs)
    with pytest.raises(AuditError) as caught:
        run(source, state)
    assert type(caught.value) is NoteError, caught.value
    assert f"is not signed by the log's key {LOG_NAME}+" in str(caught.value)
    assert "no evidence of a rollback or fork" in str(caught.value)
    assert source.proof_requests == []
    if len(served) <= len(entries) or forgery != "another key":
        assert source.requests == []  # refused before anything was read
    assert state.read_bytes() == before


def test_a_forged_checkpoint_is_refused_on_a_first_audit(state: Path) -> None:
    """From an empty state too, a note signed by another key is 'not signed', and no state is
    written, even if the entries served chain correctly."""
    entries = make_chain(6)
    with pytest.raises(NoteError, match="is not signed by the log's key"):
        run(MemorySource(entries, sign(entries, [log_signer("impostor")])), state)
    assert not state.exists()


def test_the_genuine_rollback_and_fork_are_still_reported(
    trusted: tuple[Path, list[bytes]],
) -> None:
    """Signed by the log's key (beside a forged signature by another), the same notes are
    evidence: rollback and fork, as before."""
    state, entries = trusted
    both = [log_signer(), log_signer("impostor")]
    with pytest.raises(ConsistencyError, match=r"^rollback: "):
        run(MemorySource(entries[:5], sign(entries[:5], both)), state)
    forked = make_chain(8, rename="!")
    with pytest.raises(ConsistencyError, match=r"^fork: "):
        run(MemorySource(forked, sign(forked, both)), state)


# --------------------------------------------------------------------------------------
# Key rotation, where the signature can only be checked once the rotation is read
# --------------------------------------------------------------------------------------


@dataclass
class RotatedSource(MemorySource):
    """A MemorySource that also serves the checkpoints sealing key rotations."""

    sealed: dict[int, str] = field(default_factory=dict)

    def checkpoint_at(self, size: int) -> bytes | None:
        """The sealing checkpoint for ``size``, if any."""
        note = self.sealed.get(size)
        return None if note is None else note.encode()


def rotated_log(trusted: list[bytes], size: int = 12) -> tuple[list[bytes], dict[int, str]]:
    """``trusted`` then a rotation from log_signer() to log_signer('next') at its end, sealed
    by the old key, then more entries up to ``size``."""
    at = len(trusted)
    rotation = encode_entry(
        index=at,
        prev=entry_hash(trusted[-1]).hex(),
        type="log.key_rotated",
        subject={"kind": "log", "id": LOG_NAME, "version": 1},
        time="2015-01-02T10:00:00.000000Z",
        actor={"id": "ops", "role": "admin", "org": "cabinet-office"},
        data={
            "old_key": VKEY,
            "new_key": log_signer("next").verifier_key(),
            "reason": "scheduled rotation",
        },
    )
    log = make_chain(size, start=[*trusted, rotation])
    return log, {at + 1: sign(log[: at + 1])}


def test_a_rotation_is_followed_and_its_new_key_learned(
    trusted: tuple[Path, list[bytes]],
) -> None:
    """A note signed by the key the log rotated to verifies once the sealed rotation is read."""
    state, entries = trusted
    log, sealed = rotated_log(entries)
    source = RotatedSource(log, sign(log, [log_signer("next")]), sealed=sealed)
    result = run(source, state)
    assert (result.old_size, result.new_size) == (8, 12)
    assert json.loads(state.read_text())["key"] == log_signer("next").verifier_key()


def test_after_a_rotation_a_forged_note_is_still_not_signed(
    trusted: tuple[Path, list[bytes]],
) -> None:
    """The log rotated its key; a note signed by neither key is 'not signed', even when the
    entries after the rotation are damaged (that would otherwise be reported as entry damage)."""
    state, entries = trusted
    before = state.read_bytes()
    log, sealed = rotated_log(entries)
    for damage in (False, True):
        served = list(log)
        if damage:
            served[10] = served[10].replace(b"Org 10", b"Org X")
        source = RotatedSource(served, sign(log, [log_signer("impostor")]), sealed=sealed)
        with pytest.raises(AuditError) as caught:
            run(source, state)
        assert type(caught.value) is NoteError, caught.value
        assert "is not signed by the log's key" in str(caught.value)
        assert "no key rotation verified" in str(caught.value)
    assert state.read_bytes() == before


def test_after_a_rotation_damage_under_the_new_keys_note_is_entry_damage(
    trusted: tuple[Path, list[bytes]],
) -> None:
    """Under a note the new key really signed, a damaged entry after the rotation is named."""
    state, entries = trusted
    log, sealed = rotated_log(entries)
    note = sign(log, [log_signer("next")])
    log[10] = log[10].replace(b"Org 10", b"Org X")
    with pytest.raises(EntryError, match=r"^entry 11: prev does not match"):
        run(RotatedSource(log, note, sealed=sealed), state)


def test_a_note_by_the_old_key_over_its_own_rotation_is_refused(
    trusted: tuple[Path, list[bytes]],
) -> None:
    """Once the log rotated away from a key, that key's note for a later size is refused."""
    state, entries = trusted
    log, sealed = rotated_log(entries)
    with pytest.raises(NoteError, match="but the log rotated its key to"):
        run(RotatedSource(log, sign(log), sealed=sealed), state)


def test_a_sealing_checkpoint_for_another_origin_is_refused(
    trusted: tuple[Path, list[bytes]],
) -> None:
    """The checkpoint that seals a rotation must be for the log being audited."""
    state, entries = trusted
    log, _ = rotated_log(entries)
    sealed = {9: sign(log[:9], origin="other.example/log")}
    with pytest.raises(NoteError, match="not signed by the log's key") as caught:
        run(RotatedSource(log, sign(log, [log_signer("next")]), sealed=sealed), state)
    assert "sealing the key rotation at entry 8 is for the log 'other.example/log'" in str(
        caught.value
    )


# --------------------------------------------------------------------------------------
# Pinning the origin
# --------------------------------------------------------------------------------------


def test_a_first_audit_trusts_the_origin_and_keeps_it(state: Path) -> None:
    """Without a pin, a first audit says it took the origin on trust; the state keeps it."""
    entries = make_chain(4)
    first = run(source_for(entries), state)
    assert first.origin_first_trusted
    assert json.loads(state.read_text())["origin"] == LOG_NAME
    second = run(source_for(make_chain(6, start=entries)), state)
    assert not second.origin_first_trusted


def test_a_first_audit_of_an_empty_log_keeps_its_origin(state: Path) -> None:
    """Even at size 0 the state records the origin, so another log is refused later."""
    run(source_for([]), state)
    assert json.loads(state.read_text())["origin"] == LOG_NAME
    other = make_chain(3)
    with pytest.raises(ConsistencyError, match=re.escape("'other.example/log'")):
        run(MemorySource(other, sign(other, origin="other.example/log")), state)


def test_the_pinned_origin_is_enforced_on_a_first_audit(state: Path) -> None:
    """A pinned origin refuses a checkpoint for another origin, naming both."""
    entries = make_chain(4)
    with pytest.raises(ConsistencyError) as caught:
        run(source_for(entries), state, origin="other.example/log")
    assert f"the checkpoint is for the log {LOG_NAME!r}" in str(caught.value)
    assert "the pinned origin is 'other.example/log'" in str(caught.value)
    assert not state.exists()
    pinned = run(source_for(entries), state, origin=LOG_NAME)
    assert not pinned.origin_first_trusted
    assert json.loads(state.read_text())["origin"] == LOG_NAME


def test_a_pin_that_contradicts_the_state_is_refused_before_reading(
    trusted: tuple[Path, list[bytes]],
) -> None:
    """A state kept for one log is not used for another: refused before the source is read."""
    state, entries = trusted
    before = state.read_bytes()

    class Counting(MemorySource):
        notes: int = 0

        def checkpoint(self) -> bytes:
            self.notes += 1
            return super().checkpoint()

    source = Counting(entries, sign(entries))
    with pytest.raises(StateError) as caught:
        run(source, state, origin="other.example/log")
    assert f"trusts the log {LOG_NAME!r}" in str(caught.value)
    assert "the pinned origin is 'other.example/log'" in str(caught.value)
    assert source.notes == 0
    assert state.read_bytes() == before


@pytest.mark.parametrize("origin", ["", "two\nlines", "tab\there"])
def test_a_malformed_pinned_origin_is_refused(state: Path, origin: str) -> None:
    """The pinned origin must be one non-empty line, as a checkpoint's first line is."""
    with pytest.raises(NoteError, match="pinned origin must be one non-empty line"):
        run(source_for(make_chain(2)), state, origin=origin)
    assert not state.exists()


def test_progress_is_reported(state: Path) -> None:
    """Progress is called while streaming and once with the final count."""
    calls: list[tuple[int, int]] = []
    run(
        source_for(make_chain(2500)),
        state,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(1000, 2500), (2000, 2500), (2500, 2500)]


# --------------------------------------------------------------------------------------
# The state file never changes on failure
# --------------------------------------------------------------------------------------


def _tampered(entries: list[bytes]) -> MemorySource:
    longer = make_chain(12, start=entries)
    signed = sign(longer)
    longer[10] = longer[10].replace(b"Org 10", b"Org 1O")
    return MemorySource(longer, signed)


FAILURES: dict[str, Callable[[list[bytes]], MemorySource]] = {
    "rollback": lambda e: source_for(e[:4]),
    "fork": lambda e: source_for(make_chain(8, rename="!")),
    "bad proof": lambda e: source_for(make_chain(12, start=e), proof_override=[bytes(32)]),
    "rewritten, no proofs": lambda e: source_for(
        make_chain(12, start=e[:1], rename="~"), proofs=False
    ),
    "tampered entry": _tampered,
    "short source": lambda e: MemorySource(
        make_chain(12, start=e)[:10], sign(make_chain(12, start=e))
    ),
    "bad signature": lambda e: MemorySource(
        make_chain(12, start=e), sign(make_chain(12, start=e), [log_signer("x")])
    ),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_state_file_is_untouched_by_any_failure(
    trusted: tuple[Path, list[bytes]], failure: str
) -> None:
    """Whatever fails, the state file keeps exactly its previous bytes and no temp file stays."""
    state, entries = trusted
    before = state.read_bytes()
    with pytest.raises(AuditError):
        run(FAILURES[failure](entries), state)
    assert state.read_bytes() == before
    assert sorted(p.name for p in state.parent.iterdir()) == [state.name]


def test_failed_first_audit_creates_no_state_file(state: Path) -> None:
    """A first audit that fails leaves no state file behind."""
    entries = make_chain(5)
    entries[3] = entries[3].replace(b"Org 3", b"Org E")
    with pytest.raises(EntryError):
        run(MemorySource(entries, sign(make_chain(5))), state)
    assert not state.exists()
    assert list(state.parent.iterdir()) == []


def _state_document(trusted_state: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(trusted_state.read_text())
    return loaded


STATE_CORRUPTIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "not json": lambda d: "{oops",
    "not an object": lambda d: [],
    "missing key": lambda d: {k: v for k, v in d.items() if k != "head"},
    "extra key": lambda d: d | {"extra": 1},
    "wrong format": lambda d: d | {"format": "v0"},
    "negative size": lambda d: d | {"size": -1},
    "bad root hex": lambda d: d | {"root": "zz" * 32},
    "uppercase head": lambda d: d | {"head": d["head"].upper()},
    "range too short": lambda d: d | {"range": d["range"][:-1]},
    "range not the root": lambda d: d | {"range": ["00" * 32 for _ in d["range"]]},
    "size not the checkpoint": lambda d: d | {"size": 9, "range": [*d["range"], "00" * 32]},
    "checkpoint garbage": lambda d: d | {"checkpoint": "garbage"},
}


@pytest.mark.parametrize("corruption", sorted(STATE_CORRUPTIONS))
def test_malformed_state_file_is_a_state_error(
    trusted: tuple[Path, list[bytes]], corruption: str
) -> None:
    """A damaged state file is reported as StateError, and left as it is."""
    state, entries = trusted
    document = STATE_CORRUPTIONS[corruption](_state_document(state))
    state.write_text(document if isinstance(document, str) else json.dumps(document))
    before = state.read_bytes()
    source = source_for(make_chain(10, start=entries))
    with pytest.raises(StateError):
        run(source, state)
    assert state.read_bytes() == before
    assert source.requests == []


def test_state_round_trip() -> None:
    """AuditState serialises and parses back to the same values."""
    entries = make_chain(11)
    compact = CompactRange()
    for entry in entries:
        compact.append(merkle.hash_leaf(entry))
    original = AuditState(
        LOG_NAME, 11, compact.root(), entry_hash(entries[-1]), compact, sign(entries)
    )
    copy = AuditState.from_json(original.to_json())
    assert copy.to_json() == original.to_json()
    assert AuditState.from_json(AuditState().to_json()).size == 0


# --------------------------------------------------------------------------------------
# Bundles
# --------------------------------------------------------------------------------------


def bundle(path: Path, entries: list[bytes]) -> Path:
    """Write a bundle of ``entries`` with a fresh checkpoint."""
    write_bundle(
        path,
        public_key=VKEY,
        checkpoint_note=sign(entries),
        entries=iter(entries),
        size=len(entries),
    )
    return path


def test_bundle_round_trip(tmp_path: Path, state: Path) -> None:
    """A bundle written by write_bundle audits cleanly, first whole and then as an extension."""
    entries = make_chain(9)
    path = bundle(tmp_path / "log.bundle", entries)
    lines = path.read_bytes().split(b"\n")
    header = json.loads(lines[0])
    assert list(header) == ["format", "origin", "size", "public_key", "checkpoint"]
    assert header["format"] == "open-policy-ledger-bundle/v1"
    assert (header["origin"], header["size"], header["public_key"]) == (LOG_NAME, 9, VKEY)
    assert lines[1:] == [*entries, b""]
    source = BundleSource(path)
    assert (source.origin, source.size, source.public_key) == (LOG_NAME, 9, VKEY)
    assert list(source.entries(3, 5)) == entries[3:5]
    assert source.consistency_proof(1, 9) is None
    assert run(source, state).new_size == 9
    longer = make_chain(30, start=entries)
    result = run(BundleSource(bundle(tmp_path / "log2.bundle", longer)), state)
    assert (result.old_size, result.new_size) == (9, 30)


def test_bundle_of_a_rewritten_log_fails(tmp_path: Path, state: Path) -> None:
    """A bundle whose history differs from what the auditor trusts is refused."""
    run(BundleSource(bundle(tmp_path / "a.bundle", make_chain(9))), state)
    rewritten = make_chain(15, rename="*")
    with pytest.raises(EntryError, match="trusted state"):
        run(BundleSource(bundle(tmp_path / "b.bundle", rewritten)), state)


def _rewrite(path: Path, edit: Callable[[list[bytes]], list[bytes]]) -> None:
    path.write_bytes(b"\n".join(edit(path.read_bytes().split(b"\n"))))


def _header_edit(change: Callable[[dict[str, Any]], Any]) -> Callable[[list[bytes]], list[bytes]]:
    def edit(lines: list[bytes]) -> list[bytes]:
        value = change(json.loads(lines[0]))
        lines[0] = value if isinstance(value, bytes) else json.dumps(value).encode()
        return lines

    return edit


BUNDLE_DAMAGE: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    "empty file": lambda lines: [],
    "header not json": _header_edit(lambda h: b"{nope"),
    "header not object": _header_edit(lambda h: [1]),
    "wrong format": _header_edit(lambda h: h | {"format": "other/v1"}),
    "extra header key": _header_edit(lambda h: h | {"more": 1}),
    "missing header key": _header_edit(lambda h: {k: v for k, v in h.items() if k != "origin"}),
    "size disagrees": _header_edit(lambda h: h | {"size": 5}),
    "origin disagrees": _header_edit(lambda h: h | {"origin": "x"}),
    "bad checkpoint": _header_edit(lambda h: h | {"checkpoint": "nope"}),
}


@pytest.mark.parametrize("damage", sorted(BUNDLE_DAMAGE))
def test_malformed_bundle_header_is_a_bundle_error(tmp_path: Path, damage: str) -> None:
    """A bundle whose header is damaged is refused when it is opened."""
    path = bundle(tmp_path / "log.bundle", make_chain(6))
    _rewrite(path, BUNDLE_DAMAGE[damage])
    with pytest.raises(BundleError, match=str(path)):
        BundleSource(path)


def test_truncated_or_padded_bundle_fails_the_audit(tmp_path: Path, state: Path) -> None:
    """Missing entry lines or lines beyond the declared size are a BundleError."""
    truncated = bundle(tmp_path / "t.bundle", make_chain(6))
    _rewrite(truncated, lambda lines: [*lines[:-3], b""])
    with pytest.raises(BundleError, match="ends after 4 entries"):
        run(BundleSource(truncated), state)
    padded = bundle(tmp_path / "p.bundle", make_chain(6))
    _rewrite(padded, lambda lines: [*lines[:-1], b"extra", b""])
    with pytest.raises(BundleError, match="more than the 6 entries"):
        run(BundleSource(padded), state)
    unterminated = bundle(tmp_path / "u.bundle", make_chain(6))
    _rewrite(unterminated, lambda lines: lines[:-1])
    with pytest.raises(SourceError, match="entry 5 does not end with a newline"):
        run(BundleSource(unterminated), state)
    assert not state.exists()
    with pytest.raises(BundleError, match="cannot read"):
        BundleSource(tmp_path / "missing.bundle")


def test_write_bundle_refuses_inconsistent_input(tmp_path: Path) -> None:
    """write_bundle refuses wrong counts, wrong roots, newlines and foreign keys, atomically."""
    entries = make_chain(4)
    note = sign(entries)
    target = tmp_path / "out.bundle"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"entries": entries[:3]}, "got 3 entries, expected 4"),
        ({"entries": [*entries, entries[0]]}, "more than 4 entries"),
        ({"size": 5}, "for size 4, not 5"),
        ({"entries": [*entries[:3], entries[3] + b" "]}, "do not hash to the checkpoint root"),
        ({"entries": [*entries[:3], b"a\nb"]}, "contains a newline"),
        ({"public_key": log_signer("other").verifier_key()}, "not signed by the log key"),
    ]
    for override, message in cases:
        arguments: dict[str, Any] = {
            "public_key": VKEY,
            "checkpoint_note": note,
            "entries": entries,
            "size": 4,
        } | override
        with pytest.raises(BundleError, match=re.escape(message)):
            write_bundle(target, **arguments)
        assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------


class LazySource:
    """A large log generated on the fly: entries are never all in memory at once."""

    def __init__(self, size: int, padding: int) -> None:
        """Compute the root in one streaming pass and sign it."""
        self.size, self.padding = size, padding
        compact = CompactRange()
        for entry in self._generate():
            compact.append(merkle.hash_leaf(entry))
        body = Checkpoint(LOG_NAME, size, compact.root()).body()
        self.note = sign_note(body, [log_signer()])

    def _generate(self) -> Iterator[bytes]:
        prev = GENESIS_PREV
        for index in range(self.size):
            entry = make_entry(index, prev, padding=self.padding)
            prev = hashlib.sha256(entry).hexdigest()
            yield entry

    def checkpoint(self) -> bytes:
        """The signed note."""
        return self.note.encode()

    def entries(self, start: int, stop: int) -> Iterator[bytes]:
        """Regenerate the entries lazily."""
        for index, entry in enumerate(self._generate()):
            if start <= index < stop:
                yield entry

    def consistency_proof(self, old: int, new: int) -> None:
        """No proofs."""


def test_audit_memory_stays_flat(state: Path) -> None:
    """Auditing ~8 MB of entries peaks far below the log's size (entries are streamed)."""
    source = LazySource(4000, padding=2000)
    tracemalloc.start()
    try:
        result = run(source, state)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.new_size == 4000
    assert peak < 1_000_000, f"peak {peak} bytes"


# --------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------


@dataclass
class FakeService:
    """What the test HTTP server serves, and how it misbehaves."""

    entries: list[bytes]
    note: str
    page: int = 7
    status: int = 200
    content_types: dict[str, str] = field(default_factory=dict)
    checkpoint_bytes: bytes | None = None
    extra_entry: bytes | None = None
    empty_entries: bool = False
    proof_document: Any = None
    proof_bytes: bytes | None = None  # served verbatim as the consistency proof's body
    problem_body: bytes | None = None  # the answer to ``problem_for`` is this problem+json
    problem_for: str = "checkpoint"


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves /checkpoint, /entries and /proof/consistency from a FakeService."""

    service: FakeService

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def _send(self, body: bytes, content_type: str, kind: str) -> None:
        service = self.server.service  # type: ignore[attr-defined]
        status = service.status
        if service.problem_body is not None:
            if kind != service.problem_for:
                status = 200
            else:
                body, content_type, kind = service.problem_body, "application/problem+json", "-"
        self.send_response(status)
        self.send_header("Content-Type", service.content_types.get(kind, content_type))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """Route one request."""
        service: FakeService = self.server.service  # type: ignore[attr-defined]
        url = urllib.parse.urlsplit(self.path)
        query = {k: int(v[0]) for k, v in urllib.parse.parse_qs(url.query).items()}
        if url.path == "/log/checkpoint":
            body = service.checkpoint_bytes or service.note.encode()
            self._send(body, "text/plain; charset=utf-8", "checkpoint")
        elif url.path == "/log/entries":
            start, stop = query["start"], min(query["stop"], query["start"] + service.page)
            lines = [] if service.empty_entries else service.entries[start:stop]
            if service.extra_entry is not None:
                lines = [*lines, service.extra_entry]
            self._send(b"".join(e + b"\n" for e in lines), "application/x-ndjson", "entries")
        elif url.path == "/log/proof/consistency":
            old, new = query["old"], query["new"]
            hashes = [merkle.hash_leaf(e) for e in service.entries[:new]]
            document = service.proof_document or {
                "old": old,
                "new": new,
                "proof": [
                    base64.b64encode(h).decode() for h in merkle.consistency_proof(old, hashes)
                ],
            }
            body = service.proof_bytes or json.dumps(document).encode()
            self._send(body, "application/json", "proof")
        else:
            self._send(b"not found", "text/plain", "none")


@pytest.fixture
def http_log() -> Iterator[tuple[str, FakeService]]:
    """A local HTTP server for a FakeService; yields its base URL."""
    service = FakeService(make_chain(20), sign(make_chain(20)))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.service = service  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/log/", service
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_source_audits_page_by_page(http_log: tuple[str, FakeService], state: Path) -> None:
    """HttpSource follows short pages, verifies the server's proof and audits the log."""
    url, service = http_log
    assert run(HttpSource(url), state).new_size == 20
    service.entries = make_chain(45, start=service.entries)
    service.note = sign(service.entries)
    result = run(HttpSource(url, timeout=5), state)
    assert (result.old_size, result.new_size, result.proof_checked) == (20, 45, True)


@pytest.mark.parametrize(
    ("misbehave", "message"),
    [
        ({"status": 500}, "HTTP 500"),
        ({"content_types": {"checkpoint": "text/html"}}, "content type is text/html"),
        ({"content_types": {"entries": "application/json"}}, "expected application/x-ndjson"),
        ({"checkpoint_bytes": b"\xff\xfe note"}, "not valid UTF-8"),
        ({"extra_entry": b"{}", "page": 1000}, "more than the 20 entries asked for"),
        ({"empty_entries": True}, "no entries"),
    ],
)
def test_http_source_reports_server_errors(
    http_log: tuple[str, FakeService], state: Path, misbehave: dict[str, Any], message: str
) -> None:
    """HTTP errors, wrong content types, non-UTF-8 and wrong counts are SourceErrors."""
    url, service = http_log
    for key, value in misbehave.items():
        setattr(service, key, value)
    with pytest.raises(SourceError, match=re.escape(message)):
        run(HttpSource(url), state)
    assert not state.exists()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("nonsense", "expected a JSON object"),
        ({"old": 20, "new": 44, "proof": []}, "'new' is 44"),
        ({"old": 20, "new": 45, "proof": "x"}, "must be a list"),
        ({"old": 20, "new": 45, "proof": ["AAAA"]}, "proof element 0"),
    ],
)
def test_http_source_rejects_malformed_proofs(
    http_log: tuple[str, FakeService], state: Path, document: Any, message: str
) -> None:
    """A consistency-proof response that is not the documented JSON is a SourceError."""
    url, service = http_log
    run(HttpSource(url), state)
    before = state.read_bytes()
    service.entries = make_chain(45, start=service.entries)
    service.note = sign(service.entries)
    service.proof_document = document
    with pytest.raises(SourceError, match=re.escape(message)):
        run(HttpSource(url), state)
    assert state.read_bytes() == before


def test_http_source_refuses_bad_urls_and_unreachable_servers() -> None:
    """Only http(s) URLs are accepted; a refused connection is a SourceError."""
    with pytest.raises(SourceError, match="http:// or https://"):
        HttpSource("file:///etc/passwd")
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    server.server_close()
    with pytest.raises(SourceError, match=f"127.0.0.1:{port}/checkpoint"):
        HttpSource(f"http://127.0.0.1:{port}", timeout=2).checkpoint()


# --------------------------------------------------------------------------------------
# Hostile answers: nested or oversized JSON is a clear audit error, never an internal one
# --------------------------------------------------------------------------------------

_UNITS = {b"[": b"]", b'{"a":': b"}", b'[{"b":': b"}]"}


@st.composite
def nested_json(draw: st.DrawFn, max_depth: int = 100_000) -> bytes:
    """Arrays and objects nested deeper than MAX_JSON_DEPTH, closed or not."""
    unit = draw(st.sampled_from(sorted(_UNITS)))
    depth = draw(st.integers(MAX_JSON_DEPTH + 1, max_depth))
    repeats = -(-depth // (unit.count(b"[") + unit.count(b"{")))
    opened = unit * repeats
    if draw(st.booleans()):
        return opened + b"1" + _UNITS[unit] * repeats
    return opened


def _limits(message: str) -> bool:
    """Whether ``message`` names the depth or size limit that was broken."""
    return bool(re.search(rf"nested deeper than {MAX_JSON_DEPTH} levels|over \d+ bytes", message))


HOSTILE = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@HOSTILE
@given(nested=nested_json())
def test_a_nested_consistency_proof_is_a_source_error(
    http_log: tuple[str, FakeService], tmp_path: Path, nested: bytes
) -> None:
    """A proof answer nested (up to 100,000 deep) is a SourceError naming the URL and the
    limit; the state stays as it was."""
    url, service = http_log
    state = tmp_path / "proof.state"
    if not state.exists():
        run(HttpSource(url), state)
        service.entries = make_chain(45, start=service.entries)
        service.note = sign(service.entries)
    before = state.read_bytes()
    service.proof_bytes = b'{"old":20,"new":45,"proof":[' + nested + b"]}"
    with pytest.raises(SourceError) as caught:
        run(HttpSource(url), state)
    assert f"GET {url.rstrip('/')}/proof/consistency?old=20&new=45: " in str(caught.value)
    assert _limits(str(caught.value)), caught.value
    assert state.read_bytes() == before


@HOSTILE
@given(nested=nested_json())
def test_a_nested_problem_body_is_named_not_parsed(
    http_log: tuple[str, FakeService], tmp_path: Path, nested: bytes
) -> None:
    """An error answer whose problem+json body is nested or oversized still fails the audit
    as the HTTP error it is, saying why its detail is not shown."""
    url, service = http_log
    service.status, service.problem_body = 500, nested
    state = tmp_path / "problem.state"
    with pytest.raises(SourceError, match=r"HTTP 500 .*\(problem body not read: ") as caught:
        run(HttpSource(url), state)
    assert _limits(str(caught.value)), caught.value
    assert not state.exists()


@st.composite
def hostile_headers(draw: st.DrawFn) -> bytes:
    """A bundle header line with nested JSON at the top or inside a key."""
    nested = draw(nested_json())
    if draw(st.booleans()):
        return nested + b"\n"
    key = draw(st.sampled_from(["sealed", "checkpoint", "format", "extra"]))
    return b'{"format":"' + BUNDLE_FORMAT.encode() + b'","' + key.encode() + b'":' + nested + b"}\n"


@HOSTILE
@given(header=hostile_headers())
def test_a_nested_bundle_header_is_a_bundle_error(tmp_path: Path, header: bytes) -> None:
    """A bundle whose header nests too deep is a BundleError naming the file and the limit."""
    bundle = tmp_path / "nested.bundle"
    bundle.write_bytes(header + make_chain(1)[0] + b"\n")
    with pytest.raises(BundleError) as caught:
        BundleSource(bundle)
    assert str(caught.value).startswith(f"bundle {bundle}: ")
    assert _limits(str(caught.value)), caught.value


def test_an_oversized_bundle_header_is_named(tmp_path: Path) -> None:
    """A header line over 4 MiB is refused as such (it was 'the header is missing')."""
    bundle = tmp_path / "huge.bundle"
    bundle.write_bytes(b'{"format":"' + b"x" * (1 << 22) + b'"}\n')
    with pytest.raises(BundleError, match=r"the header line is over 4194304 bytes"):
        BundleSource(bundle)


def test_a_nested_state_file_is_a_state_error(state: Path) -> None:
    """The state file is parsed under the same limits."""
    state.write_bytes(b'{"format":' + b"[" * 100_000 + b"}")
    with pytest.raises(StateError, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        AuditState.load(state)
    state.write_bytes(b" " * (MAX_STATE_BYTES + 1))
    with pytest.raises(StateError, match=f"over {MAX_STATE_BYTES} bytes"):
        AuditState.load(state)


def test_json_depth_is_measured_outside_strings() -> None:
    """Brackets inside strings (escaped quotes too) do not count; a document at the limit
    passes and one level more does not."""
    at_limit = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert not json_too_deep(at_limit)
    assert json_too_deep(b"[" + at_limit + b"]")
    assert not json_too_deep(json.dumps({"a": ["[" * 500, '\\"' + "{" * 500]}).encode())
    assert json_too_deep(b'["\\\\",' + b"[" * 100 + b"]")  # the string ends at the 2nd quote


@pytest.mark.parametrize("where", ["proof answer", "error body", "bundle header"])
def test_ledger_audit_exits_1_not_70_on_100000_deep_json(
    http_log: tuple[str, FakeService],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    """``ledger audit`` prints one FAILED line and exits 1 ('the audit failed or could not
    be done'), never 70 (internal error), whichever answer is 100,000 levels deep."""
    url, service = http_log
    state = tmp_path / "cli.state"
    nested = b"[" * 100_000
    target = url
    if where == "proof answer":
        assert ledger_cli(["audit", url, "--key", VKEY, "--state", str(state)]) == 0
        service.entries = make_chain(45, start=service.entries)
        service.note = sign(service.entries)
        service.proof_bytes = b'{"old":20,"new":45,"proof":[' + b"[" * 60_000 + b"]}"
    elif where == "error body":
        service.status, service.problem_body = 500, nested
    else:
        target = str(tmp_path / "nested.bundle")
        Path(target).write_bytes(nested + b"\n")
    capsys.readouterr()
    before = state.read_bytes() if state.exists() else None
    status = ledger_cli(["audit", target, "--key", VKEY, "--state", str(state)])
    err = capsys.readouterr().err
    assert status == 1, err
    assert err.startswith("ledger audit: FAILED: "), err
    assert err.count("\n") == 1, err
    assert "internal error" not in err
    assert "RecursionError" not in err
    assert err.rstrip().endswith("(state left unchanged)")
    assert _limits(err), err
    assert (state.read_bytes() if state.exists() else None) == before


def test_a_hostile_problem_detail_cannot_forge_output_lines(
    http_log: tuple[str, FakeService], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CR, LF and ESC in a server's problem detail are escaped: the SourceError and the
    FAILED line stay one line and carry no terminal control."""
    url, service = http_log
    detail = "damaged\r\nledger audit: OK, nothing to see\x1b[2J\x9b"
    service.status = 500
    service.problem_body = json.dumps({"detail": detail}).encode()
    with pytest.raises(SourceError) as caught:
        run(HttpSource(url), tmp_path / "a.state")
    assert "damaged\\x0d\\x0aledger audit: OK, nothing to see\\x1b[2J\\x9b" in str(caught.value)
    capsys.readouterr()
    status = ledger_cli(["audit", url, "--key", VKEY, "--state", str(tmp_path / "b.state")])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1, err
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", err), err


# --------------------------------------------------------------------------------------
# docs/VERIFYING.md
# --------------------------------------------------------------------------------------


def _doc_block(name: str) -> str:
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(rf"<!-- example:{name} -->\s*```[a-z]*\n(.*?)```", text, re.S)
    assert match, f"docs/VERIFYING.md has no example:{name} block"
    return match.group(1)


def test_worked_example_in_verifying_md_verifies(tmp_path: Path) -> None:
    """The entries, keys and signed note printed in docs/VERIFYING.md check out."""
    entries = [line.encode() for line in _doc_block("entries").splitlines()]
    note = _doc_block("note")
    log_vkey = _doc_block("vkey").strip()
    witness_vkey = _doc_block("witness-vkey").strip()
    source = MemorySource(entries, note, proofs=False)
    result = audit(
        source,
        vkey=log_vkey,
        state_path=tmp_path / "state.json",
        witnesses=[witness_vkey],
        quorum=1,
    )
    assert result.new_size == len(entries) == 3
    assert result.root.hex() in DOCS.read_text(encoding="utf-8")
    for entry in entries:
        assert hashlib.sha256(entry).hexdigest() in DOCS.read_text(encoding="utf-8")
