"""`ledger tokens create|list|revoke`: the token is printed once and stored nowhere."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.storage.side import SideStore
from tests.conftest import PG_URL, Store

ROOT = Path(__file__).resolve().parents[2]
ADMIN = Actor("ledger-admin", "admin", "")
TOKEN = re.compile(r"olt_([0-9a-f]{32})_([A-Za-z0-9_-]{20,128})")


def tokens(store: Store, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", "tokens", *args],
        cwd=ROOT,
        env=store.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def listed(store: Store) -> dict[str, str]:
    """token id → its line in `ledger tokens list`."""
    done = tokens(store, "list")
    assert done.returncode == 0, done.stderr
    return {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}


def stored_bytes(store: Store) -> bytes:
    """Everything the store holds: the SQLite files' bytes, or every PostgreSQL table as text."""
    if store.kind == "sqlite":
        return b"".join(p.read_bytes() for p in sorted(store.settings.data_dir.iterdir()))
    dump = []
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        names = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (store.schema,),
        ).fetchall()
        assert {"ledger_tokens", "ledger_entries", "ledger_events"} <= {n for (n,) in names}
        for (name,) in names:
            rows = conn.execute(f'SELECT t::text FROM "{store.schema}"."{name}" t').fetchall()
            dump += [row[0].encode() for row in rows]
    return b"\n".join(dump)


def test_create_list_revoke(store: Store) -> None:
    """One token line on stdout; its secret is nowhere in the store; list and revoke work."""
    app = LedgerApplication(store.settings)  # the tables, and an organisation to act for
    org = app.register_organisation(
        name="Cabinet Office", org_kind="department", actor=ADMIN
    ).subject_id
    app.close()

    created = tokens(store, "create", "--name", "j.smith", "--org", org, "--role", "recorder")
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    assert len(lines) == 1, created.stdout
    found = TOKEN.fullmatch(lines[0])
    assert found is not None, lines[0]
    token_id, secret = str(uuid.UUID(hex=found.group(1))), found.group(2)
    assert token_id in created.stderr
    assert secret not in created.stderr

    everything = stored_bytes(store)
    assert token_id.encode() in everything  # the scan does see the token's rows …
    for needle in (secret.encode(), secret.encode().hex().encode(), lines[0].encode()):
        assert needle not in everything  # … but never its secret
    side = SideStore(store.settings)
    try:
        row = side.token(token_id)
    finally:
        side.close()
    assert row is not None
    assert (row.principal, row.org, row.role, row.revoked_index) == (
        "j.smith",
        org,
        "recorder",
        None,
    )

    line = listed(store)[token_id]
    assert "recorder" in line
    assert "j.smith" in line
    assert line.endswith("active")
    assert secret not in line

    revoked = tokens(store, "revoke", token_id, "--reason", "left the department")
    assert revoked.returncode == 0, revoked.stderr
    assert token_id in revoked.stdout
    index = int(revoked.stdout.rsplit(" ", 1)[1])
    assert listed(store)[token_id].endswith(f"revoked at {index}")

    again = tokens(store, "revoke", token_id, "--reason", "twice")
    assert again.returncode != 0
    assert len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert "already revoked" in again.stderr


def test_refusals_are_one_line_and_issue_nothing(store: Store) -> None:
    """A bad role or an unknown organisation: a non-zero exit, a short message, no token."""
    LedgerApplication(store.settings).close()

    bad_role = tokens(store, "create", "--name", "x", "--role", "boss")
    assert bad_role.returncode != 0
    assert bad_role.stdout == ""
    assert "Traceback" not in bad_role.stderr
    # argparse prints its usage block first; the message itself is the one last line.
    message = bad_role.stderr.strip().splitlines()[-1]
    assert "invalid choice: 'boss'" in message
    assert "recorder" in message

    unknown_org = tokens(store, "create", "--name", "x", "--role", "admin", "--org", "nowhere")
    assert unknown_org.returncode != 0
    assert unknown_org.stdout == ""
    assert len(unknown_org.stderr.strip().splitlines()) == 1, unknown_org.stderr
    assert "nowhere" in unknown_org.stderr

    unknown_id = tokens(store, "revoke", str(uuid.uuid4()), "--reason", "r")
    assert unknown_id.returncode != 0
    assert len(unknown_id.stderr.strip().splitlines()) == 1, unknown_id.stderr

    assert listed(store) == {}
