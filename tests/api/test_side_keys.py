"""Rows beside the log that grant something carry a MAC under a key kept outside the
database: a workspace session row, a document's uploads row. Inserted or edited with SQL
(both stores), they grant nothing. Document access is default-deny and derived from the
log: editing or deleting an embargo salt row, or a read model, exposes nothing.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from ledger.application import LedgerApplication
from ledger.storage.side import SideStore
from tests.api.test_side_trust import (
    SETUP,
    _embargo,
    _other_org_recorder,
    _publish,
    _sql,
    _upload,
)
from tests.api.test_writes import Official, open_api, poll
from tests.conftest import Store
from tests.security.test_access_control import Browser

_FAR = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _actors(store: Store) -> list[dict[str, Any]]:
    """The actor of every entry, read with raw SQL."""
    conn = store.connect()
    try:
        rows = conn.execute("SELECT entry FROM ledger_entries ORDER BY idx").fetchall()
    finally:
        conn.close()
    return [json.loads(bytes(r[0]))["actor"] for r in rows]


def _start_process(api: Any, cookie: str, csrf: str) -> httpx.Response:
    answer: httpx.Response = api.client.post(
        "/workspace/forms/start-process",
        data={"csrf": csrf, "title": "Recorded by whom?", "summary": "A forged session"},
        headers={"Cookie": f"ledger_session={cookie}"},
        follow_redirects=False,
    )
    return answer


# sessions ----------------------------------------------------------------------------------


def test_a_session_row_inserted_with_sql_is_never_honoured(store: Store) -> None:
    """An insider inserts a session for an admin's token, its hash the SHA-256 of a secret
    of their choosing: the workspace sends them to sign in and records nothing."""
    with open_api(store) as api:
        admin = api.officials["admin"]
        secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        _sql(
            store,
            "INSERT INTO ledger_sessions (session_hash, token_id, csrf, created, expires) "
            "VALUES (?, ?, ?, ?, ?)",
            hashlib.sha256(secret.encode()).hexdigest(),
            admin.token_id,
            csrf,
            "2026-01-01T00:00:00.000000Z",
            _FAR,
        )
        before = _actors(store)
        answer = _start_process(api, secret, csrf)
        assert answer.status_code == 303, answer.text[:300]
        assert answer.headers["location"].startswith("/workspace/sign-in")
        home = api.client.get(
            "/workspace", headers={"Cookie": f"ledger_session={secret}"}, follow_redirects=False
        )
        assert home.status_code == 303
        assert _actors(store) == before


def test_a_session_row_edited_with_sql_is_never_honoured(store: Store) -> None:
    """A recorder's real session, its row re-pointed at the admin's token (or its expiry
    moved): the session ends, nothing is recorded as the admin. Unedited, it works."""
    with open_api(store) as api:
        recorder, admin = api.officials["recorder"], api.officials["admin"]
        api.client.follow_redirects = False  # as a browser would see each answer
        browser = Browser(api.client)
        assert browser.sign_in(recorder.token).status_code == 303
        cookie = browser.cookies["ledger_session"]
        assert api.client.get("/workspace", headers=browser._cookie_header()).status_code == 200
        for edit, value in (("token_id", admin.token_id), ("expires", _FAR)):
            (original,) = _row(store, edit)
            assert _sql(store, f"UPDATE ledger_sessions SET {edit} = ?", value) == 1
            before = _actors(store)
            answer = _start_process(api, cookie, browser.csrf)
            assert answer.status_code == 303, (edit, answer.text[:300])
            assert answer.headers["location"].startswith("/workspace/sign-in")
            assert _actors(store) == before
            _sql(store, f"UPDATE ledger_sessions SET {edit} = ?", original)
        # Put back as it was, the session is the recorder's again.
        answer = _start_process(api, cookie, browser.csrf)
        assert answer.status_code == 201, answer.text[:300]
        assert _actors(store)[-1]["id"] == recorder.principal


def _row(store: Store, column: str) -> tuple[Any, ...]:
    conn = store.connect()
    try:
        rows = conn.execute(f"SELECT {column} FROM ledger_sessions").fetchall()
    finally:
        conn.close()
    assert len(rows) == 1
    return tuple(rows[0])


# documents: default-deny, derived from the log -------------------------------------------------


def _read(api: Any, who: Official, sha: str) -> httpx.Response:
    answer: httpx.Response = api.client.get(f"/documents/{sha}", headers=who.auth)
    return answer


def test_an_edited_or_deleted_embargo_salt_row_exposes_nothing(store: Store) -> None:
    """The salt row of an embargo deleted, or pointed at other bytes, or the publication's
    read model made to say "published": still not found to an official of another
    organisation, and the public route serves nothing. After the release, readable."""
    with open_api(store) as api:
        content = b"the embargoed figures, not yet released\n"
        pid, sha = _embargo(api, content, api.officials["publisher"])
        outsider = _other_org_recorder(api, "Open Budget Forum")
        assert _read(api, outsider, sha).status_code == 404
        (salt_row,) = _salt_rows(store, pid)
        assert _sql(store, "UPDATE ledger_embargo_salts SET sha256 = ?", "0" * 64) >= 1
        assert _read(api, outsider, sha).status_code == 404
        assert _sql(store, "DELETE FROM ledger_embargo_salts WHERE publication_id = ?", pid) == 1
        assert _read(api, outsider, sha).status_code == 404
        poll(api, f"/publications/{pid}", lambda r: r.status_code == 200)
        _sql(
            store,
            "UPDATE pv_publications SET state = 'published', sha256 = ? WHERE id = ?",
            sha,
            pid,
        )
        public = api.client.get(f"/publications/{pid}/document")
        assert public.status_code == 404, public.text[:300]
        assert content not in public.content
        assert _read(api, outsider, sha).status_code == 404
        # The salt row back: the release (an entry naming the SHA-256) opens it to everyone.
        _sql(
            store,
            "INSERT INTO ledger_embargo_salts (publication_id, salt, sha256, idx) "
            "VALUES (?, ?, ?, ?)",
            *salt_row,
        )
        released = api.post(
            f"/publications/{pid}/release", api.officials["publisher"], {"sha256": sha}
        )
        assert released.status_code == 200, released.text
        answer = _read(api, outsider, sha)
        assert answer.status_code == 200
        assert answer.content == content


def _salt_rows(store: Store, publication_id: str) -> list[tuple[Any, ...]]:
    conn = store.connect()
    try:
        rows = conn.execute(
            store.q(
                "SELECT publication_id, salt, sha256, idx FROM ledger_embargo_salts "
                "WHERE publication_id = ?"
            ),
            (publication_id,),
        ).fetchall()
    finally:
        conn.close()
    return [tuple(r) for r in rows]


def test_a_stored_document_no_entry_publishes_is_not_readable_by_every_official(
    store: Store,
) -> None:
    """Uploaded, not (yet) in any entry: its uploader, publishers and admins read it; an
    official of another organisation gets "not found". Once published, everyone."""
    with open_api(store) as api:
        uploader = api.officials["recorder"]
        content = b"a draft nobody has published\n"
        sha = _upload(api, uploader, content).json()["sha256"]
        outsider = _other_org_recorder(api, "Parish Transparency Group")
        assert _read(api, outsider, sha).status_code == 404
        for who in (uploader, api.officials["publisher"], api.officials["admin"]):
            assert _read(api, who, sha).status_code == 200, who.role
        _, published = _publish(api, b"a report that is published\n")
        assert _read(api, outsider, published).status_code == 200


def test_an_uploads_row_inserted_with_sql_grants_no_prerelease_read(store: Store) -> None:
    """An insider names an official of another organisation as an uploader of an embargoed
    document (with or without a made-up MAC): still not found to them. The real uploader
    reads it; `SideStore.unmatched_uploads` names the inserted rows."""
    with open_api(store) as api:
        uploader = api.officials["recorder"]
        content = b"the embargoed annex\n"
        _, sha = _embargo(api, content, uploader)
        outsider = _other_org_recorder(api, "Harbour Residents Network")
        assert _read(api, outsider, sha).status_code == 404
        _sql(
            store,
            "INSERT INTO ledger_document_uploads (sha256, principal, org, token_id, "
            "media_type, uploaded_at) VALUES (?, ?, ?, ?, ?, ?)",
            sha,
            outsider.principal,
            outsider.org,
            outsider.token_id,
            "text/plain",
            "2026-01-01T00:00:00.000000Z",
        )
        assert _read(api, outsider, sha).status_code == 404
        _sql(
            store,
            "INSERT INTO ledger_document_upload_macs (sha256, principal, org, mac) "
            "VALUES (?, ?, ?, ?)",
            sha,
            outsider.principal,
            outsider.org,
            hashlib.sha256(sha.encode()).hexdigest(),
        )
        assert _read(api, outsider, sha).status_code == 404
        # The real uploader's row moved to the outsider's organisation grants nothing either.
        other = _other_org_recorder(api, "Quayside Tenants Union")
        _sql(
            store,
            "UPDATE ledger_document_uploads SET principal = ?, org = ? "
            "WHERE sha256 = ? AND principal = ?",
            other.principal,
            other.org,
            sha,
            uploader.principal,
        )
        _sql(
            store,
            "UPDATE ledger_document_upload_macs SET principal = ?, org = ? "
            "WHERE sha256 = ? AND principal = ?",
            other.principal,
            other.org,
            sha,
            uploader.principal,
        )
        assert _read(api, other, sha).status_code == 404
        assert sorted(api.side.unmatched_uploads()) == sorted(
            [(sha, outsider.principal, outsider.org), (sha, other.principal, other.org)]
        )
        # The uploader uploads the bytes again: their own row, MACed, reads again.
        assert _read(api, uploader, sha).status_code == 404
        _upload(api, uploader, content)
        answer = _read(api, uploader, sha)
        assert answer.status_code == 200
        assert answer.content == content


def test_ledger_migrate_gives_an_older_store_the_upload_macs_table(store: Store) -> None:
    """A store made before uploads rows were MACed: `ledger migrate` adds the table, an
    older uploads row grants nothing until its uploader uploads the bytes again."""
    app = LedgerApplication(store.settings)
    try:
        app.start_process(title="Before the upgrade", actor=SETUP)
    finally:
        app.close()
    content = b"an annex uploaded before the upgrade\n"
    sha = hashlib.sha256(content).hexdigest()
    _sql(store, "DROP TABLE ledger_document_upload_macs")
    _sql(
        store,
        "INSERT INTO ledger_document_uploads (sha256, principal, org, token_id, media_type, "
        "uploaded_at) VALUES (?, ?, ?, ?, ?, ?)",
        sha,
        "a.clerk",
        "",
        "00000000-0000-4000-8000-000000000000",
        "text/plain",
        "2026-01-01T00:00:00.000000Z",
    )
    done = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "migrate"],
        env=store.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    side = SideStore(store.settings)
    try:
        assert side.upload_media_type(sha, "a.clerk", "") is None
        assert side.unmatched_uploads() == [(sha, "a.clerk", "")]
        side.put_document(sha, "text/plain", content, uploader=("a.clerk", "", "t-1"))
        assert side.upload_media_type(sha, "a.clerk", "") == "text/plain"
        assert side.unmatched_uploads() == []
    finally:
        side.close()


def test_ledger_verify_finds_an_uploads_row_without_its_mac(store: Store) -> None:
    """`ledger verify` (where the signing key is) names an uploads row inserted with SQL;
    a real upload's row passes."""
    with open_api(store) as api:
        uploader = api.officials["recorder"]
        _, sha = _embargo(api, b"the embargoed tables\n", uploader)
        outsider = _other_org_recorder(api, "Canal Path Society")

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ledger.cli", "verify", "--quiet"],
            env=store.env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    clean = verify()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    _sql(
        store,
        "INSERT INTO ledger_document_uploads (sha256, principal, org, token_id, media_type, "
        "uploaded_at) VALUES (?, ?, ?, ?, ?, ?)",
        sha,
        outsider.principal,
        outsider.org,
        outsider.token_id,
        "text/plain",
        "2026-01-01T00:00:00.000000Z",
    )
    damaged = verify()
    assert damaged.returncode == 1, damaged.stdout + damaged.stderr
    said = damaged.stdout + damaged.stderr
    assert "uploads row without the service's MAC" in said
    assert outsider.principal in said


