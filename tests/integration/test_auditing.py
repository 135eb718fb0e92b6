"""An auditor and a witness who trust nothing we run: the whole verifiable-log loop, live."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    CosignatureVerifier,
    Ed25519Signer,
    sign_note,
    verify_cosignatures,
)
from ledger.keys import create_key_file
from ledger.settings import WitnessConfig
from tests.api.test_log_api import Server, free_port
from tests.conftest import BACKENDS, LOG_NAME, Store, make_store
from tests.helpers import OFFICIAL, record_sample

ROOT = Path(__file__).resolve().parents[2]


def ledger(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Witness:
    """A `ledger witness` process on loopback."""

    def __init__(self, tmp: Path, log_vkey: str) -> None:
        key = tmp / "witness.key"
        made = ledger("witness", "--key", str(key), "--init", "--name", "witness.test")
        assert made.returncode == 0, made.stderr
        self.vkey = made.stdout.strip()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ledger.cli",
                "witness",
                "--key",
                str(key),
                "--log",
                log_vkey,
                "--state",
                str(tmp / "witness-state"),
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("witness did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(params=BACKENDS)
def witnessed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Witness]]:
    """A store whose log submits every checkpoint to a live witness."""
    for store in make_store(request.param, tmp_path):
        app = LedgerApplication(store.settings)
        vkey = app.signer.verifier_key()
        app.close()
        witness = Witness(tmp_path, vkey)
        store.settings = store.settings.model_copy(
            update={"witnesses": [WitnessConfig(url=witness.url, key=witness.vkey)]}
        )
        try:
            yield store, witness
        finally:
            witness.stop()


def test_receipts_carry_witness_cosignatures(witnessed: tuple[Store, Witness]) -> None:
    """Every receipt's checkpoint is cosigned by the witness, and /checkpoint serves it."""
    store, witness = witnessed
    app = LedgerApplication(store.settings)
    receipts = record_sample(app, amendments=2).receipts
    app.close()
    verifier = CosignatureVerifier.from_vkey(witness.vkey)
    for receipt in receipts:
        assert "witness.test" in verify_cosignatures(receipt.checkpoint, [verifier], 1)
    server = Server(store)
    try:
        _, _, note = server.get("/checkpoint")
        assert verify_cosignatures(note.decode(), [verifier], 1)
    finally:
        server.stop()


def test_auditor_follows_the_log_and_catches_a_fork(
    witnessed: tuple[Store, Witness], tmp_path: Path
) -> None:
    """Audit, grow, re-audit with a proof; a rewritten log under the same key is refused."""
    store, witness = witnessed
    app = LedgerApplication(store.settings)
    sample = record_sample(app, amendments=2)
    vkey = app.signer.verifier_key()
    app.close()
    state = tmp_path / "auditor.state"
    server = Server(store)
    try:
        first = ledger(
            "audit",
            server.base,
            "--key",
            vkey,
            "--state",
            str(state),
            "--witness",
            witness.vkey,
            "--quorum",
            "1",
        )
        assert first.returncode == 0, first.stderr
        assert f"grew from 0 to {len(sample.receipts)}" in first.stdout
        app = LedgerApplication(store.settings)
        app.add_strand(sample.process_id, strand_id="fraud", title="Fraud", actor=OFFICIAL)
        app.close()
        second = ledger(
            "audit",
            server.base,
            "--key",
            vkey,
            "--state",
            str(state),
            "--witness",
            witness.vkey,
            "--quorum",
            "1",
        )
        assert second.returncode == 0, second.stderr
        assert "consistency proof" in second.stdout
        stranger = ledger(
            "audit",
            server.base,
            "--key",
            vkey,
            "--state",
            str(tmp_path / "s2"),
            "--witness",
            "someone+00000000+" + "A" * 44,
            "--quorum",
            "1",
        )
        assert stranger.returncode != 0
    finally:
        server.stop()

    # A rewrite: the same key and origin sign a different history, larger than before.
    trusted = state.read_bytes()
    for fork in make_store(store.kind, tmp_path / "fork"):
        fork.settings = fork.settings.model_copy(
            update={
                "signing_key_file": store.settings.signing_key_file,
                "witnesses": store.settings.witnesses,
            }
        )
        app = LedgerApplication(fork.settings)
        forked = record_sample(app, amendments=9)
        app.close()
        # The witness, which saw the real log, refuses to cosign the fork.
        with pytest.raises(CheckpointError):
            verify_cosignatures(
                forked.receipts[-1].checkpoint, [CosignatureVerifier.from_vkey(witness.vkey)], 1
            )
        fork_server = Server(fork)
        try:
            caught = ledger("audit", fork_server.base, "--key", vkey, "--state", str(state))
        finally:
            fork_server.stop()
        assert caught.returncode == 1
        assert "FAILED" in caught.stderr
        assert "state left unchanged" in caught.stderr
        assert state.read_bytes() == trusted


