"""The C2SP tlog-witness over a real uvicorn server: cosign extensions, refuse the rest.

The log is simulated here with ``ledger.merkle`` and ``ledger.checkpoint``: entries are
arbitrary bytes, roots and consistency proofs come from the leaf hashes, checkpoints are
signed with an Ed25519Signer.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from ledger.checkpoint import (
    Checkpoint,
    CosignatureSigner,
    CosignatureVerifier,
    Ed25519Signer,
    add_signatures,
    parse_note,
    sign_note,
    verify_cosignatures,
)
from ledger.merkle import consistency_proof, hash_leaf, root_from_leaf_hashes
from ledger.witness import (
    SIZE_CONTENT_TYPE,
    StateConflictError,
    WitnessError,
    WitnessRecord,
    WitnessState,
    WitnessStateError,
    create_witness_app,
    submit_checkpoint,
)

ORIGIN = "ledger.test/open-policy"
WITNESS_NAME = "witness.test/w1"
TIMEOUT = 5.0


# --------------------------------------------------------------------------------------
# A simulated log and a real server
# --------------------------------------------------------------------------------------


class SimLog:
    """A log kept in memory: leaf hashes of arbitrary entries, signed checkpoints."""

    def __init__(self, signer: Ed25519Signer, origin: str = ORIGIN, flavour: str = "honest"):
        self.signer = signer
        self.origin = origin
        self.flavour = flavour
        self.leaf_hashes: list[bytes] = []

    def grow(self, count: int) -> SimLog:
        """Append ``count`` entries."""
        for _ in range(count):
            entry = f"entry {len(self.leaf_hashes)} of the {self.flavour} log".encode()
            self.leaf_hashes.append(hash_leaf(entry))
        return self

    def fork(self, keep: int, flavour: str = "forked") -> SimLog:
        """A log sharing the first ``keep`` entries, signed by the same key."""
        other = SimLog(self.signer, self.origin, flavour)
        other.leaf_hashes = self.leaf_hashes[:keep]
        return other

    @property
    def size(self) -> int:
        """Number of entries."""
        return len(self.leaf_hashes)

    def root(self, size: int | None = None) -> bytes:
        """Merkle root of the first ``size`` entries (all by default)."""
        return root_from_leaf_hashes(self.leaf_hashes[: self.size if size is None else size])

    def note(self, size: int | None = None) -> str:
        """The signed checkpoint note for the first ``size`` entries."""
        size = self.size if size is None else size
        body = Checkpoint(self.origin, size, self.root(size)).body()
        return sign_note(body, [self.signer])

    def proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        """Consistency proof from ``old_size`` to ``size`` entries."""
        return consistency_proof(old_size, self.leaf_hashes[: self.size if size is None else size])


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` in a real uvicorn server on a loopback port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while not server.started:
            assert thread.is_alive(), "the witness server died while starting"
            assert time.monotonic() < deadline, "the witness server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        sock.close()
        assert not thread.is_alive(), "the witness server did not stop"


@dataclass
class Witness:
    """A running witness, its key, its state directory and the log it follows."""

    url: str
    signer: CosignatureSigner
    state_dir: Path
    log: SimLog

    @property
    def verifier(self) -> CosignatureVerifier:
        """The verifier of the witness's cosignatures, from its published vkey."""
        return CosignatureVerifier.from_vkey(self.signer.verifier_key())

    def state_file(self) -> Path:
        """The state file of the log's origin."""
        return WitnessState(self.state_dir).path(self.log.origin)


def make_app(signer: CosignatureSigner, log: SimLog, state_dir: Path) -> FastAPI:
    """A witness app following ``log``."""
    return create_witness_app(
        signer=signer, logs={log.origin: log.signer.verifier().verifier_key()}, state_dir=state_dir
    )


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[Witness]:
    """A fresh witness on a loopback port following one fresh simulated log."""
    signer = CosignatureSigner.generate(WITNESS_NAME)
    log = SimLog(Ed25519Signer.generate(ORIGIN))
    state_dir = tmp_path / "witness-state"
    with serve(make_app(signer, log, state_dir)) as url:
        yield Witness(url, signer, state_dir, log)


