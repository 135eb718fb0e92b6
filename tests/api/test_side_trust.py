"""What the running service no longer takes on trust from the tables beside the log.

Each attack is made the way a database insider would make it: with SQL on the store, on
SQLite and on PostgreSQL. The service must refuse (a clear problem) and record nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.storage.backup import restore, write_backup
from ledger.storage.side import SideStore
from ledger.tokens import new_token
from tests.api.test_writes import (
    Official,
    check_receipt,
    open_api,
    poll,
    problem,
    unauthorised,
)
from tests.conftest import Store, make_store

SETUP = Actor("setup", "admin", "")


def _entries(store: Store) -> list[dict[str, Any]]:
    """Every entry in the store, parsed, in index order (read with raw SQL)."""
    conn = store.connect()
    try:
        rows = conn.execute("SELECT idx, entry FROM ledger_entries ORDER BY idx").fetchall()
    finally:
        conn.close()
    return [json.loads(bytes(entry)) for _, entry in rows]


def _sql(store: Store, statement: str, *params: Any) -> int:
    conn = store.connect()
    try:
        cursor = conn.execute(store.q(statement), params)
        return int(cursor.rowcount)
    finally:
        conn.close()


# tokens ----------------------------------------------------------------------------------------


def test_a_token_whose_role_was_raised_in_sql_is_refused(store: Store) -> None:
    """A recorder's row edited to admin: refused as not matching its issuing entry, and the
    service signs nothing in the name of an admin."""
    with open_api(store) as api:
        recorder = api.officials["recorder"]
        assert (
            _sql(
                store,
                "UPDATE ledger_tokens SET role = 'admin' WHERE token_id = ?",
                recorder.token_id,
            )
            == 1
        )
        before = api.size()
        raised = Official(
            "admin", recorder.principal, recorder.org, recorder.token, recorder.token_id
        )
        body = unauthorised(
            api.post("/tokens", raised, {"principal": "x.ghost", "org": "", "role": "admin"})
        )
        assert body["title"] == "Token does not match the log"
        assert "role" in body["detail"]
        unauthorised(api.post("/processes", raised, {"title": "As an admin"}))
        assert api.size() == before
        # The holder edited: refused just the same.
        _sql(
            store,
            "UPDATE ledger_tokens SET role = 'recorder', principal = 'x.someone-else' "
            "WHERE token_id = ?",
            recorder.token_id,
        )
        body = unauthorised(api.post("/processes", recorder, {"title": "As someone else"}))
        assert "holder" in body["detail"]
        assert api.size() == before
        assert api.side.token(recorder.token_id) is None


def test_an_inserted_token_row_is_refused(store: Store) -> None:
    """A token row no issuing entry vouches for: pointing at no entry, or at another token's
    issuing entry (the real admin's), or at an entry that is not a token's issue."""
    with open_api(store) as api:
        admin = api.officials["admin"]
        real = api.side.token(admin.token_id)
        assert real is not None
        before = api.size()
        for index in (10_000, real.issued_index, 0):
            forged = new_token()
            _sql(
                store,
                "INSERT INTO ledger_tokens (token_id, salt, hash, principal, org, role, idx) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                str(forged.token_id),
                forged.salt,
                forged.hash,
                admin.principal,
                admin.org,
                "admin",
                index,
            )
            who = Official("admin", admin.principal, admin.org, forged.text, str(forged.token_id))
            body = unauthorised(
                api.post("/tokens", who, {"principal": "x.ghost", "org": "", "role": "admin"})
            )
            assert body["title"] == "Token does not match the log", body
            assert str(index) in body["detail"]
        assert api.size() == before


def test_a_deleted_revocation_row_does_not_revive_a_token(store: Store) -> None:
    """The revocation entry in the log revokes the token, whatever its table says."""
    with open_api(store) as api:
        admin, recorder = api.officials["admin"], api.officials["recorder"]
        revoked = api.post(f"/tokens/{recorder.token_id}/revocation", admin, {"reason": "left"})
        index = check_receipt(api, revoked, admin)["index"]
        assert (
            _sql(
                store, "DELETE FROM ledger_token_revocations WHERE token_id = ?", recorder.token_id
            )
            == 1
        )
        before = api.size()
        body = unauthorised(api.post("/processes", recorder, {"title": "Revived?"}))
        assert body["title"] == "Token revoked"
        assert str(index) in body["detail"]
        assert api.size() == before
        stored = api.side.token(recorder.token_id)
        assert stored is not None
        assert stored.revoked_index == index


# idempotency -----------------------------------------------------------------------------------


def test_an_edited_idempotency_row_replays_no_other_entry(store: Store) -> None:
    """An idempotency row pointed at another entry (another official's; the same official's
    write on another record) answers 409, never that entry's receipt, and records nothing."""
    with open_api(store) as api:
        recorder, admin = api.officials["recorder"], api.officials["admin"]
        mine = api.post(
            "/processes", recorder, {"title": "Mine"}, headers={"Idempotency-Key": "k1"}
        )
        pid = check_receipt(api, mine, recorder, created="/processes")["subject"]["id"]
        theirs = check_receipt(
            api, api.post("/processes", admin, {"title": "Theirs"}), admin, created="/processes"
        )
        strand = api.post(
            f"/processes/{pid}/strands",
            recorder,
            {"strand_id": "s1", "title": "S"},
            headers={"Idempotency-Key": "k2"},
        )
        other = check_receipt(api, strand, recorder)
        before = api.size()
        for target in (theirs, other):
            _sql(
                store,
                "UPDATE ledger_idempotency SET idx = ?, tree_size = ? WHERE key = 'k1'",
                target["index"],
                target["inclusion_proof"]["tree_size"],
            )
            retry = api.post(
                "/processes", recorder, {"title": "Mine"}, headers={"Idempotency-Key": "k1"}
            )
            body = problem(retry, 409)
            assert body["title"] == "Idempotency record does not match"
            assert body["first_index"] == target["index"]
            assert target["entry"] not in retry.text
            assert api.size() == before
        # The row put back: the retry is a replay again.
        _sql(
            store,
            "UPDATE ledger_idempotency SET idx = ?, tree_size = ? WHERE key = 'k1'",
            mine.json()["index"],
            mine.json()["inclusion_proof"]["tree_size"],
        )
        again = api.post(
            "/processes", recorder, {"title": "Mine"}, headers={"Idempotency-Key": "k1"}
        )
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["index"] == mine.json()["index"]


# revocation and writes in flight ---------------------------------------------------------------


def _race_once(api: Any, store: Store, threads: int = 8) -> tuple[int, int, int]:
    """Writers hammer with a fresh token while an admin revokes it; (entries written by the
    token, writes refused, the revocation's index). Asserts none lands after the revocation."""
    principal = f"racer-{uuid.uuid4().hex[:8]}"
    racer = api.official("recorder", principal)
    admin = api.officials["admin"]
    stop = threading.Event()
    answers: list[int] = []
    lock = threading.Lock()

    def write() -> None:
        while not stop.is_set():
            try:
                status = api.post("/processes", racer, {"title": "In flight"}).status_code
            except Exception as exc:  # kept, so the thread always ends
                status = -1
                errors.append(exc)
            with lock:
                answers.append(status)
            if status != 201:
                return

    errors: list[BaseException] = []
    workers = [threading.Thread(target=write) for _ in range(threads)]
    for worker in workers:
        worker.start()
    time.sleep(0.3)
    revoked = api.post(f"/tokens/{racer.token_id}/revocation", admin, {"reason": "race"})
    # Not check_receipt: in a group commit the revocation need not be its tree's last entry.
    assert revoked.status_code == 200, revoked.text
    revocation = revoked.json()["index"]
    time.sleep(0.2)
    stop.set()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(worker.is_alive() for worker in workers)
    assert not errors, errors
    by_racer = [e["index"] for e in _entries(store) if e["actor"]["id"] == principal]
    assert by_racer, "the token wrote nothing before its revocation"
    late = [index for index in by_racer if index > revocation]
    assert not late, f"entries {late} by the token follow its revocation at {revocation}"
    assert set(answers) <= {201, 401}, answers
    return len(by_racer), answers.count(401), revocation


def test_no_write_by_a_token_lands_after_its_revocation(store: Store) -> None:
    """Writes already authenticated when the token's revocation commits are refused (401,
    nothing written) under the write lock; each round is a fresh token, eight writers."""
    with open_api(store, write_rate=0.0) as api:
        for _ in range(6):
            _race_once(api, store)


# documents -------------------------------------------------------------------------------------


def _upload(api: Any, who: Official, content: bytes, media_type: str = "text/plain") -> Any:
    return api.post("/documents", who, content=content, headers={"Content-Type": media_type})


def _publish(api: Any, content: bytes) -> tuple[str, str]:
    """(publication id, SHA-256) of a publication of ``content``, uploaded over HTTP."""
    sha = _upload(api, api.officials["recorder"], content).json()["sha256"]
    pid = api.ledger.start_process(title="P", actor=SETUP).subject_id
    publication = api.ledger.publish(
        process_id=pid,
        pub_kind="report",
        title="Report",
        sha256=sha,
        size=len(content),
        media_type="text/plain",
        actor=SETUP,
    )
    path = f"/publications/{publication.subject_id}"
    poll(api, path, lambda r: r.status_code == 200)  # the read models have it
    return publication.subject_id, sha


def test_swapped_document_bytes_are_never_served_under_their_hash(store: Store) -> None:
    """Bytes swapped in the documents table before a process first serves them: 500
    "Stored document damaged", never the bytes, never with the recorded ETag or immutable
    caching. Bytes checked once are served from the checked copy: a later swap changes
    nothing served."""
    with open_api(store) as api:

        def other_than_500(response: httpx.Response) -> None:  # 500s are expected here
            if response.status_code < 500:
                api.statuses.append(response.status_code)

        api.client.event_hooks = {"request": [], "response": [other_than_500]}
        recorder = api.officials["recorder"]
        forged = b"a forged report, same length!!\n"
        swapped, sha = _publish(api, b"the report as it was published\n")
        assert (
            _sql(store, "UPDATE ledger_documents SET content = ? WHERE sha256 = ?", forged, sha)
            == 1
        )
        paths = [(f"/publications/{swapped}/document", None), (f"/documents/{sha}", recorder)]
        for path, who in paths:
            answer = api.client.get(path, headers=who.auth if who else {})
            body = problem(answer, 500)
            assert body["title"] == "Stored document damaged"
            assert forged not in answer.content
            assert answer.headers.get("etag") != f'"{sha}"'
            assert "immutable" not in answer.headers.get("cache-control", "")

        checked, first = _publish(api, b"another report, served once first\n")
        assert api.client.get(f"/publications/{checked}/document").status_code == 200
        _sql(store, "UPDATE ledger_documents SET content = ? WHERE sha256 = ?", forged, first)
        again = api.client.get(f"/publications/{checked}/document")
        assert again.status_code == 200
        assert again.content == b"another report, served once first\n"


# embargo secrecy -------------------------------------------------------------------------------


def _embargo(api: Any, content: bytes, uploader: Official) -> tuple[str, str]:
    """(publication id, SHA-256): ``uploader`` uploads ``content``, a publisher embargoes it."""
    sha = _upload(api, uploader, content).json()["sha256"]
    pid = api.ledger.start_process(title="P", actor=SETUP).subject_id
    answer = api.post(
        "/publications/embargoed",
        api.officials["publisher"],
        {
            "process_id": pid,
            "pub_kind": "report",
            "title": "Budget",
            "sha256": sha,
            "release_at": "2020-01-01T00:00:00Z",
        },
    )
    return check_receipt(api, answer, api.officials["publisher"], created="/publications")[
        "subject"
    ]["id"], sha


def _other_org_recorder(api: Any, name: str) -> Official:
    org = api.ledger.register_organisation(name=name, org_kind="civil_society", actor=SETUP)
    receipt, token = api.ledger.issue_token(
        principal=f"{name.lower().replace(' ', '-')}-clerk",
        org=org.subject_id,
        role="recorder",
        actor=SETUP,
    )
    return Official(
        "recorder",
        f"{name.lower().replace(' ', '-')}-clerk",
        org.subject_id,
        token,
        receipt.subject_id,
    )


def test_uploading_answers_the_same_whether_or_not_the_bytes_are_stored(store: Store) -> None:
    """A recorder uploading a guess of an embargoed document learns nothing: the answer is
    the one for bytes never stored (status, body, headers)."""
    with open_api(store) as api:
        secret = b"the budget, before it is announced\n"
        _embargo(api, secret, api.officials["publisher"])
        guesser = _other_org_recorder(api, "Open Data Watch")
        fresh = b"the budget, a wrong guess of it\n"
        answers = [_upload(api, guesser, content, "text/markdown") for content in (secret, fresh)]
        bodies = [a.json() for a in answers]
        for answer, body, content in zip(answers, bodies, (secret, fresh), strict=True):
            assert answer.status_code == 201
            sha = hashlib.sha256(content).hexdigest()
            assert body == {
                "sha256": sha,
                "size": len(content),
                "media_type": "text/markdown",
                "created": True,
            }
            assert answer.headers["location"] == f"/documents/{sha}"
        assert sorted(answers[0].headers) == sorted(answers[1].headers)
        # Their second upload of each answers alike too (each now "already stored").
        again = [_upload(api, guesser, c, "text/markdown").json() for c in (secret, fresh)]
        assert [a["created"] for a in again] == [False, False]
        assert [a["media_type"] for a in again] == ["text/markdown", "text/markdown"]


class _Kept(logging.Handler):
    """Keeps the records of the logger it is added to (the ledger's loggers do not
    propagate to the root logger, where pytest's caplog listens)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_an_embargoed_document_is_readable_before_release_only_by_those_allowed(
    store: Store,
) -> None:
    """Before release: its uploader, publishers, admins and officials of an organisation
    granted pre-release access (each read logged); anyone else gets the answer for a
    document that is not stored. After the release, every official."""
    with open_api(store) as api:
        uploader = api.officials["recorder"]
        pid, sha = _embargo(api, b"the embargoed statistics\n", uploader)
        outsider = _other_org_recorder(api, "Civic Tech Circle")
        granted = _other_org_recorder(api, "Statistics Board")
        missing = "0" * 64

        def read(who: Official, digest: str = sha) -> httpx.Response:
            return api.client.get(f"/documents/{digest}", headers=who.auth)

        def refused_like_missing(who: Official) -> None:
            denied, absent = read(who), read(who, missing)
            assert denied.status_code == absent.status_code == 404
            assert denied.json()["title"] == absent.json()["title"]
            assert denied.json()["detail"] == absent.json()["detail"].replace(missing, sha)

        kept = _Kept()
        logging.getLogger("ledger.embargo").addHandler(kept)
        refused_like_missing(outsider)
        refused_like_missing(granted)
        for who in (uploader, api.officials["publisher"], api.officials["admin"]):
            answer = read(who)
            assert answer.status_code == 200, (who.role, answer.text)
            assert answer.content == b"the embargoed statistics\n"
            assert "no-store" in answer.headers["cache-control"]
        grant = api.post(
            f"/publications/{pid}/prerelease-access",
            api.officials["publisher"],
            {
                "organisation_id": granted.org,
                "authorised_by": "Chief Statistician",
                "reason": "to prepare the briefing",
            },
        )
        check_receipt(api, grant, api.officials["publisher"])
        assert read(granted).status_code == 200
        refused_like_missing(outsider)
        logged = list(kept.lines)
        assert len(logged) == 4, logged
        for who in (uploader, api.officials["publisher"], api.officials["admin"], granted):
            assert any(who.principal in line and pid in line for line in logged), who
        # The public route stays closed until the release; then everyone may read it.
        poll(api, f"/publications/{pid}/document", lambda r: r.status_code == 403)
        released = api.post(
            f"/publications/{pid}/release", api.officials["publisher"], {"sha256": sha}
        )
        check_receipt(api, released, api.officials["publisher"])
        kept.lines.clear()
        assert read(outsider).status_code == 200
        assert not kept.lines
        logging.getLogger("ledger.embargo").removeHandler(kept)


# backups ---------------------------------------------------------------------------------------


def test_a_backup_is_readable_by_its_owner_only(store: Store, tmp_path: Path) -> None:
    """Mode 0600 even under umask 022, and over an older world-readable file; a backup made
    before the uploads table existed still restores."""
    with open_api(store) as api:
        _embargo(api, b"secret annex\n", api.officials["recorder"])
    out = tmp_path / "ledger.backup.gz"
    out.write_bytes(b"an old backup")
    out.chmod(0o644)
    old = os.umask(0o022)
    try:
        write_backup(store.settings, out)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not list(tmp_path.glob("*.partial"))

    # The same backup as an older version wrote it: no uploads table.
    lines = gzip.decompress(out.read_bytes()).splitlines(keepends=True)
    kept, skipping = [], False
    for line in lines[:-1]:
        value = json.loads(line)
        if isinstance(value, dict) and "table" in value:
            skipping = value["table"] in ("ledger_document_uploads", "ledger_document_upload_macs")
            if skipping:
                assert value["rows"] == 1
        if not skipping:
            kept.append(line)
    digest = hashlib.sha256(b"".join(kept)).hexdigest()
    older = tmp_path / "older.backup.gz"
    older.write_bytes(
        gzip.compress(b"".join(kept) + json.dumps({"end": True, "sha256": digest}).encode() + b"\n")
    )
    for target in make_store(store.kind, tmp_path / "restored"):
        summary = restore(target.settings, older)
        assert summary.size > 0
        conn = target.connect()
        try:
            (uploads,) = conn.execute("SELECT count(*) FROM ledger_document_uploads").fetchone()
            (documents,) = conn.execute("SELECT count(*) FROM ledger_documents").fetchone()
        finally:
            conn.close()
        assert (uploads, documents) == (0, 1)


def test_ledger_migrate_gives_an_older_store_the_uploads_table(store: Store) -> None:
    """A store made before uploaders were kept: `ledger migrate` adds the table (nothing
    else changes), and uploads then remember their uploader."""
    app = LedgerApplication(store.settings)
    try:
        app.start_process(title="Before the upgrade", actor=SETUP)
    finally:
        app.close()
    _sql(store, "DROP TABLE ledger_document_uploads")
    before = _entries(store)
    done = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "migrate"],
        env=store.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _entries(store) == before
    side = SideStore(store.settings)
    try:
        side.put_document(
            hashlib.sha256(b"annex\n").hexdigest(),
            "text/plain",
            b"annex\n",
            uploader=("a.clerk", "", str(uuid.uuid4())),
        )
        assert side.upload_media_type(hashlib.sha256(b"annex\n").hexdigest(), "a.clerk", "")
    finally:
        side.close()