def test_entry_bytes_edited_to_publish_an_embargoed_document_expose_nothing(store: Store) -> None:
    """An insider rewrites the embargo's entry bytes in `ledger_entries` into a publication
    of the embargoed SHA-256 (to put them back after reading): the service checks each entry
    it relies on against the signed checkpoint, so the document stays not found."""
    with open_api(store) as api:
        content = b"the embargoed forecast\n"
        pid, sha = _embargo(api, content, api.officials["publisher"])
        outsider = _other_org_recorder(api, "Riverside Civic Panel")
        poll(api, f"/publications/{pid}", lambda r: r.status_code == 200)
        conn = store.connect()
        try:
            rows = conn.execute("SELECT idx, entry FROM ledger_entries ORDER BY idx").fetchall()
        finally:
            conn.close()
        (index, original) = next(
            (int(i), bytes(e))
            for i, e in rows
            if json.loads(bytes(e))["type"] == "publication.embargoed"
            and json.loads(bytes(e))["subject"]["id"] == pid
        )
        forged = json.loads(original)
        forged["type"] = "publication.published"
        forged["data"] = {**forged["data"], "sha256": sha, "size": len(content)}
        forged_bytes = json.dumps(forged, separators=(",", ":"), sort_keys=True).encode()
        assert _sql(store, "UPDATE ledger_entries SET entry = ? WHERE idx = ?", forged_bytes, index)
        answer = _read(api, outsider, sha)
        assert answer.status_code == 404, answer.text[:200]
        assert content not in answer.content
        _sql(
            store,
            "UPDATE pv_publications SET state = 'published', sha256 = ? WHERE id = ?",
            sha,
            pid,
        )
        public = api.client.get(f"/publications/{pid}/document")
        assert public.status_code == 404
        assert content not in public.content
        _sql(store, "UPDATE ledger_entries SET entry = ? WHERE idx = ?", original, index)