def post(url: str, body: bytes) -> tuple[int, str, bytes]:
    """POST raw bytes to ``{url}/add-checkpoint``; return status, content type and body."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    try:
        connection.request("POST", "/add-checkpoint", body=body)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def request_body(old_size: int, proof: list[bytes], note: str) -> bytes:
    """An add-checkpoint body built by hand (so tests can also break it)."""
    lines = [f"old {old_size}", *(base64.b64encode(p).decode() for p in proof), ""]
    return ("".join(line + "\n" for line in lines) + note).encode()


def cosign(witness: Witness, old_size: int, size: int | None = None) -> list[str]:
    """Submit the witness's log at ``size`` from ``old_size``; expect cosignature lines."""
    log = witness.log
    result = submit_checkpoint(
        witness.url, log.note(size), old_size, log.proof(old_size, size), timeout=TIMEOUT
    )
    assert isinstance(result, list), f"expected cosignatures, got size {result}"
    return result


# --------------------------------------------------------------------------------------
# Cosigning
# --------------------------------------------------------------------------------------


def test_first_checkpoint_is_cosigned_and_verifies(witness: Witness) -> None:
    """A first checkpoint sent with old 0 is cosigned, and the cosignature verifies."""
    witness.log.grow(5)
    note = witness.log.note()
    before = int(time.time())
    lines = submit_checkpoint(witness.url, note, 0, [], timeout=TIMEOUT)
    assert isinstance(lines, list)
    assert len(lines) == 1
    assert lines[0].startswith(f"\u2014 {WITNESS_NAME} ")
    raw = base64.b64decode(lines[0].split(" ")[2])
    assert raw[:4] == witness.signer.key_id
    assert len(raw) == 4 + 8 + 64
    cosigned = add_signatures(note, lines)
    timestamps = verify_cosignatures(cosigned, [witness.verifier], 1)
    assert before <= timestamps[WITNESS_NAME] <= int(time.time())
    body, _ = parse_note(note)
    assert witness.verifier.verify_cosignature(body, raw[4:]) == timestamps[WITNESS_NAME]


def test_state_file_format(witness: Witness) -> None:
    """The stored state is one JSON file per origin holding size, root and the note."""
    witness.log.grow(3)
    cosign(witness, 0)
    path = witness.state_file()
    assert path.name.endswith(".json")
    document = json.loads(path.read_text("utf-8"))
    assert document == {
        "checkpoint": witness.log.note(),
        "format": "opl-witness-state/v1",
        "origin": ORIGIN,
        "root": base64.b64encode(witness.log.root()).decode(),
        "size": 3,
    }
    assert not [p for p in witness.state_dir.iterdir() if p.suffix == ".tmp"]


def test_extensions_with_valid_proofs_are_cosigned(witness: Witness) -> None:
    """Each extension with a valid consistency proof from the stored size is cosigned."""
    log = witness.log.grow(5)
    cosign(witness, 0)
    for old_size, grow in [(5, 3), (8, 5), (13, 1), (14, 50)]:
        log.grow(grow)
        lines = cosign(witness, old_size)
        verify_cosignatures(add_signatures(log.note(), lines), [witness.verifier], 1)
        assert WitnessState(witness.state_dir).size(ORIGIN) == log.size
    # Resubmitting the stored checkpoint (old == size, same root) is cosigned again.
    assert cosign(witness, log.size)


# --------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------


