"""Person ids, the master key file, and the rules for individual attendees."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.actors import Actor
from ledger.aggregates import ErasureRecord, Meeting
from ledger.errors import InvalidInputError, RuleViolationError
from ledger.keys import ConfigurationError, create_master_key_file, load_master_key
from ledger.settings import Settings
from ledger.vault import MemoryKeyStore, Vault, check_person_id

ADMIN = Actor("a", "admin", "")
RECORDER = Actor("r", "recorder", "")
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_person_ids_are_uuids_or_opaque_never_personal() -> None:
    raw = uuid.uuid4()
    assert check_person_id(str(raw).upper()) == str(raw)
    assert check_person_id(raw.hex) == str(raw)
    assert check_person_id("ref-000123-abcdef") == "ref-000123-abcdef"
    with pytest.raises(InvalidInputError, match="e-mail"):
        check_person_id("zyx.qpl@example.org")
    for bad in ("", "   ", "jsmith", "John Smith 1", "abcdefghijklmnopq", "x" * 70 + "1", 7):
        with pytest.raises(InvalidInputError):
            check_person_id(bad)


def test_the_master_key_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    key = load_master_key(Settings(master_key_file=path))
    assert key is not None
    assert len(key) == 32
    with pytest.raises(FileExistsError):
        create_master_key_file(path)
    assert load_master_key(Settings(data_dir=tmp_path / "none")) is None
    demo = Settings(demo=True, data_dir=tmp_path / "demo")
    first = load_master_key(demo)
    assert first is not None
    assert load_master_key(demo) == first
    assert (tmp_path / "demo" / "demo-master.key").stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="readable by others"):
        load_master_key(Settings(master_key_file=path))
    bad = tmp_path / "bad.key"
    bad.write_text("not base64!\n")
    bad.chmod(0o600)
    with pytest.raises(ConfigurationError, match="32 bytes"):
        load_master_key(Settings(master_key_file=bad))


def _meeting(disclosure: str) -> Meeting:
    return Meeting.schedule(
        process_id="p",
        strand_id=None,
        title="M",
        starts_at="2026-03-01T09:00:00Z",
        disclosure=disclosure,
        convenor_org="o",
        actor=RECORDER,
        at=NOW,
    )


def test_individual_attendees_are_sealed_values_on_open_meetings_only() -> None:
    vault = Vault(b"k" * 32, MemoryKeyStore())
    sealed = vault.seal("ref-000123-abcdef", {"name": "X"}).as_entry()
    meeting = _meeting("on_record")
    with pytest.raises(InvalidInputError, match="sealed"):
        meeting.record_held_with_people(
            attending_orgs=["o"],
            attending_people=[{"person": "p", "name": "X"}],
            held_at="t",
            actor=RECORDER,
            at=NOW,
        )
    with pytest.raises(InvalidInputError, match="twice"):
        meeting.record_held_with_people(
            attending_orgs=["o"],
            attending_people=[sealed, sealed],
            held_at="t",
            actor=RECORDER,
            at=NOW,
        )
    meeting.record_held_with_people(
        attending_orgs=["o"], attending_people=[sealed], held_at="t", actor=RECORDER, at=NOW
    )
    assert meeting.held
    assert meeting.attending_people == [sealed]
    with pytest.raises(RuleViolationError, match="chatham_house"):
        _meeting("chatham_house").record_held_with_people(
            attending_orgs=["o"], attending_people=[sealed], held_at="t", actor=RECORDER, at=NOW
        )


def test_only_an_admin_records_an_erasure() -> None:
    fields = {"person_id": "ref-000123-abcdef", "legal_basis": "b", "authorised_by": "c"}
    with pytest.raises(RuleViolationError, match="admin"):
        ErasureRecord.erase(**fields, keys_destroyed=1, actor=RECORDER, at=NOW)
    record = ErasureRecord.erase(**fields, keys_destroyed=1, actor=ADMIN, at=NOW)
    assert record.person_id == "ref-000123-abcdef"
    with pytest.raises(InvalidInputError):
        ErasureRecord.erase(**{**fields, "legal_basis": " "}, keys_destroyed=0, actor=ADMIN, at=NOW)