def test_bundle_export_and_offline_audit(tmp_path: Path) -> None:
    """`ledger export --bundle` makes a file an auditor checks with nothing else."""
    for store in make_store("sqlite", tmp_path):
        app = LedgerApplication(store.settings)
        record_sample(app, amendments=3)
        vkey = app.signer.verifier_key()
        app.close()
        bundle = tmp_path / "log.bundle"
        exported = ledger("export", "--bundle", str(bundle), env=store.env())
        assert exported.returncode == 0, exported.stderr
        audited = ledger("audit", str(bundle), "--key", vkey, "--state", str(tmp_path / "st"))
        assert audited.returncode == 0, audited.stderr
        lines = bundle.read_bytes().split(b"\n")
        assert b'"name":"' in lines[4]
        lines[4] = lines[4].replace(b'"name":"', b'"name":"X')
        bundle.write_bytes(b"\n".join(lines))
        tampered = ledger("audit", str(bundle), "--key", vkey, "--state", str(tmp_path / "st2"))
        assert tampered.returncode == 1
        assert "FAILED" in tampered.stderr
        assert not (tmp_path / "st2").exists()


def test_auditor_follows_a_key_rotation(store: Store, tmp_path: Path) -> None:
    """An auditor who trusts the old key learns the new one from the log, over HTTP and bundle."""
    app = LedgerApplication(store.settings)
    sample = record_sample(app, amendments=2)
    old_vkey = app.signer.verifier_key()
    http_state, bundle_state = tmp_path / "http.state", tmp_path / "bundle.state"
    server = Server(store)
    try:
        before = ledger("audit", server.base, "--key", old_vkey, "--state", str(http_state))
        assert before.returncode == 0, before.stderr
        new_signer = create_key_file(tmp_path / "new.key", LOG_NAME)
        app.rotate_key(
            new_signer, reason="scheduled rotation", actor=Actor("ops", "admin", sample.org_ids[0])
        )
        app.add_strand(sample.process_id, strand_id="fraud", title="Fraud", actor=OFFICIAL)
        app.close()
        after = ledger("audit", server.base, "--key", old_vkey, "--state", str(http_state))
        assert after.returncode == 0, after.stderr
        again = ledger("audit", server.base, "--key", old_vkey, "--state", str(http_state))
        assert again.returncode == 0, again.stderr
        assert "unchanged" in again.stdout
    finally:
        server.stop()
    env = store.env()
    env["LEDGER_SIGNING_KEY_FILE"] = str(tmp_path / "new.key")
    bundle = tmp_path / "rotated.bundle"
    assert ledger("export", "--bundle", str(bundle), env=env).returncode == 0
    fresh = ledger("audit", str(bundle), "--key", old_vkey, "--state", str(bundle_state))
    assert fresh.returncode == 0, fresh.stderr
    stranger = create_key_file(tmp_path / "stranger.key", LOG_NAME).verifier_key()
    refused = ledger("audit", str(bundle), "--key", stranger, "--state", str(tmp_path / "x"))
    assert refused.returncode == 1


# --------------------------------------------------------------------------------------
# A man in the middle, and the origin
# --------------------------------------------------------------------------------------