def test_fork_with_a_larger_size_is_422_and_state_unchanged(witness: Witness) -> None:
    """A larger checkpoint that does not extend the stored one gets 422; nothing changes."""
    log = witness.log.grow(5)
    # From the empty tree the proof must be empty: a non-empty one does not verify.
    status, _, _ = post(witness.url, request_body(0, log.proof(3), log.note()))
    assert status == 422
    assert not witness.state_file().exists()
    cosign(witness, 0)
    before = witness.state_file().read_bytes()
    forked = log.fork(keep=3).grow(6)  # size 9, entries 3 and 4 rewritten
    status, content_type, body = post(witness.url, request_body(5, forked.proof(5), forked.note()))
    assert status == 422
    assert content_type.startswith("text/plain")
    assert b"consistency proof" in body
    with pytest.raises(WitnessError) as caught:
        submit_checkpoint(witness.url, forked.note(), 5, forked.proof(5), timeout=TIMEOUT)
    assert caught.value.status == 422
    assert witness.state_file().read_bytes() == before
    log.grow(2)
    assert cosign(witness, 5)


def test_same_size_with_another_root_is_a_409_fork(witness: Witness) -> None:
    """A second root for the stored size is refused with a plain 409, not a size answer."""
    log = witness.log.grow(6)
    cosign(witness, 0)
    forked = log.fork(keep=4).grow(2)
    status, content_type, body = post(witness.url, request_body(6, [], forked.note()))
    assert status == 409
    assert content_type != SIZE_CONTENT_TYPE
    assert b"fork" in body
    with pytest.raises(WitnessError, match="fork") as caught:
        submit_checkpoint(witness.url, forked.note(), 6, [], timeout=TIMEOUT)
    assert caught.value.status == 409
    assert WitnessState(witness.state_dir).get(ORIGIN) == WitnessRecord(
        ORIGIN, 6, log.root(), log.note()
    )


def test_wrong_old_size_is_409_with_the_stored_size(witness: Witness) -> None:
    """A stale or invented old size gets 409, text/x.tlog.size and the stored size."""
    log = witness.log.grow(5)
    cosign(witness, 0)
    log.grow(4)
    for old_size in (0, 3, 7):
        status, content_type, body = post(
            witness.url, request_body(old_size, log.proof(old_size), log.note())
        )
        assert (status, content_type, body) == (409, SIZE_CONTENT_TYPE, b"5\n")
    # The log's reaction: learn the size, prove consistency from it, submit again.
    learned = submit_checkpoint(witness.url, log.note(), 0, [], timeout=TIMEOUT)
    assert learned == 5
    assert cosign(witness, learned)
    assert WitnessState(witness.state_dir).size(ORIGIN) == 9


def test_bad_signature_or_unknown_key_is_403(witness: Witness) -> None:
    """A note not signed by the configured log key, or with a broken signature, gets 403."""
    log = witness.log.grow(4)
    body = Checkpoint(ORIGIN, 4, log.root()).body()
    impostor_same_name = sign_note(body, [Ed25519Signer.generate(ORIGIN)])
    impostor_other_name = sign_note(body, [Ed25519Signer.generate("someone.else/log")])
    genuine = log.note()
    text, signatures = parse_note(genuine)
    flipped = bytes([signatures[0].signature[0] ^ 1]) + signatures[0].signature[1:]
    raw = base64.b64encode(signatures[0].key_id + flipped).decode()
    tampered = text.decode() + f"\n\u2014 {ORIGIN} {raw}\n"
    # A valid signature next to a failing one by the same key still rejects the note.
    mixed = genuine + f"\u2014 {ORIGIN} {raw}\n"
    for note in (impostor_same_name, impostor_other_name, tampered, mixed):
        status, _, response = post(witness.url, request_body(0, [], note))
        assert status == 403, response
    with pytest.raises(WitnessError) as caught:
        submit_checkpoint(witness.url, tampered, 0, [], timeout=TIMEOUT)
    assert caught.value.status == 403
    assert not witness.state_file().exists()


def test_unknown_origin_is_404(witness: Witness) -> None:
    """A checkpoint for an origin the witness does not follow gets 404."""
    other = SimLog(Ed25519Signer.generate("other.test/log"), origin="other.test/log").grow(2)
    status, _, body = post(witness.url, request_body(0, [], other.note()))
    assert status == 404
    assert b"other.test/log" in body
    with pytest.raises(WitnessError) as caught:
        submit_checkpoint(witness.url, other.note(), 0, [], timeout=TIMEOUT)
    assert caught.value.status == 404


