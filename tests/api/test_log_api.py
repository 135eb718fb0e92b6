"""The log endpoints, served by a real `ledger serve` on loopback, checked as an auditor would."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger import merkle
from ledger.application import LedgerApplication, Receipt
from ledger.checkpoint import Ed25519Verifier, verify_note
from ledger.proofs import TILE_WIDTH
from tests.conftest import BACKENDS, Store, make_store
from tests.helpers import OFFICIAL, record_sample

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A `ledger serve` process and a tiny HTTP client for it."""

    def __init__(self, store: Store) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ledger.cli",
                "serve",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=store.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.get("/public-key")
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start")

    def get(self, path: str) -> tuple[int, str, bytes]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as response:
                return response.status, response.headers["Content-Type"], response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers["Content-Type"], error.read()

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, body
        return json.loads(body)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Store, list[Receipt], Server]]:
    """A store with a recorded sample and a server over it."""
    for store in make_store(request.param, tmp_path):
        app = LedgerApplication(store.settings)
        sample = record_sample(app, amendments=4)
        receipts = sample.receipts
        app.close()
        server = Server(store)
        try:
            yield store, receipts, server
        finally:
            server.stop()


def b64(items: list[str]) -> list[bytes]:
    return [base64.b64decode(i) for i in items]


def test_checkpoint_is_signed_by_the_published_key(
    served: tuple[Store, list[Receipt], Server],
) -> None:
    """The latest checkpoint verifies with /public-key and covers every entry."""
    _, receipts, server = served
    _, _, vkey = server.get("/public-key")
    status, content_type, note = server.get("/checkpoint")
    assert status == 200
    assert content_type.startswith("text/plain")
    checkpoint = verify_note(note.decode(), Ed25519Verifier.from_vkey(vkey.decode().strip()))
    assert checkpoint.size == len(receipts)
    leaves = [merkle.hash_leaf(r.entry) for r in receipts]
    assert checkpoint.root == merkle.root_from_leaf_hashes(leaves)
    status, _, past = server.get("/checkpoint/3")
    assert status == 200
    assert verify_note(past.decode(), Ed25519Verifier.from_vkey(vkey.decode().strip())).size == 3


def test_receipts_prove_inclusion_in_their_checkpoint(
    served: tuple[Store, list[Receipt], Server],
) -> None:
    """Each receipt's proof reaches its checkpoint, which is consistent with the latest."""
    _, receipts, server = served
    latest = server.json(f"/proof/consistency?old=1&new={len(receipts)}")
    assert latest["new"] == len(receipts)
    vkey = Ed25519Verifier.from_vkey(server.get("/public-key")[2].decode().strip())
    final = verify_note(server.get("/checkpoint")[2].decode(), vkey)
    for receipt in receipts:
        checkpoint = verify_note(receipt.checkpoint, vkey)
        assert checkpoint.size == receipt.tree_size == receipt.index + 1
        merkle.verify_inclusion(
            merkle.hash_leaf(receipt.entry),
            receipt.index,
            checkpoint.size,
            list(receipt.inclusion),
            checkpoint.root,
        )
        proof = server.json(f"/proof/consistency?old={checkpoint.size}&new={final.size}")
        merkle.verify_consistency(
            checkpoint.size, final.size, checkpoint.root, final.root, b64(proof["proof"])
        )


def test_entries_and_proofs_endpoints(served: tuple[Store, list[Receipt], Server]) -> None:
    """Entries are served verbatim; one entry comes with a proof that verifies."""
    _, receipts, server = served
    status, content_type, body = server.get("/entries?start=2&stop=6")
    assert status == 200
    assert content_type == "application/x-ndjson"
    assert body.split(b"\n")[:-1] == [r.entry for r in receipts[2:6]]
    one = server.json("/entries/4")
    assert one["entry"].encode() == receipts[4].entry
    root = merkle.root_from_leaf_hashes([merkle.hash_leaf(r.entry) for r in receipts])
    merkle.verify_inclusion(
        merkle.hash_leaf(receipts[4].entry), 4, len(receipts), b64(one["inclusion_proof"]), root
    )
    proof = server.json(f"/proof/inclusion?index=7&size={len(receipts)}")
    merkle.verify_inclusion(
        merkle.hash_leaf(receipts[7].entry), 7, len(receipts), b64(proof["proof"]), root
    )


@pytest.mark.parametrize(
    "path",
    [
        "/proof/inclusion?index=0&size=999",
        "/proof/inclusion?index=5&size=5",
        "/proof/consistency?old=5&new=999",
        "/proof/consistency?old=9&new=5",
        "/proof/inclusion?index=-1&size=5",
        "/entries?start=0&stop=999",
        "/proof/inclusion?index=x&size=5",
    ],
)
def test_out_of_range_is_400_problem_json(
    served: tuple[Store, list[Receipt], Server], path: str
) -> None:
    """Sizes and indexes outside the published tree are RFC 9457 problems with status 400."""
    _, _, server = served
    status, content_type, body = server.get(path)
    assert status == 400
    assert content_type == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == 400
    assert problem["title"]
    assert problem["detail"]


def test_tiles_serve_the_stored_tree(served: tuple[Store, list[Receipt], Server]) -> None:
    """Partial tiles hold the leaf hashes and entry bundles the entries; unreached tiles 404."""
    _, receipts, server = served
    n = len(receipts)
    status, content_type, tile = server.get(f"/tile/0/000.p/{n}")
    assert status == 200
    assert content_type == "application/octet-stream"
    assert tile == b"".join(merkle.hash_leaf(r.entry) for r in receipts)
    status, _, bundle = server.get(f"/tile/entries/000.p/{n}")
    assert status == 200
    unpacked, pos = [], 0
    while pos < len(bundle):
        length = int.from_bytes(bundle[pos : pos + 2], "big")
        unpacked.append(bundle[pos + 2 : pos + 2 + length])
        pos += 2 + length
    assert unpacked == [r.entry for r in receipts]
    assert server.get("/tile/0/000")[0] == 404  # full tile not reached yet
    assert server.get(f"/tile/0/000.p/{n + 1}")[0] == 404
    assert server.get("/tile/0/abc")[0] == 404
    assert n < TILE_WIDTH


def test_full_tiles_after_256_entries(served: tuple[Store, list[Receipt], Server]) -> None:
    """Once 256 entries exist the full level-0 tile is served, immutable, and hashes to node 1/0."""
    store, receipts, server = served
    app = LedgerApplication(store.settings)
    process_id = receipts[0].subject_id
    extra = [
        app.add_strand(process_id, strand_id=f"s{k}", title=f"S{k}", actor=OFFICIAL)
        for k in range(257 - len(receipts))
    ]
    app.close()
    entries = [r.entry for r in receipts + extra]
    status, _, tile = server.get("/tile/0/000")
    assert status == 200
    assert tile == b"".join(merkle.hash_leaf(e) for e in entries[:256])
    with urllib.request.urlopen(server.base + "/tile/1/000.p/1", timeout=10) as response:
        node = response.read()
    assert node == merkle.root_from_leaf_hashes([merkle.hash_leaf(e) for e in entries[:256]])
