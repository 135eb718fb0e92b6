"""End to end on a real `ledger serve`: a CLI-issued token, a write over HTTP, a public read
of it, and an independent audit of the log that now holds it."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ledger.application import LedgerApplication
from ledger.audit import (
    HttpSource,
    audit,
    hash_leaf,
    parse_vkey,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from tests.api.test_log_api import Server
from tests.conftest import Store
from tests.helpers import record_sample

ROOT = Path(__file__).resolve().parents[2]


def post(
    server: Server, path: str, body: dict[str, Any], token: str
) -> tuple[int, dict[str, str], dict[str, Any]]:
    request = urllib.request.Request(
        server.base + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return response.status, headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        headers = {k.lower(): v for k, v in error.headers.items()}
        return error.code, headers, json.loads(error.read())


def test_write_read_and_audit_on_a_real_server(store: Store, tmp_path: Path) -> None:
    app = LedgerApplication(store.settings)
    sample = record_sample(app, amendments=1)
    vkey = app.signer.verifier_key()
    app.close()
    state = tmp_path / "auditor.state"
    server = Server(store)
    try:
        assert server.get("/public-key")[2].decode().strip() == vkey
        before = audit(HttpSource(server.base), vkey=vkey, state_path=state)
        assert before.new_size == len(sample.receipts)

        issued = subprocess.run(
            [
                sys.executable,
                "-m",
                "ledger.cli",
                "tokens",
                "create",
                "--name",
                "j.smith",
                "--org",
                sample.org_ids[0],
                "--role",
                "recorder",
            ],
            cwd=ROOT,
            env=store.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert issued.returncode == 0, issued.stderr
        (token,) = issued.stdout.split()

        proposal = {
            "process_id": sample.process_id,
            "strand_id": "research",
            "title": "Open registers",
            "sections": [{"id": "s1", "heading": "Scope", "text": "Publish the registers."}],
            "sponsor_org": sample.org_ids[1],
        }
        status, headers, receipt = post(server, "/proposals", proposal, token)
        assert status == 201, receipt
        pid = receipt["subject"]["id"]
        assert headers["location"] == f"/proposals/{pid}"
        assert headers["etag"] == '"1"'
        entry = receipt["entry"].encode()
        assert hashlib.sha256(entry).hexdigest() == receipt["entry_hash"]
        fields = json.loads(entry)
        assert fields["actor"] == {"id": "j.smith", "role": "recorder", "org": sample.org_ids[0]}
        # The token issue is one entry, the proposal the next.
        assert receipt["index"] == len(sample.receipts) + 1
        checkpoint = verify_checkpoint(receipt["checkpoint"], parse_vkey(vkey))
        verify_inclusion(
            hash_leaf(entry),
            receipt["index"],
            checkpoint.size,
            [base64.b64decode(h) for h in receipt["inclusion_proof"]["hashes"]],
            checkpoint.root,
        )
        # Without a token, nothing.
        status, headers, problem = post(server, "/proposals", proposal, "olt_nope")
        assert status == 401
        assert problem["status"] == 401
        assert "Bearer" in headers["www-authenticate"]

        # The public read models follow the log: poll briefly for the new proposal.
        deadline = time.monotonic() + 10
        while True:
            status, _, body = server.get(f"/proposals/{pid}")
            read = json.loads(body)
            if status == 200 and read.get("as_of_index", -1) >= receipt["index"]:
                break
            assert time.monotonic() < deadline, (status, read)
            time.sleep(0.1)
        assert read["title"] == "Open registers"
        assert "Publish the registers." in json.dumps(read)

        # The auditor, trusting only the key and its state, verifies the grown log.
        after = audit(HttpSource(server.base), vkey=vkey, state_path=state)
        assert after.old_size == before.new_size
        assert after.new_size == receipt["index"] + 1 == checkpoint.size
        assert after.entries_checked == 2
        assert after.proof_checked
        assert after.root == checkpoint.root
        assert after.head == hashlib.sha256(entry).digest()
        proof = server.json(f"/proof/consistency?old={before.new_size}&new={after.new_size}")
        verify_consistency(
            before.new_size,
            after.new_size,
            before.root,
            after.root,
            [base64.b64decode(h) for h in proof["proof"]],
        )
        # And `ledger audit`, from scratch, agrees.
        cli = subprocess.run(
            [
                sys.executable,
                *("-m", "ledger.cli", "audit", server.base, "--key", vkey),
                *("--state", str(tmp_path / "cli.state")),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert cli.returncode == 0, cli.stderr
    finally:
        server.stop()