def test_malformed_bodies_are_400(witness: Witness) -> None:
    """Bodies that break the add-checkpoint syntax, or an old size above the size, get 400."""
    log = witness.log.grow(6)
    note = log.note()
    proof_line = base64.b64encode(log.proof(4)[0]).decode()
    cases = {
        "empty": b"",
        "no old line": note.encode(),
        "leading zero": f"old 00\n\n{note}".encode(),
        "negative": f"old -1\n\n{note}".encode(),
        "two spaces": f"old  0\n\n{note}".encode(),
        "CRLF": f"old 0\r\n\r\n{note}".encode(),
        "no empty line": f"old 4\n{proof_line}\n".encode(),
        "no checkpoint": b"old 0\n\n",
        "bad base64": f"old 4\n{proof_line[:-2]}!=\n\n{note}".encode(),
        "short hash": f"old 4\n{base64.b64encode(bytes(31)).decode()}\n\n{note}".encode(),
        "64 proof lines": ("old 4\n" + f"{proof_line}\n" * 64 + "\n" + note).encode(),
        "not UTF-8": b"old 0\n\n\xff\xfe",
        "unsigned note": f"old 0\n\n{Checkpoint(ORIGIN, 6, log.root()).body().decode()}".encode(),
        "bad checkpoint": f"old 0\n\n{ORIGIN}\nsix\nroot\n\n{note.split(chr(10))[-2]}\n".encode(),
        "old above size": request_body(7, [], note),
    }
    for name, body in cases.items():
        status, content_type, response = post(witness.url, body)
        assert status == 400, (name, status, response)
        assert content_type.startswith("text/plain"), name
    assert not witness.state_file().exists()


def test_oversized_body_is_refused(witness: Witness) -> None:
    """A body over the size limit is refused without being read in full."""
    status, _, _ = post(witness.url, b"old 0\n" + b"A" * 70_000)
    assert status == 413


# --------------------------------------------------------------------------------------
# Durability and concurrency
# --------------------------------------------------------------------------------------


def test_state_survives_a_restart(tmp_path: Path) -> None:
    """A new witness app over the same state directory remembers the cosigned size."""
    signer = CosignatureSigner.generate(WITNESS_NAME)
    log = SimLog(Ed25519Signer.generate(ORIGIN)).grow(7)
    state_dir = tmp_path / "state"
    with serve(make_app(signer, log, state_dir)) as url:
        assert submit_checkpoint(url, log.note(), 0, [], timeout=TIMEOUT)
    log.grow(3)
    with serve(make_app(signer, log, state_dir)) as url:
        assert submit_checkpoint(url, log.note(), 0, [], timeout=TIMEOUT) == 7
        forked = log.fork(keep=6).grow(4)
        with pytest.raises(WitnessError) as caught:
            submit_checkpoint(url, forked.note(), 7, forked.proof(7), timeout=TIMEOUT)
        assert caught.value.status == 422
        lines = submit_checkpoint(url, log.note(), 7, log.proof(7), timeout=TIMEOUT)
        assert isinstance(lines, list)
    assert WitnessState(state_dir).size(ORIGIN) == 10


