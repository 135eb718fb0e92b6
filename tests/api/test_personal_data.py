"""Crypto-shredding of individuals' personal data, end to end over HTTP, on both backends.

Personal data planted through the API must appear nowhere in the store (any table, any
column, plain or hex) nor in any file of the data directory; officials read it decrypted;
an admin's erasure destroys the person's keys, records ``person.erased``, and leaves the log
verifiable, the projections rebuildable to the same public answers, and a copy of the
database taken afterwards unable to open what was sealed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from api.app import create_app
from ledger.application import LedgerApplication
from ledger.keys import create_master_key_file, load_master_key
from ledger.storage.side import SideStore
from ledger.vault import ErasedError, NoMasterKeyError, Sealed, Vault
from tests.api.test_public_api import wait_for
from tests.api.test_writes import SETUP, TestClient, open_api, problem
from tests.conftest import PG_URL, Store

ROOT = Path(__file__).resolve().parents[2]
NAME = "Zyxwvut Qplmokn"
EMAIL = "zyx.qpl@example.org"
NEEDLES = [NAME.encode(), EMAIL.encode(), b"Zyxwvut", b"Qplmokn"]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8", "surrogatepass")


def _found(blob: bytes, needles: list[bytes]) -> list[bytes]:
    lowered = blob.lower()
    return [n for n in needles if n.lower() in lowered or n.hex().encode() in lowered or n in blob]


def _tables(store: Store, conn: Any, schema: str | None = None) -> list[str]:
    if store.kind == "sqlite":
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    else:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema or store.schema,),
        ).fetchall()
    return [r[0] for r in rows]


def scan_store(store: Store, needles: list[bytes]) -> list[str]:
    """Every table, row and column of the store, and every file under the data dir."""
    hits: list[str] = []
    conn = store.connect()
    try:
        for table in _tables(store, conn):
            for row in conn.execute(f'SELECT * FROM "{table}"').fetchall():
                for value in row:
                    for needle in _found(_as_bytes(value), needles):
                        hits.append(f"table {table}: {needle!r}")
    finally:
        conn.close()
    for path in store.settings.data_dir.rglob("*"):
        if path.is_file():
            for needle in _found(path.read_bytes(), needles):
                hits.append(f"file {path}: {needle!r}")
    return hits


def _key_rows(store: Store, person: str) -> list[bytes]:
    conn = store.connect()
    try:
        rows = conn.execute(
            store.q("SELECT wrapped FROM ledger_person_keys WHERE person_id = ?"), (person,)
        ).fetchall()
    finally:
        conn.close()
    return [bytes(r[0]) for r in rows]


def _copy_of_store(store: Store, tmp_path: Path) -> tuple[SideStore, str | None]:
    """A SideStore over a copy of the database as it is now."""
    if store.kind == "sqlite":
        copy = tmp_path / "copy"
        shutil.copytree(store.settings.data_dir, copy)
        return SideStore(store.settings.model_copy(update={"data_dir": copy})), None
    schema = f"c_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        for table in _tables(store, conn):
            conn.execute(f'CREATE TABLE {schema}."{table}" AS TABLE {store.schema}."{table}"')
    return SideStore(store.settings.model_copy(update={"pg_schema": schema})), schema


def _record_meeting(api: Any) -> str:
    process = api.ledger.start_process(title="Open data", actor=SETUP).subject_id
    return str(
        api.ledger.schedule_meeting(
            process_id=process,
            title="Round table",
            starts_at="2026-03-01T09:00:00Z",
            convenor_org=api.org_id,
            actor=SETUP,
        ).subject_id
    )


def _public(client: TestClient, meeting: str, at: int) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for path in (f"/meetings/{meeting}", "/meetings", "/exports/meetings.ndjson"):
        response = client.get(path, params={"as_of": at})
        assert response.status_code == 200, (path, response.text)
        answers[path] = response.text
    return answers


def test_personal_data_is_sealed_read_by_officials_and_erased(store: Store, tmp_path: Path) -> None:
    master = tmp_path / "master.key"
    create_master_key_file(master)
    master_key = load_master_key(store.settings.model_copy(update={"master_key_file": master}))
    assert master_key is not None
    person, other = str(uuid.uuid4()), "ref-000123-abcdef"
    with open_api(store, master_key_file=master) as api:
        admin, recorder = api.officials["admin"], api.officials["recorder"]
        publisher = api.officials["publisher"]
        meeting = _record_meeting(api)
        held = {
            "attending_orgs": [api.org_id],
            "held_at": "2026-03-01T09:00:00Z",
            "attending_people": [
                {"person_id": person, "name": NAME, "role": f"Policy lead ({EMAIL})"},
                {"person_id": other, "name": "Second Attendee", "org": "A charity"},
            ],
        }
        # an id that is itself personal is refused, and nothing is recorded
        before = api.size()
        for bad in (EMAIL, "jsmith", "John Smith 1"):
            refused = dict(held, attending_people=[{"person_id": bad, "name": NAME}])
            problem(api.post(f"/meetings/{meeting}/held", recorder, refused), 422)
        assert api.size() == before

        response = api.post(f"/meetings/{meeting}/held", recorder, held)
        assert response.status_code == 200, response.text
        assert NAME not in response.text
        assert EMAIL not in response.text
        entry = json.loads(response.json()["entry"])
        assert entry["type"] == "meeting.held_with_people"
        sealed = entry["data"]["attending_people"]
        assert [s["person"] for s in sealed] == [person, other]
        assert all(set(s) == {"person", "key_id", "nonce", "ciphertext"} for s in sealed)
        held_index = response.json()["index"]
        wait_for(api.client, held_index)

        # (a) public answers show a count only; the plaintext is nowhere in the store
        detail = api.client.get(f"/meetings/{meeting}").json()
        assert detail["attending_individuals"] == 2
        assert detail["attending_orgs"] == [api.org_id]
        for path in (
            f"/meetings/{meeting}",
            "/meetings",
            "/exports/meetings.csv",
            "/exports/meetings.ndjson",
            f"/web/meetings/{meeting}",
            f"/entries/{held_index}",
        ):
            answer = api.client.get(path)
            assert answer.status_code == 200, (path, answer.text)
            assert NAME not in answer.text, path
            assert EMAIL not in answer.text, path
        assert "2 individuals" in api.client.get(f"/web/meetings/{meeting}").text
        assert scan_store(store, NEEDLES) == []

        # (b) officials read them decrypted; nobody else can
        path = f"/meetings/{meeting}/attendees"
        for who in (recorder, admin):
            answer = api.client.get(path, headers=who.auth)
            assert answer.status_code == 200, answer.text
            assert answer.headers["cache-control"] == "no-store"
            attendees = answer.json()["attendees"]
            assert attendees[0] == {
                "person": person,
                "erased": False,
                "name": NAME,
                "role": f"Policy lead ({EMAIL})",
            }
            assert attendees[1]["name"] == "Second Attendee"
        problem(api.client.get(path), 401)
        problem(api.client.get(path, headers=publisher.auth), 403)
        public_before = _public(api.client, meeting, held_index)

        # (d) only an admin erases
        body = {"legal_basis": "UK GDPR Art. 17(1)(b)", "authorised_by": "Data Protection Officer"}
        before = api.size()
        problem(api.post(f"/people/{person}/erasure", None, body), 401)
        for who in (recorder, publisher):
            problem(api.post(f"/people/{person}/erasure", who, body), 403)
        problem(api.post(f"/people/{EMAIL}/erasure", admin, body), 422)
        assert api.size() == before
        wrapped = _key_rows(store, person)
        assert len(wrapped) == 1

        # (c) erasure: the key rows go, person.erased is recorded, officials see "erased"
        response = api.post(f"/people/{person}/erasure", admin, body)
        assert response.status_code == 200, response.text
        erased = json.loads(response.json()["entry"])
        assert erased["type"] == "person.erased"
        assert erased["subject"]["kind"] == "person"
        assert erased["data"] == {
            "person_id": person,
            "legal_basis": body["legal_basis"],
            "authorised_by": body["authorised_by"],
            "keys_destroyed": 1,
        }
        erased_index = response.json()["index"]
        assert _key_rows(store, person) == []
        assert len(_key_rows(store, other)) == 1
        attendees = api.client.get(path, headers=admin.auth).json()["attendees"]
        assert attendees[0] == {"person": person, "erased": True}
        assert attendees[1]["erased"] is False
        wait_for(api.client, erased_index)
        public_after = _public(api.client, meeting, erased_index)
        assert _public(api.client, meeting, held_index) == public_before
        if store.kind == "sqlite":
            # the wrapped key is overwritten, not left in a free page or the WAL
            for file in store.settings.data_dir.rglob("*"):
                if file.is_file():
                    assert wrapped[0] not in file.read_bytes(), file
    assert scan_store(store, NEEDLES) == []

    # a copy of the database taken after the erasure cannot open the sealed values
    copy, schema = _copy_of_store(store, tmp_path)
    try:
        vault = Vault(master_key, copy)
        with pytest.raises(ErasedError):
            vault.open(Sealed.from_entry(sealed[0]))
        assert vault.open(Sealed.from_entry(sealed[1]))["name"] == "Second Attendee"
    finally:
        copy.close()
        if schema is not None:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")

    # the log verifies; the projections rebuild to the same public answers
    env = {**store.env(), "LEDGER_MASTER_KEY_FILE": str(master)}
    verified = _cli(env, "verify")
    assert verified.returncode == 0, verified.stderr + verified.stdout
    rebuilt = _cli(env, "projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr + rebuilt.stdout
    settings = store.settings.model_copy(update={"master_key_file": master})
    with TestClient(create_app(settings)) as client:
        wait_for(client, erased_index)
        assert _public(client, meeting, held_index) == public_before
        assert _public(client, meeting, erased_index) == public_after

    # the CLI erases too (admin actor), and refuses a personal id in one line
    done = _cli(env, "erase", other, "--legal-basis", "consent withdrawn", "--authorised-by", "DPO")
    assert done.returncode == 0, done.stderr
    assert f"erased {other} (1 data key destroyed)" in done.stdout
    assert _key_rows(store, other) == []
    refused = _cli(env, "erase", EMAIL, "--legal-basis", "x", "--authorised-by", "y")
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "e-mail" in refused.stderr
    verified = _cli(env, "verify")
    assert verified.returncode == 0, verified.stderr + verified.stdout


def test_without_a_master_key_personal_data_is_refused_and_the_rest_works(
    store: Store,
) -> None:
    app = LedgerApplication(store.settings)
    try:
        org = app.register_organisation(name="Org", org_kind="department", actor=SETUP)
        process = app.start_process(title="P", actor=SETUP).subject_id
        meeting = app.schedule_meeting(
            process_id=process,
            title="M",
            starts_at="2026-03-01T09:00:00Z",
            convenor_org=org.subject_id,
            actor=SETUP,
        ).subject_id
        people = [{"person_id": str(uuid.uuid4()), "name": NAME}]
        with pytest.raises(NoMasterKeyError, match="LEDGER_MASTER_KEY_FILE"):
            app.record_meeting_held(
                meeting,
                attending_orgs=[org.subject_id],
                held_at="2026-03-01T09:00:00Z",
                attending_people=people,
                actor=SETUP,
            )
        receipt = app.record_meeting_held(
            meeting, attending_orgs=[org.subject_id], held_at="2026-03-01T09:00:00Z", actor=SETUP
        )
        assert receipt.fields["type"] == "meeting.held"
        assert app.meeting_attendees(meeting) == []
        # erasing needs no master key (it only destroys keys)
        erased = app.erase_person(
            str(uuid.uuid4()), legal_basis="request", authorised_by="DPO", actor=SETUP
        )
        assert erased.fields["data"]["keys_destroyed"] == 0
    finally:
        app.close()
    assert scan_store(store, NEEDLES) == []


def test_keys_init_master_writes_a_private_key_file(tmp_path: Path) -> None:
    out = tmp_path / "keys" / "master.key"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    made = _cli(env, "keys", "init-master", "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    assert f"LEDGER_MASTER_KEY_FILE={out.resolve()}" in made.stdout
    again = _cli(env, "keys", "init-master", "--out", str(out))
    assert again.returncode == 2
    assert "refusing to overwrite" in again.stderr
