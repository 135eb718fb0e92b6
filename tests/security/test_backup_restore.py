"""`ledger backup` / `ledger restore`: a restored store verifies and continues the same chain,
auditors holding a newer checkpoint detect the rollback, and a damaged backup writes nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.audit import BundleSource, audit
from ledger.audit.errors import ConsistencyError
from ledger.errors import InvalidInputError
from ledger.keys import load_signer
from ledger.storage.backup import read_backup_header, restore, write_backup
from ledger.storage.side import SideStore
from ledger.verify import verify_store
from tests.conftest import BACKENDS, Store, make_store
from tests.helpers import OFFICIAL, record_sample
from tests.integration.test_import import all_entries

ADMIN = Actor("admin", "admin", "cabinet-office")


def _cli(store: Store, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args],
        env=store.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _vkey(store: Store) -> str:
    signer = load_signer(store.settings)
    assert signer is not None
    return signer.verifier_key()


def _audit(store: Store, tmp: Path, state: Path) -> None:
    bundle = tmp / f"bundle-{len(all_entries(store))}.ndjson"
    done = _cli(store, "export", "--bundle", str(bundle))
    assert done.returncode == 0, done.stderr
    audit(BundleSource(bundle), vkey=_vkey(store), state_path=state)


@pytest.mark.parametrize("target_kind", BACKENDS)
def test_restore_verifies_continues_the_chain_and_auditors_see_the_rollback(
    store: Store, target_kind: str, tmp_path: Path
) -> None:
    app = LedgerApplication(store.settings)
    sample = record_sample(app)
    token_receipt, _secret = app.issue_token(
        principal="clerk", org=sample.org_ids[0], role="recorder", actor=ADMIN
    )
    app.close()
    backup = tmp_path / "ledger.backup.gz"
    done = _cli(store, "backup", str(backup))
    assert done.returncode == 0, done.stderr
    assert "holds" in done.stdout
    header = read_backup_header(backup)
    at_backup = all_entries(store)
    assert header.size == len(at_backup)
    assert header.rows["ledger_tokens"] == 1

    # The log grows after the backup; an auditor trusts the bigger checkpoint.
    app = LedgerApplication(store.settings)
    app.add_strand(sample.process_id, strand_id="later", title="Later", actor=OFFICIAL)
    app.close()
    state = tmp_path / "auditor.json"
    _audit(store, tmp_path, state)
    trusted = state.read_bytes()

    # Restore into a fresh store (same kind or the other one), with the same signing key.
    for empty in make_store(target_kind, tmp_path / "restored"):
        target_settings = empty.settings.model_copy(
            update={"signing_key_file": store.settings.signing_key_file}
        )
        target = Store(empty.kind, target_settings, empty.schema)
        restored = _cli(target, "restore", str(backup))
        assert restored.returncode == 0, restored.stderr
        assert "verified" in restored.stdout
        assert all_entries(target) == at_backup  # byte for byte, index for index
        report = verify_store(target.settings, jobs=1)
        assert report.ok
        assert report.size == len(at_backup)

        # Tokens, their hashes and the side tables came along: the token still works.
        side = SideStore(target.settings)
        assert side.token(token_receipt.subject_id) is not None
        side.close()

        # The auditor with the newer checkpoint: a rollback.
        with pytest.raises(ConsistencyError, match="rollback"):
            _audit(target, tmp_path, state)
        assert state.read_bytes() == trusted  # its state is left as it was

        # The restored log continues the same chain …
        app = LedgerApplication(target.settings)
        receipt = app.add_strand(
            sample.process_id, strand_id="after-restore", title="After", actor=OFFICIAL
        )
        app.close()
        assert receipt.index == len(at_backup)
        previous = all_entries(target)[len(at_backup) - 1]
        assert orjson.loads(receipt.entry)["prev"] == hashlib.sha256(previous).hexdigest()
        assert verify_store(target.settings, jobs=1).ok
        # … and once it is as long as what the auditor saw, it is a fork, not an extension.
        with pytest.raises(ConsistencyError, match="fork"):
            _audit(target, tmp_path, state)


def test_restore_refuses_a_store_that_holds_a_ledger(store: Store, tmp_path: Path) -> None:
    app = LedgerApplication(store.settings)
    record_sample(app, amendments=1)
    app.close()
    backup = tmp_path / "b.gz"
    write_backup(store.settings, backup)
    before = all_entries(store)
    with pytest.raises(InvalidInputError, match="already holds a ledger"):
        restore(store.settings, backup)
    refused = _cli(store, "restore", str(backup))
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1
    assert "already holds a ledger" in refused.stderr
    assert all_entries(store) == before


@pytest.mark.parametrize("damage", ["truncate", "flip", "not-gzip", "reorder"])
def test_a_damaged_backup_restores_nothing(tmp_path: Path, damage: str) -> None:
    for source in make_store("sqlite", tmp_path / "src"):
        app = LedgerApplication(source.settings)
        record_sample(app, amendments=2)
        app.close()
        backup = tmp_path / "b.gz"
        write_backup(source.settings, backup)
        lines = gzip.decompress(backup.read_bytes()).splitlines(keepends=True)
        if damage == "truncate":
            lines = lines[: len(lines) // 2]
        elif damage == "flip":
            index = next(i for i, line in enumerate(lines) if b'"b64"' in line)
            lines[index] = lines[index].replace(b'"b64":"', b'"b64":"AA', 1)
        elif damage == "reorder":
            lines[3], lines[4] = lines[4], lines[3]
        data = b"".join(lines)
        backup.write_bytes(data if damage == "not-gzip" else gzip.compress(data))
        for target in make_store("sqlite", tmp_path / "dst"):
            result = _cli(target, "restore", str(backup))
            assert result.returncode != 0
            assert result.stderr.count("\n") == 1, result.stderr
            if target.settings.sqlite_path.exists():  # a file that is no backup: not even that
                assert all_entries(target) == []


def test_backup_is_one_snapshot_while_writers_carry_on(store: Store, tmp_path: Path) -> None:
    app = LedgerApplication(store.settings)
    sample = record_sample(app, amendments=1)
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set() and n < 200:
            app.add_strand(sample.process_id, strand_id=f"s{n}", title="S", actor=OFFICIAL)
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        backups = []
        for k in range(3):
            path = tmp_path / f"b{k}.gz"
            write_backup(store.settings, path)
            backups.append(path)
    finally:
        stop.set()
        writer.join(timeout=60)
        app.close()
    for k, path in enumerate(backups):
        for empty in make_store("sqlite", tmp_path / f"t{k}"):
            target = Store(
                empty.kind,
                empty.settings.model_copy(
                    update={"signing_key_file": store.settings.signing_key_file}
                ),
            )
            summary = restore(target.settings, path)
            report = verify_store(target.settings, jobs=1)
            assert report.ok, report.damage
            assert report.size == summary.size