def race(witness: Witness, old_size: int, sizes: list[int]) -> dict[int, object]:
    """Submit the log at each of ``sizes`` from ``old_size`` at once; map size → outcome."""
    log = witness.log
    barrier = threading.Barrier(len(sizes))
    results: dict[int, object] = {}

    def submit(size: int) -> None:
        note, proof = log.note(size), log.proof(old_size, size)
        barrier.wait(TIMEOUT)
        try:
            results[size] = submit_checkpoint(witness.url, note, old_size, proof, timeout=TIMEOUT)
        except Exception as exc:
            results[size] = exc

    threads = [threading.Thread(target=submit, args=(size,)) for size in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_concurrent_submissions_from_one_old_size_exactly_one_wins(witness: Witness) -> None:
    """Submissions racing from the same old size: one is cosigned, the others get 409."""
    log = witness.log.grow(4)
    cosign(witness, 0)
    log.grow(40)
    old_size = 4
    for _ in range(3):
        sizes = [old_size + step for step in range(1, 9)]
        results = race(witness, old_size, sizes)
        winners = [size for size, result in results.items() if isinstance(result, list)]
        assert len(winners) == 1, results
        (winner,) = winners
        losers = {size: result for size, result in results.items() if size != winner}
        # Each loser learns the winner's size from the 409 (text/x.tlog.size) answer.
        assert losers == dict.fromkeys([s for s in sizes if s != winner], winner)
        assert WitnessState(witness.state_dir).size(ORIGIN) == winner
        old_size = winner


def test_compare_and_swap_lets_one_writer_advance(tmp_path: Path) -> None:
    """WitnessState's compare-and-swap lets exactly one of many racing threads advance."""
    log = SimLog(Ed25519Signer.generate(ORIGIN)).grow(20)
    state = WitnessState(tmp_path)
    barrier = threading.Barrier(16)
    outcomes: list[int | str] = []

    def advance(size: int) -> None:
        record = WitnessRecord(ORIGIN, size, log.root(size), log.note(size))
        barrier.wait(60)  # generous: a loaded machine may start 16 threads slowly
        try:
            WitnessState(tmp_path).compare_and_swap(ORIGIN, 0, record)
            outcomes.append("won")
        except StateConflictError as exc:
            outcomes.append(exc.current_size)

    threads = [threading.Thread(target=advance, args=(size,)) for size in range(1, 17)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stored = state.size(ORIGIN)
    assert sorted(outcomes, key=str) == sorted(["won", *[stored] * 15], key=str)
    # Another root at the stored size (a fork sharing no entry, so whichever size won —
    # even 1 — its root differs) is refused.
    with pytest.raises(StateConflictError):
        state.compare_and_swap(
            ORIGIN, stored, WitnessRecord(ORIGIN, stored, log.fork(0).grow(30).root(stored), "x")
        )


def test_corrupt_state_is_a_clear_error_and_nothing_is_cosigned(witness: Witness) -> None:
    """A corrupt state file raises WitnessStateError and the witness answers 500."""
    log = witness.log.grow(3)
    cosign(witness, 0)
    path = witness.state_file()
    document = json.loads(path.read_text("utf-8"))
    document["size"] = 2  # disagrees with the stored note
    path.write_text(json.dumps(document), "utf-8")
    with pytest.raises(WitnessStateError, match=r"corrupt.*disagrees"):
        WitnessState(witness.state_dir).get(ORIGIN)
    path.write_text("{not json", "utf-8")
    with pytest.raises(WitnessStateError, match=re.escape(path.name)):
        WitnessState(witness.state_dir).get(ORIGIN)
    log.grow(2)
    status, _, body = post(witness.url, request_body(3, log.proof(3), log.note()))
    assert status == 500
    assert b"state" in body


# --------------------------------------------------------------------------------------
# Description and client failures
# --------------------------------------------------------------------------------------


def test_root_page_names_the_witness_key(witness: Witness) -> None:
    """GET / describes the witness and publishes its cosignature verifier key."""
    host, port = witness.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    assert response.status == 200
    assert witness.signer.verifier_key() in text
    assert ORIGIN in text


def test_client_reports_network_failures(witness: Witness) -> None:
    """submit_checkpoint raises WitnessError, without a status, when nothing answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    witness.log.grow(1)
    with pytest.raises(WitnessError, match="cannot reach") as caught:
        submit_checkpoint(f"http://127.0.0.1:{port}", witness.log.note(), 0, [], timeout=1)
    assert caught.value.status is None
    with pytest.raises(WitnessError):
        submit_checkpoint("ftp://127.0.0.1", witness.log.note(), 0, [])
