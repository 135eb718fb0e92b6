"""Key rotation: recorded in the log, sealed by the old key, enforced for every writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.checkpoint import CheckpointError, Ed25519Verifier, verify_note
from ledger.errors import RuleViolationError
from ledger.keys import create_key_file
from ledger.sequencer import StaleKeyError
from ledger.storage import open_reader
from ledger.verify import verify_log
from tests.conftest import LOG_NAME, Store
from tests.helpers import OFFICIAL, record_sample

ADMIN = Actor("ops", "admin", "cabinet-office")


def test_rotation_is_sealed_by_the_old_key_and_enforced(store: Store, tmp_path: Path) -> None:
    """The rotation entry's checkpoint is signed by the old key, later ones by the new."""
    app = LedgerApplication(store.settings)
    sample = record_sample(app, amendments=1)
    old = app.signer.verifier()
    stale = LedgerApplication(store.settings)  # another process, still on the old key
    new_signer = create_key_file(tmp_path / "new.key", LOG_NAME)
    rotation = app.rotate_key(new_signer, reason="annual rotation", actor=ADMIN)
    assert rotation.fields["type"] == "log.key_rotated"
    assert rotation.fields["data"]["new_key"] == new_signer.verifier_key()
    verify_note(rotation.checkpoint, old)
    with pytest.raises(CheckpointError):
        verify_note(rotation.checkpoint, new_signer.verifier())
    after = app.add_strand(sample.process_id, strand_id="fraud", title="Fraud", actor=OFFICIAL)
    verify_note(after.checkpoint, new_signer.verifier())
    with pytest.raises(CheckpointError):
        verify_note(after.checkpoint, old)
    with pytest.raises(StaleKeyError, match="rotated"):
        stale.add_strand(sample.process_id, strand_id="debt", title="Debt", actor=OFFICIAL)
    stale.close()
    app.close()
    reader = open_reader(store.settings)
    try:
        report = verify_log(reader, verifier=Ed25519Verifier.from_vkey(new_signer.verifier_key()))
        assert report.ok, report.damage
        assert report.size == after.index + 1  # the stale writer's attempt left nothing
        assert not verify_log(reader, verifier=old).ok  # the latest is not the old key's
    finally:
        reader.close()


def test_only_admins_rotate_and_only_to_a_new_key(store: Store, tmp_path: Path) -> None:
    """A recorder cannot rotate the key, and rotating to the same key is refused."""
    app = LedgerApplication(store.settings)
    record_sample(app, amendments=0)
    with pytest.raises(RuleViolationError, match="admin"):
        app.rotate_key(create_key_file(tmp_path / "k2", LOG_NAME), reason="x", actor=OFFICIAL)
    with pytest.raises(ValueError, match="current key"):
        app.rotate_key(app.signer, reason="x", actor=ADMIN)
    app.close()
