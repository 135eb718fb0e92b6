"""Three `ledger serve` replicas on one PostgreSQL schema, concurrent writers on all three.

The replicas share one signing key file, as real replicas do. Client threads on every
replica write a mix of commands, several of them on the same proposal and the same process
(version conflicts across processes: a 409 is answered by deciding again). Afterwards the
log must be one dense chain that ``ledger verify`` and a fresh ``ledger audit`` accept, hold
exactly the acknowledged writes, and every receipt must check, as its holder would check
it, against entries, proofs and the final checkpoint fetched from the *other* replicas.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from ledger.audit import (
    CompactRange,
    HttpSource,
    check_entry,
    hash_leaf,
    parse_vkey,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from ledger.keys import load_signer
from tests.api.test_log_api import free_port
from tests.conftest import Store, make_store

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

SERVERS = 3
THREADS_PER_SERVER = 4
WRITES_PER_THREAD = 25
HTTP_TIMEOUT = 30.0  # seconds, for any one request
DEADLINE = 120.0  # seconds, for all the writers together
MAX_ATTEMPTS = 60  # decisions per write (409 and 503 answers are decided again)
IF_MATCH_TRIES = 8  # 409s before a write with If-Match lets the server decide on the latest


@pytest.fixture
def pg_store(tmp_path: Path) -> Iterator[Store]:
    """An empty scratch schema on PostgreSQL (skipped, or failed under CI, without one)."""
    yield from make_store("postgresql", tmp_path)


def cli(store: Store, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``ledger <args>`` on the store; fail the test on a non-zero exit."""
    done = subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args],
        cwd=ROOT,
        env=store.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"ledger {args[0]}: {done.stderr}{done.stdout}"
    return done