class Interceptor:
    """A man in the middle on loopback: forwards every GET to the log, except that it answers
    ``/checkpoint`` with ``forged`` when that is set."""

    def __init__(self, upstream: str) -> None:
        self.forged: bytes | None = None
        interceptor = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet."""

            def do_GET(self) -> None:
                if self.path == "/checkpoint" and interceptor.forged is not None:
                    status, body = 200, interceptor.forged
                    content_type = "text/plain; charset=utf-8"
                else:
                    try:
                        with urllib.request.urlopen(upstream + self.path, timeout=10) as answer:
                            status, body = answer.status, answer.read()
                            content_type = answer.headers["Content-Type"]
                    except urllib.error.HTTPError as error:
                        status, body = error.code, error.read()
                        content_type = error.headers["Content-Type"]
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _garbage_under(note: str) -> bytes:
    """``note`` with its signature replaced by garbage under the same key name and key id."""
    body, _, line = note[:-1].rpartition("\n")
    name, encoded = line[2:].split(" ")
    raw = base64.b64decode(encoded)
    garbage = raw[:4] + hashlib.sha512(raw).digest()
    return f"{body}\n\u2014 {name} {base64.b64encode(garbage).decode()}\n".encode()


def test_a_man_in_the_middle_cannot_make_the_auditor_report_a_rollback_or_fork(
    store: Store, tmp_path: Path
) -> None:
    """Between `ledger audit` and a real log, a forged checkpoint (signed by another key, or
    garbage under the log's key id) claiming a smaller size, or the same size with another
    root, is reported as not signed by the log's key: never as a rollback or a fork, which
    would be false evidence against the log. The kept state does not change."""
    app = LedgerApplication(store.settings)
    sample = record_sample(app, amendments=2)
    vkey = app.signer.verifier_key()
    app.close()
    size = len(sample.receipts)
    state = tmp_path / "auditor.state"
    server = Server(store)
    proxy = Interceptor(server.base)
    try:
        first = ledger("audit", proxy.url, "--key", vkey, "--state", str(state))
        assert first.returncode == 0, first.stderr
        trusted = state.read_bytes()
        _, _, earlier = server.get(f"/checkpoint/{size - 3}")
        _, _, latest = server.get("/checkpoint")
        stranger = Ed25519Signer.generate(LOG_NAME)
        smaller_body = earlier.decode().split("\n\n")[0].encode() + b"\n"
        forgeries = {
            "smaller, another key": sign_note(smaller_body, [stranger]).encode(),
            "smaller, garbage under the log's key id": _garbage_under(earlier.decode()),
            "same size, another root, another key": sign_note(
                Checkpoint(LOG_NAME, size, bytes(32)).body(), [stranger]
            ).encode(),
            "same size, garbage under the log's key id": _garbage_under(latest.decode()),
        }
        for name, forged in forgeries.items():
            proxy.forged = forged
            caught = ledger("audit", proxy.url, "--key", vkey, "--state", str(state))
            assert caught.returncode == 1, (name, caught.stdout)
            assert caught.stderr.startswith("ledger audit: FAILED: the checkpoint claiming"), (
                name,
                caught.stderr,
            )
            assert "is not signed by the log's key" in caught.stderr, (name, caught.stderr)
            assert "FAILED: rollback" not in caught.stderr
            assert "FAILED: fork" not in caught.stderr
            assert state.read_bytes() == trusted
        proxy.forged = None
        honest = ledger("audit", proxy.url, "--key", vkey, "--state", str(state))
        assert honest.returncode == 0, honest.stderr
        assert "unchanged" in honest.stdout
    finally:
        proxy.stop()
        server.stop()


def test_ledger_audit_pins_the_origin(store: Store, tmp_path: Path) -> None:
    """`--origin` refuses a log with another origin (naming both); without it a first audit
    says which origin it trusted and keeps it; the kept state then refuses another origin,
    from the command line and from a log signed by the same key under another origin."""
    app = LedgerApplication(store.settings)
    record_sample(app, amendments=1)
    vkey = app.signer.verifier_key()
    app.close()
    other_origin = "ledger.test.example/another-log"
    state = tmp_path / "auditor.state"
    server = Server(store)
    try:
        wrong = ledger(
            "audit", server.base, "--key", vkey, "--state", str(state), "--origin", other_origin
        )
        assert wrong.returncode == 1, wrong.stdout
        assert wrong.stderr.count("\n") == 1
        assert f"the checkpoint is for the log {LOG_NAME!r}" in wrong.stderr
        assert f"the pinned origin is {other_origin!r}" in wrong.stderr
        assert not state.exists()

        first = ledger("audit", server.base, "--key", vkey, "--state", str(state))
        assert first.returncode == 0, first.stderr
        assert f"origin       {LOG_NAME} (trusted on first use" in first.stdout
        assert f"pin it with --origin {LOG_NAME}" in first.stdout
        assert json.loads(state.read_text())["origin"] == LOG_NAME

        pinned = ledger(
            "audit", server.base, "--key", vkey, "--state", str(state), "--origin", LOG_NAME
        )
        assert pinned.returncode == 0, pinned.stderr
        assert f"origin       {LOG_NAME} (pinned)" in pinned.stdout
        kept = state.read_bytes()

        contradicts = ledger(
            "audit", server.base, "--key", vkey, "--state", str(state), "--origin", other_origin
        )
        assert contradicts.returncode == 1
        assert f"trusts the log {LOG_NAME!r}" in contradicts.stderr
        assert f"the pinned origin is {other_origin!r}" in contradicts.stderr
        assert state.read_bytes() == kept
    finally:
        server.stop()

    # Another log, signed by the same key under another origin, larger than the kept state.
    for other in make_store(store.kind, tmp_path / "other"):
        other.settings = other.settings.model_copy(
            update={"signing_key_file": store.settings.signing_key_file, "log_name": other_origin}
        )
        app = LedgerApplication(other.settings)
        record_sample(app, amendments=4)
        app.close()
        other_server = Server(other)
        try:
            refused = ledger("audit", other_server.base, "--key", vkey, "--state", str(state))
        finally:
            other_server.stop()
        assert refused.returncode == 1, refused.stdout
        assert f"the checkpoint is for the log {other_origin!r}" in refused.stderr
        assert f"the state trusts the log {LOG_NAME!r}" in refused.stderr
        assert state.read_bytes() == kept
