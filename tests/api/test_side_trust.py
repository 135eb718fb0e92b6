"""What the running service no longer takes on trust from the tables beside the log.

Each attack is made the way a database insider would make it: with SQL on the store, on
SQLite and on PostgreSQL. The service must refuse (a clear problem) and record nothing.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import httpx

from ledger.tokens import new_token
from tests.api.test_writes import (
    Official,
    check_receipt,
    open_api,
    problem,
    unauthorised,
)
from tests.conftest import Store


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
        assert _sql(store, "UPDATE ledger_tokens SET role = 'admin' WHERE token_id = ?",
                    recorder.token_id) == 1  # fmt: skip
        before = api.size()
        raised = Official("admin", recorder.principal, recorder.org, recorder.token,
                          recorder.token_id)  # fmt: skip
        body = unauthorised(
            api.post("/tokens", raised, {"principal": "x.ghost", "org": "", "role": "admin"})
        )
        assert body["title"] == "Token does not match the log"
        assert "role" in body["detail"]
        unauthorised(api.post("/processes", raised, {"title": "As an admin"}))
        assert api.size() == before
        # The holder edited: refused just the same.
        _sql(store, "UPDATE ledger_tokens SET role = 'recorder', principal = 'x.someone-else' "
                    "WHERE token_id = ?", recorder.token_id)  # fmt: skip
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
                str(forged.token_id), forged.salt, forged.hash, admin.principal, admin.org,
                "admin", index,
            )  # fmt: skip
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
        assert _sql(store, "DELETE FROM ledger_token_revocations WHERE token_id = ?",
                    recorder.token_id) == 1  # fmt: skip
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
                target["index"], target["inclusion_proof"]["tree_size"],
            )  # fmt: skip
            retry = api.post(
                "/processes", recorder, {"title": "Mine"}, headers={"Idempotency-Key": "k1"}
            )
            body = problem(retry, 409)
            assert body["title"] == "Idempotency record does not match"
            assert body["first_index"] == target["index"]
            assert target["entry"] not in retry.text
            assert api.size() == before
        # The row put back: the retry is a replay again.
        _sql(store, "UPDATE ledger_idempotency SET idx = ?, tree_size = ? WHERE key = 'k1'",
             mine.json()["index"], mine.json()["inclusion_proof"]["tree_size"])  # fmt: skip
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
            response: httpx.Response = api.post("/processes", racer, {"title": "In flight"})
            with lock:
                answers.append(response.status_code)
            if response.status_code == 401:
                return

    workers = [threading.Thread(target=write) for _ in range(threads)]
    for worker in workers:
        worker.start()
    time.sleep(0.3)
    revoked = api.post(f"/tokens/{racer.token_id}/revocation", admin, {"reason": "race"})
    revocation = check_receipt(api, revoked, admin)["index"]
    time.sleep(0.2)
    stop.set()
    for worker in workers:
        worker.join(timeout=60)
    assert set(answers) <= {201, 401}, answers
    by_racer = [e["index"] for e in _entries(store) if e["actor"]["id"] == principal]
    assert by_racer, "the token wrote nothing before its revocation"
    late = [index for index in by_racer if index > revocation]
    assert not late, f"entries {late} by the token follow its revocation at {revocation}"
    return len(by_racer), answers.count(401), revocation


def test_no_write_by_a_token_lands_after_its_revocation(store: Store) -> None:
    """Writes already authenticated when the token's revocation commits are refused (401,
    nothing written) under the write lock; each round is a fresh token, eight writers."""
    with open_api(store, write_rate=0.0) as api:
        for _ in range(6):
            _race_once(api, store)