class Replica:
    """One `ledger serve --workers 1` process on its own loopback port; output to a file."""

    def __init__(self, store: Store, name: str, log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        env = store.env()
        # Few threads and pooled connections: three replicas stay well inside
        # max_connections; a write budget no test client reaches.
        env.update(
            LEDGER_API_THREADS="3",
            LEDGER_PG_POOL_SIZE="2",
            LEDGER_WRITE_BURST="100000",
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                *("-m", "ledger.cli", "serve"),
                *("--host", "127.0.0.1", "--port", str(self.port)),
                *("--workers", "1", "--log-level", "warning"),
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_ready(self, deadline: float) -> None:
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.output()}"
                )
            try:
                status, _, _ = request(self.base, "GET", "/readyz", timeout=2)
                if status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready in time:\n{self.output()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def request(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = HTTP_TIMEOUT,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh loopback connection."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers={**all_headers, **(headers or {})})
        response = conn.getresponse()
        return (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read(),
        )
    finally:
        conn.close()


@dataclass
class Acked:
    """An acknowledged write: which replica answered, and its receipt."""

    server: int
    write: str  # the logical write it acknowledges (unique per write)
    receipt: dict[str, Any]
    replayed: bool


@dataclass
class Outcome:
    """What the writers saw, shared between their threads."""

    acked: list[Acked] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    conflicts: int = 0
    most_conflicts: int = 0  # by any one write
    transport_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Writer:
    """A keep-alive HTTP client for one replica, writing with a token and idempotency keys.

    Every decision (every attempt after a 409, 429 or 503) gets a new Idempotency-Key; a
    transport failure (reset, time-out) resends the same request with the same key, so a
    write that committed before its answer was lost is acknowledged once, never twice.
    """

    def __init__(self, server: int, base: str, token: str, outcome: Outcome) -> None:
        self.server = server
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.token = token
        self.outcome = outcome
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _send(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        for transport_attempt in range(5):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=HTTP_TIMEOUT)
            try:
                self.conn.request(
                    "POST",
                    path,
                    body=json.dumps(body).encode(),
                    headers={
                        "Content-Type": "application/json",
                        "Authorization": f"Bearer {self.token}",
                        **headers,
                    },
                )
                response = self.conn.getresponse()
                raw = response.read()
                answer = {k.lower(): v for k, v in response.getheaders()}
                if answer.get("connection", "").lower() == "close":
                    self.close()
                try:
                    document = json.loads(raw)
                except ValueError:
                    document = {"not_json": raw[:500].decode(errors="replace")}
                return response.status, answer, document
            except (OSError, http.client.HTTPException):
                self.close()
                with self.outcome.lock:
                    self.outcome.transport_errors += 1
                time.sleep(0.2 * (transport_attempt + 1))
        raise AssertionError(f"POST {path}: no answer after 5 tries")

    def write(
        self,
        write: str,
        path: str,
        body: dict[str, Any],
        *,
        if_match: Any = None,
    ) -> dict[str, Any]:
        """Write until acknowledged; ``if_match`` is a callable giving the version to act on
        (it is told the version a 409 names). Returns the receipt."""
        version = None if if_match is None else if_match(None)
        conflicts = 0
        for _ in range(MAX_ATTEMPTS):
            headers = {"Idempotency-Key": f"{write}/{uuid.uuid4().hex}"}
            if version is not None:
                headers["If-Match"] = f'"{version}"'
            status, answer, document = self._send(path, body, headers)
            if status in (200, 201):
                with self.outcome.lock:
                    self.outcome.acked.append(
                        Acked(
                            self.server,
                            write,
                            document,
                            answer.get("idempotent-replayed") == "true",
                        )
                    )
                    self.outcome.most_conflicts = max(self.outcome.most_conflicts, conflicts)
                if if_match is not None:
                    if_match(int(answer["etag"].strip('"')))
                return dict(document)
            if status == 409:
                conflicts += 1
                with self.outcome.lock:
                    self.outcome.conflicts += 1
                named = document.get("current_version")
                if if_match is not None and conflicts >= IF_MATCH_TRIES:
                    # Writers without If-Match (re-decided by the server) keep winning the
                    # record: stop naming a version and let the server decide again too.
                    version = None
                elif if_match is not None and named is not None:
                    # Stale If-Match: act at once on the version the answer names.
                    version = if_match(named)
                    continue
                elif if_match is not None:
                    version = if_match(None)
                # A race lost at commit: back off, with jitter, or the writers that wait
                # least starve the rest.
                time.sleep(random.uniform(0, min(0.5, 0.005 * 2 ** min(conflicts, 10))))
                continue
            if status in (429, 503):
                time.sleep(min(float(answer.get("retry-after", "1")), 2.0))
                continue
            raise AssertionError(f"{write}: POST {path} answered {status}: {document}")
        raise AssertionError(f"{write}: POST {path} still conflicting after {MAX_ATTEMPTS}")


@dataclass
class Shared:
    """The records every writer contends for."""

    process_id: str
    strand_id: str
    org_id: str
    proposal_id: str
    amendment_id: str


def seed(writer: Writer) -> Shared:
    """A process with a strand, an organisation and a proposal with one amendment."""
    process = writer.write("seed-process", "/processes", {"title": "Shared process"})
    process_id = process["subject"]["id"]
    writer.write(
        "seed-strand",
        f"/processes/{process_id}/strands",
        {"strand_id": "research", "title": "Research"},
    )
    org = writer.write(
        "seed-org", "/organisations", {"name": "Cabinet Office", "org_kind": "department"}
    )
    org_id = org["subject"]["id"]
    proposal = writer.write(
        "seed-proposal",
        "/proposals",
        {
            "process_id": process_id,
            "strand_id": "research",
            "title": "Research access",
            "sections": [
                {"id": "s1", "heading": "Purpose", "text": "Allow access."},
                {"id": "s2", "heading": "Safeguards", "text": "Accredit."},
            ],
            "sponsor_org": org_id,
        },
    )
    proposal_id = proposal["subject"]["id"]
    amendment = writer.write(
        "seed-amendment", f"/proposals/{proposal_id}/amendments", amendment_body(org_id, "seed")
    )
    assert json.loads(amendment["entry"])["data"]["amendment_id"] == "A1"
    return Shared(process_id, "research", org_id, proposal_id, "A1")


def amendment_body(org_id: str, label: str) -> dict[str, Any]:
    return {
        "base_version": 1,
        "changes": [{"op": "replace", "section_id": "s2", "text": f"Accredit, {label}."}],
        "rationale": "tighter",
        "proposer_org": org_id,
    }


def run_writer(writer: Writer, shared: Shared, name: str, stop_at: float) -> None:
    """WRITES_PER_THREAD commands: organisations, and contended amendments, decisions and
    strands on the shared proposal and process, some with If-Match."""
    known: dict[str, int | None] = {"version": None}

    def proposal_version(named: int | None) -> int | None:
        # The version to act on: what the last receipt or 409 said (first time: a guess
        # that is almost surely stale, so the first answer is a 409 naming the version).
        if named is not None:
            known["version"] = named
        return known["version"] or 1

    try:
        for n in range(WRITES_PER_THREAD):
            if time.monotonic() > stop_at:
                raise AssertionError(f"{name}: out of time after {n} writes")
            write = f"{name}-{n}"
            kind = n % 4
            if kind == 0:
                writer.write(
                    write, "/organisations", {"name": f"Org {write}", "org_kind": "public_body"}
                )
            elif kind == 1:
                writer.write(
                    write,
                    f"/proposals/{shared.proposal_id}/amendments",
                    amendment_body(shared.org_id, write),
                    if_match=proposal_version,
                )
            elif kind == 2:
                writer.write(
                    write,
                    f"/proposals/{shared.proposal_id}/amendments/{shared.amendment_id}/decision",
                    {"decision": "no_decision", "consensus": "still_to_discuss", "note": write},
                )
            else:
                writer.write(
                    write,
                    f"/processes/{shared.process_id}/strands",
                    {"strand_id": write, "title": f"Strand {write}"},
                )
    except BaseException as exc:
        with writer.outcome.lock:
            writer.outcome.failures.append(f"{name}: {type(exc).__name__}: {exc}")
    finally:
        writer.close()


def test_three_replicas_one_dense_chain_every_receipt_verifies(
    pg_store: Store, tmp_path: Path
) -> None:
    store = pg_store
    started = time.monotonic()
    cli(store, "migrate")
    signer = load_signer(store.settings)
    assert signer is not None
    vkey = signer.verifier_key()
    log_key = parse_vkey(vkey)
    # One recorder token per replica's writers, issued with the CLI (each is one entry).
    tokens = [
        cli(
            store,
            *("tokens", "create", "--name", f"writer-{s}", "--role", "recorder"),
            *("--by", "test-admin"),
        ).stdout.strip()
        for s in range(SERVERS)
    ]
    initial = len(tokens)

    replicas: list[Replica] = []
    try:
        for s in range(SERVERS):
            replicas.append(Replica(store, f"replica-{s}", tmp_path))
        ready_by = time.monotonic() + 60
        for replica in replicas:
            replica.wait_ready(ready_by)
        for replica in replicas:
            assert request(replica.base, "GET", "/public-key")[2].decode().strip() == vkey

        outcome = Outcome()
        seeder = Writer(0, replicas[0].base, tokens[0], outcome)
        shared = seed(seeder)
        seeder.close()

        stop_at = time.monotonic() + DEADLINE
        threads = [
            threading.Thread(
                target=run_writer,
                args=(
                    Writer(s, replicas[s].base, tokens[s], outcome),
                    shared,
                    f"s{s}t{t}",
                    stop_at,
                ),
                name=f"writer-s{s}t{t}",
                daemon=True,
            )
            for s in range(SERVERS)
            for t in range(THREADS_PER_SERVER)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(1.0, stop_at - time.monotonic() + HTTP_TIMEOUT))
        assert not any(t.is_alive() for t in threads), "writers did not finish in time"
        logs = "\n".join(f"--- {r.name}\n{r.output()}" for r in replicas)
        assert not outcome.failures, "\n".join(outcome.failures) + "\n" + logs
        for replica in replicas:
            assert replica.proc.poll() is None, f"{replica.name} died:\n{replica.output()}"
        wrote = time.monotonic()

        check_log(store, replicas, outcome, initial, log_key, vkey, tmp_path)
        print(
            f"\n{len(outcome.acked)} acknowledged writes ({outcome.conflicts} conflicts "
            f"decided again, at most {outcome.most_conflicts} for one write; "
            f"{outcome.transport_errors} transport retries); writers "
            f"{wrote - started:.1f} s from start, checks {time.monotonic() - wrote:.1f} s"
        )
    finally:
        for replica in replicas:
            replica.stop()


def check_log(
    store: Store,
    replicas: list[Replica],
    outcome: Outcome,
    initial: int,
    log_key: Any,
    vkey: str,
    tmp_path: Path,
) -> None:
    # Every logical write was acknowledged; replays of one write name one entry.
    by_write: dict[str, set[int]] = {}
    for acked in outcome.acked:
        by_write.setdefault(acked.write, set()).add(int(acked.receipt["index"]))
    expected_writes = 5 + SERVERS * THREADS_PER_SERVER * WRITES_PER_THREAD
    assert len(by_write) == expected_writes
    assert all(len(indexes) == 1 for indexes in by_write.values()), by_write
    acked_indexes = sorted(i for indexes in by_write.values() for i in indexes)
    assert len(set(acked_indexes)) == len(acked_indexes), "two writes acknowledged one entry"

    # Every replica publishes the same final checkpoint, signed by the shared key.
    notes = {request(r.base, "GET", "/checkpoint")[2] for r in replicas}
    assert len(notes) == 1, notes
    (final_note,) = notes
    final = verify_checkpoint(final_note, log_key)
    n = final.size
    # Nothing lost, nothing extra: the tokens and exactly the acknowledged writes.
    assert n == initial + expected_writes
    assert acked_indexes == list(range(initial, n))

    # Dense in the store itself: indexes 0..n-1, once each, and the head at n.
    with store.connect() as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT idx), min(idx), max(idx) FROM ledger_entries"
        ).fetchone()
        assert tuple(row) == (n, n, 0, n - 1)
        assert conn.execute("SELECT size FROM ledger_head").fetchone()[0] == n

    # The entries, from every replica: identical, a chain, and the final root.
    served = [list(HttpSource(r.base, timeout=HTTP_TIMEOUT).entries(0, n)) for r in replicas]
    assert served[1] == served[0]
    assert served[2] == served[0]
    entries = served[0]
    prev = b"\x00" * 32
    tree = CompactRange()
    for index, entry in enumerate(entries):
        prev = check_entry(entry, index, prev)
        tree.append(hash_leaf(entry))
    assert tree.root() == final.root
    # The entries no receipt acknowledges are the CLI's token issues, before any write.
    assert [json.loads(e)["type"] for e in entries[:initial]] == ["access_token.issued"] * initial

    # Every receipt, as its holder would check it, against the other replicas.
    consistency: dict[int, list[bytes]] = {}
    published: dict[int, str] = {}
    for acked in outcome.acked:
        receipt, s = acked.receipt, acked.server
        other, third = replicas[(s + 1) % SERVERS], replicas[(s + 2) % SERVERS]
        index = int(receipt["index"])
        entry = receipt["entry"].encode()
        assert entry == served[(s + 1) % SERVERS][index]
        assert hashlib.sha256(entry).hexdigest() == receipt["entry_hash"]
        fields = json.loads(entry)
        assert fields["index"] == index
        assert fields["actor"]["id"] == f"writer-{s}"
        checkpoint = verify_checkpoint(receipt["checkpoint"], log_key)
        assert checkpoint.origin == final.origin
        size = checkpoint.size
        assert receipt["inclusion_proof"]["tree_size"] == size
        assert index < size <= n
        verify_inclusion(
            hash_leaf(entry),
            index,
            size,
            [base64.b64decode(h) for h in receipt["inclusion_proof"]["hashes"]],
            checkpoint.root,
        )
        if size not in consistency:
            consistency[size] = HttpSource(other.base).consistency_proof(size, n)
            status, _, note = request(third.base, "GET", f"/checkpoint/{size}")
            assert status == 200, note
            published[size] = note.decode()
        verify_consistency(size, n, checkpoint.root, final.root, consistency[size])
        # The checkpoint in the receipt is the one the log published for its size.
        assert receipt["checkpoint"] == published[size]

    # The operator's check and a stranger's audit, from nothing, both pass.
    verified = json.loads(cli(store, "verify", "--json", "--key", vkey, "--jobs", "1").stdout)
    assert verified["ok"] is True, verified
    assert verified["entries"] == n
    assert verified["merkle_root"] == final.root.hex()
    audited = subprocess.run(
        [
            sys.executable,
            *("-m", "ledger.cli", "audit", replicas[1].base, "--key", vkey),
            *("--state", str(tmp_path / "fresh-audit.state")),
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert audited.returncode == 0, audited.stderr
    assert f"grew from 0 to {n} entries" in audited.stdout, audited.stdout

    # One replica's read-model follower (a lock shared through the database) applies the
    # log for all three: every replica becomes ready at the final size with no lag.
    deadline = time.monotonic() + 30
    for replica in replicas:
        while True:
            status, _, body = request(replica.base, "GET", "/readyz", timeout=10)
            ready = json.loads(body)
            if status == 200 and ready["log_size"] == n and ready["lag"] == 0:
                break
            assert time.monotonic() < deadline, (replica.name, status, ready)
            time.sleep(0.2)
