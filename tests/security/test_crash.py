"""Crashes and faults under load (threat model, section E), on a real `ledger serve`.

* ``kill -9`` of the API server while client threads write (SQLite and PostgreSQL): every
  acknowledged receipt's entry is in the log at its index, byte for byte, its inclusion
  proof verifies against its checkpoint and that checkpoint is consistent with the final
  one; nothing is half-written (``ledger verify``, a dense log, no event row without its
  entry); the restarted server continues the same chain.
* PostgreSQL stopped and started again under write and read load, on a private cluster
  (never the shared test server): while it is down clients get 503 problem+json with
  Retry-After, never a 500 or a hang; nothing acknowledged is lost; the same server process
  recovers by itself once the database is back.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
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
from ledger.keys import create_key_file, load_signer
from ledger.settings import Settings
from tests.api.test_log_api import free_port
from tests.conftest import LOG_NAME, Store
from tests.security import pgcluster

ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI", "").lower() == "true"

HTTP_TIMEOUT = 15.0  # seconds: any one request answered (or refused) within this, or a hang
PROBLEM_JSON = "application/problem+json"
ID_IN_PATH = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|(?<==)\d+|(?<=/)\d+")
WRITE_LABEL = re.compile(r"\bw[a-z0-9]*-t\d+-\d+-[0-9a-f]{8}\b")  # see writer()


# A `ledger serve` process ------------------------------------------------------------------


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run ``ledger <args>``; fail the test on a non-zero exit; return stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"ledger {' '.join(args)}: {done.stderr}{done.stdout}"
    return done.stdout


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
        sent = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers={**sent, **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


class LedgerServer:
    """`ledger serve` on loopback, output to a file; ``kill9`` to crash it."""

    def __init__(
        self,
        env: dict[str, str],
        log_dir: Path,
        name: str,
        *,
        port: int | None = None,
        workers: int = 1,
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                *("-m", "ledger.cli", "serve"),
                *("--host", "127.0.0.1", "--port", str(self.port)),
                *("--workers", str(workers), "--log-level", "warning"),
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-6000:]

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.output()}")
            try:
                if request(self.base, "GET", "/readyz", timeout=5)[0] == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready in {timeout} s:\n{self.output()}")
            time.sleep(0.1)

    def pids(self) -> list[int]:
        """The server process and its descendants (uvicorn's workers)."""
        found = [self.proc.pid]
        for pid in found:
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found += [int(c) for c in children]
        return found

    def kill9(self) -> None:
        for pid in reversed(self.pids()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                for pid in reversed(self.pids()):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if not self._log.closed:
            self._log.close()


# Load: writer threads that keep every acknowledged receipt ---------------------------------


@dataclass
class Acked:
    write: str  # the logical write (unique), also written into the entry
    receipt: dict[str, Any]
    at: float  # time.monotonic() when acknowledged


@dataclass
class Load:
    """What the clients saw, shared between their threads."""

    base: str
    token: str
    stop: threading.Event = field(default_factory=threading.Event)
    acked: list[Acked] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)  # answers a server must never give
    transport_errors: int = 0
    slowest: float = 0.0
    reads: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # "status METHOD path": count
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, status: int, headers: dict[str, str], body: bytes, took: float, what: str):
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.slowest = max(self.slowest, took)
            if not 200 <= status < 300:
                key = f"{status} {ID_IN_PATH.sub('{id}', what)}"
                self.refused[key] = self.refused.get(key, 0) + 1
            if status >= 500 and status != 503:
                self.bad.append(f"{what}: {status} {body[:300]!r}")
            elif status == 503:
                if not headers.get("content-type", "").startswith(PROBLEM_JSON):
                    self.bad.append(f"{what}: 503 not problem+json: {headers}")
                elif "retry-after" not in headers:
                    self.bad.append(f"{what}: 503 without Retry-After: {headers}")

    def first_ack_after(self, moment: float) -> Acked | None:
        with self.lock:
            later = [a for a in self.acked if a.at > moment]
        return min(later, key=lambda a: a.at) if later else None


class Client:
    """A keep-alive HTTP client that sends writes with an Idempotency-Key.

    An answer of 409, 429 or 503 is retried with the *same* key (the request was not done,
    or was done and will be replayed); a transport error gives up on the write (the server
    is gone: whatever it did is not acknowledged).
    """

    def __init__(self, load: Load) -> None:
        self.load = load
        host, port = load.base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes] | None:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=HTTP_TIMEOUT)
        sent = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        started = time.monotonic()
        try:
            self.conn.request(method, path, body=data, headers=sent)
            response = self.conn.getresponse()
            raw = response.read()
        except TimeoutError:
            self.close()
            with self.load.lock:
                self.load.bad.append(f"{method} {path}: no answer in {HTTP_TIMEOUT} s (a hang)")
            return None
        except (OSError, http.client.HTTPException):
            self.close()
            with self.load.lock:
                self.load.transport_errors += 1
            return None
        answer = {k.lower(): v for k, v in response.getheaders()}
        if answer.get("connection", "").lower() == "close":
            self.close()
        self.load.note(response.status, answer, raw, time.monotonic() - started, f"{method} {path}")
        return response.status, answer, raw

    def write(self, write: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST until acknowledged (or refused, or the server is gone, or told to stop)."""
        headers = {"Authorization": f"Bearer {self.load.token}", "Idempotency-Key": write}
        while not self.load.stop.is_set():
            answer = self.send("POST", path, body, headers)
            if answer is None:
                return None
            status, got, raw = answer
            if status in (200, 201):
                receipt = json.loads(raw)
                with self.load.lock:
                    self.load.acked.append(Acked(write, receipt, time.monotonic()))
                return dict(receipt)
            if status in (409, 429, 503):
                time.sleep(min(float(got.get("retry-after", "0.05") or 0.05), 0.5))
                continue
            with self.load.lock:
                self.load.bad.append(f"POST {path} ({write}): {status} {raw[:300]!r}")
            return None
        return None


def org_body(write: str) -> dict[str, Any]:
    return {"name": f"Org {write}", "org_kind": "public_body"}


def amendment_body(org_id: str, write: str) -> dict[str, Any]:
    return {
        "base_version": 1,
        "changes": [{"op": "replace", "section_id": "s2", "text": f"Accredit, {write}."}],
        "rationale": "tighter",
        "proposer_org": org_id,
    }


@dataclass
class Seeded:
    process_id: str
    org_id: str
    proposal_id: str


def seed(load: Load) -> Seeded:
    """A process with a strand, an organisation and a proposal the load amends and reads."""
    client = Client(load)
    try:
        process = client.write("seed-process", "/processes", {"title": "Crash process"})
        assert process is not None, load.bad
        process_id = process["subject"]["id"]
        assert client.write(
            "seed-strand",
            f"/processes/{process_id}/strands",
            {"strand_id": "research", "title": "Research"},
        )
        org = client.write("seed-org", "/organisations", org_body("seed"))
        assert org is not None, load.bad
        proposal = client.write(
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
                "sponsor_org": org["subject"]["id"],
            },
        )
        assert proposal is not None, load.bad
        return Seeded(process_id, org["subject"]["id"], proposal["subject"]["id"])
    finally:
        client.close()


def writer(
    load: Load, seeded: Seeded, name: str, *, stop_on_transport_error: bool, prefix: str = ""
) -> None:
    """Organisations and amendments (contended: re-decided by the server) until stopped."""
    client = Client(load)
    n = 0
    try:
        while not load.stop.is_set():
            write = f"w{prefix}-{name}-{n}-{uuid.uuid4().hex[:8]}"
            if n % 2 == 0:
                done = client.write(write, "/organisations", org_body(write))
            else:
                done = client.write(
                    write,
                    f"/proposals/{seeded.proposal_id}/amendments",
                    amendment_body(seeded.org_id, write),
                )
            n += 1
            if done is None and stop_on_transport_error:
                return
            if done is None:
                time.sleep(0.1)
    finally:
        client.close()


def reader(load: Load, seeded: Seeded) -> None:
    """Public reads: checkpoint, proposal history, lists, an entry with its proof."""
    client = Client(load)
    paths = [
        "/checkpoint",
        f"/proposals/{seeded.proposal_id}/history",
        "/organisations?limit=20",
        "/entries/1",
        f"/proposals/{seeded.proposal_id}",
    ]
    n = 0
    try:
        while not load.stop.is_set():
            answer = client.send("GET", paths[n % len(paths)])
            n += 1
            with load.lock:
                load.reads += 1
            if answer is None:
                time.sleep(0.1)
            else:
                time.sleep(0.01)
    finally:
        client.close()


def start_threads(target: Callable[..., None], count: int, *args: Any, **kw: Any):
    threads = [
        threading.Thread(target=target, args=(*args, f"t{k}"), kwargs=kw, daemon=True)
        for k in range(count)
    ]
    for thread in threads:
        thread.start()
    return threads


# Checks ------------------------------------------------------------------------------------


def raw_connect(settings: Settings) -> Any:
    if settings.backend == "sqlite":
        return sqlite3.connect(settings.sqlite_path, isolation_level=None)
    assert settings.database_url is not None
    return psycopg.connect(
        settings.database_url, autocommit=True, options=f"-c search_path={settings.pg_schema}"
    )


def check_store(settings: Settings, env: dict[str, str], vkey: str) -> int:
    """Nothing half-written: `ledger verify`, dense indexes, no event row without entry."""
    verified = json.loads(cli(env, "verify", "--json", "--key", vkey, "--jobs", "1"))
    assert verified["ok"] is True, verified
    n = int(verified["entries"])
    event_key = "rowid" if settings.backend == "sqlite" else "notification_id"
    conn = raw_connect(settings)
    try:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT idx), min(idx), max(idx) FROM ledger_entries"
        ).fetchone()
        assert tuple(row) == (n, n, 0, n - 1), row
        assert conn.execute("SELECT size FROM ledger_head").fetchone()[0] == n
        orphans = conn.execute(
            f"SELECT count(*) FROM ledger_events v LEFT JOIN ledger_entries e "
            f"ON e.event_id = v.{event_key} WHERE e.idx IS NULL"
        ).fetchone()[0]
        assert orphans == 0, f"{orphans} event rows without an entry"
        events = conn.execute("SELECT count(*) FROM ledger_events").fetchone()[0]
        assert events == n, (events, n)
    finally:
        conn.close()
    return n


def check_receipts(
    base: str, acked: list[Acked], vkey: str, *, labels: bool = True, most_sizes: int = 0
) -> tuple[int, list[bytes]]:
    """Every receipt checks as its holder would check it against the served log.

    ``labels``: each write's label (see ``writer``) is in exactly its entry. ``most_sizes``
    (0: all) bounds the checkpoint sizes whose consistency with the final one is fetched
    (evenly spread; a long soak holds thousands). Returns the final size and all entries
    (which form one chain to the final root).
    """
    log_key = parse_vkey(vkey)
    status, _, note = request(base, "GET", "/checkpoint")
    assert status == 200, note
    final = verify_checkpoint(note.decode(), log_key)
    n = final.size
    entries = list(HttpSource(base, timeout=30).entries(0, n))
    assert len(entries) == n
    prev = b"\x00" * 32
    tree = CompactRange()
    for index, entry in enumerate(entries):
        prev = check_entry(entry, index, prev)
        tree.append(hash_leaf(entry))
    assert tree.root() == final.root

    by_write: dict[str, set[int]] = {}
    consistency: dict[int, list[bytes]] = {}
    sizes = sorted({int(a.receipt["inclusion_proof"]["tree_size"]) for a in acked})
    if most_sizes and len(sizes) > most_sizes:
        sizes = sizes[:: len(sizes) // most_sizes + 1] + sizes[-1:]
    wanted = set(sizes)
    for one in acked:
        receipt = one.receipt
        index = int(receipt["index"])
        by_write.setdefault(one.write, set()).add(index)
        entry = receipt["entry"].encode()
        assert entry == entries[index], f"{one.write}: entry {index} differs from its receipt"
        assert hashlib.sha256(entry).hexdigest() == receipt["entry_hash"]
        checkpoint = verify_checkpoint(receipt["checkpoint"], log_key)
        assert checkpoint.origin == final.origin
        size = checkpoint.size
        assert index < size <= n
        assert receipt["inclusion_proof"]["tree_size"] == size
        verify_inclusion(
            hash_leaf(entry),
            index,
            size,
            [base64.b64decode(h) for h in receipt["inclusion_proof"]["hashes"]],
            checkpoint.root,
        )
        if size not in wanted:
            continue
        if size not in consistency:
            consistency[size] = HttpSource(base).consistency_proof(size, n)
        verify_consistency(size, n, checkpoint.root, final.root, consistency[size])
    # One logical write (one Idempotency-Key), one entry: a retry never wrote twice.
    assert all(len(indexes) == 1 for indexes in by_write.values()), by_write
    if not labels:
        return n, entries
    holding: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        for label in set(WRITE_LABEL.findall(entry.decode())):
            holding.setdefault(label, []).append(index)
    assert all(len(indexes) == 1 for indexes in holding.values()), holding
    for write, indexes in by_write.items():
        if not write.startswith("seed-"):
            assert holding.get(write) == sorted(indexes), (write, holding.get(write))
    return n, entries


def signing_env(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    key_file = tmp_path / "signing.key"
    if not key_file.exists():
        create_key_file(key_file, LOG_NAME)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(LEDGER_SIGNING_KEY_FILE=str(key_file), LEDGER_LOG_NAME=LOG_NAME)
    return key_file, env


def vkey_of(settings: Settings) -> str:
    signer = load_signer(settings)
    assert signer is not None
    return signer.verifier_key()


def serving_env(env: dict[str, str]) -> dict[str, str]:
    # A write budget no test client reaches; a few threads and pooled connections.
    return {**env, "LEDGER_WRITE_RATE": "0", "LEDGER_API_THREADS": "6"}


# kill -9 of the API server -----------------------------------------------------------------

WRITERS = 4
ACKS_BEFORE_KILL = 40


@pytest.mark.slow
def test_kill_9_of_the_server_under_write_load(store: Store, tmp_path: Path) -> None:
    started = time.monotonic()
    env = store.env()
    cli(env, "migrate")
    token = cli(env, "tokens", "create", "--name", "crash-writer", "--role", "recorder").strip()
    vkey = vkey_of(store.settings)
    server = LedgerServer(serving_env(env), tmp_path, "before-kill")
    try:
        server.wait_ready()
        load = Load(server.base, token)
        seeded = seed(load)
        threads = start_threads(writer, WRITERS, load, seeded, stop_on_transport_error=True)
        deadline = time.monotonic() + 20
        while len(load.acked) < ACKS_BEFORE_KILL + 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(load.acked) >= ACKS_BEFORE_KILL, (load.statuses, load.bad, server.output())
        server.kill9()  # mid-load: the writers have requests in flight
        killed_at = time.monotonic()
        for thread in threads:
            thread.join(timeout=HTTP_TIMEOUT + 5)
        assert not any(t.is_alive() for t in threads)
    finally:
        server.stop()
    load.stop.set()
    assert not load.bad, load.bad
    before_kill = list(load.acked)

    # Nothing half-written, checked in the store itself before anything runs on it again.
    size_at_kill = check_store(store.settings, env, vkey)
    assert max(int(a.receipt["index"]) for a in before_kill) < size_at_kill

    # Restart on the same store and port; the same chain continues.
    again = LedgerServer(serving_env(env), tmp_path, "after-kill", port=server.port)
    try:
        again.wait_ready()
        status, _, body = request(again.base, "GET", f"/entries/{size_at_kill - 1}")
        assert status == 200, body
        last_before = json.loads(body)["entry"].encode()
        load = Load(again.base, token, acked=list(before_kill))
        restarted_at = time.monotonic()
        threads = start_threads(writer, 2, load, seeded, stop_on_transport_error=True, prefix="r")
        deadline = time.monotonic() + 15
        while len(load.acked) < len(before_kill) + 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        load.stop.set()
        for thread in threads:
            thread.join(timeout=HTTP_TIMEOUT + 5)
        assert not load.bad, (load.bad, again.output())
        first_after = load.first_ack_after(restarted_at)
        assert first_after is not None, (load.statuses, again.output())
        after = [a for a in load.acked if a.at > restarted_at]
        assert len(after) >= 10
        # The first receipt after the restart links to the last entry before the kill.
        first = min(after, key=lambda a: int(a.receipt["index"]))
        assert int(first.receipt["index"]) == size_at_kill
        check_entry(
            first.receipt["entry"].encode(),
            size_at_kill,
            hashlib.sha256(last_before).digest(),
        )
        n, _ = check_receipts(again.base, load.acked, vkey)
    finally:
        again.stop()
    assert check_store(store.settings, env, vkey) == n
    print(
        f"\n{store.kind}: {len(before_kill)} receipts before kill -9 (log size {size_at_kill} "
        f"at the kill, {killed_at - started:.1f} s in), {len(after)} after the restart; "
        f"final size {n}; all verified in {time.monotonic() - started:.1f} s"
    )


# PostgreSQL stopped and started under load -------------------------------------------------

DOWN_FOR = 4.0  # seconds the database is stopped
RECOVERY_BOUND = 20.0  # seconds after the restart for writes to succeed again


@pytest.fixture
def private_pg() -> Iterator[pgcluster.PgCluster]:
    """A private PostgreSQL cluster this test may stop (skipped without binaries; CI fails)."""
    reason = pgcluster.unavailable_reason()
    if reason is None:
        with contextlib.ExitStack() as stack:
            try:
                cluster = stack.enter_context(pgcluster.pg_cluster())
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                reason = f"cannot create a private PostgreSQL cluster: {exc}"
            else:
                yield cluster
                return
    if CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.mark.slow
@pytest.mark.postgres
def test_postgresql_stopped_and_restarted_under_load(
    private_pg: pgcluster.PgCluster, tmp_path: Path
) -> None:
    started = time.monotonic()
    cluster = private_pg
    key_file, env = signing_env(tmp_path)
    env["LEDGER_DATABASE_URL"] = cluster.url
    settings = Settings(
        database_url=cluster.url, signing_key_file=key_file, log_name=LOG_NAME, data_dir=tmp_path
    )
    cli(env, "migrate")
    token = cli(env, "tokens", "create", "--name", "fault-writer", "--role", "recorder").strip()
    vkey = vkey_of(settings)
    server = LedgerServer(serving_env(env), tmp_path, "server")
    try:
        server.wait_ready()
        load = Load(server.base, token)
        seeded = seed(load)
        writers = start_threads(writer, 3, load, seeded, stop_on_transport_error=False)
        readers = [
            threading.Thread(target=reader, args=(load, seeded), daemon=True) for _ in range(2)
        ]
        for thread in readers:
            thread.start()
        time.sleep(2.0)
        acked_before_stop = len(load.acked)
        assert acked_before_stop > 0, (load.statuses, load.bad, server.output())

        statuses_before = dict(load.statuses)
        cluster.stop("fast")
        stopped_at = time.monotonic()
        # While it is down: a probe of our own, besides the load, for a bounded 503.
        time.sleep(1.0)
        t = time.monotonic()
        probe = request(
            server.base,
            "POST",
            "/organisations",
            org_body("probe-while-down"),
            {"Authorization": f"Bearer {token}"},
        )
        probe_took = time.monotonic() - t
        read_probe = request(server.base, "GET", f"/proposals/{seeded.proposal_id}/history")
        time.sleep(max(0.0, DOWN_FOR - (time.monotonic() - stopped_at)))
        down = {s: c - statuses_before.get(s, 0) for s, c in load.statuses.items()}
        assert server.proc.poll() is None, f"the server died:\n{server.output()}"

        cluster.start()
        restarted_at = time.monotonic()
        deadline = restarted_at + RECOVERY_BOUND
        while load.first_ack_after(restarted_at) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        first = load.first_ack_after(restarted_at)
        recovered_in = None if first is None else first.at - restarted_at
        # Reads recover too: the read models and the log readers.
        read_ok = None
        while read_ok is None and time.monotonic() < deadline:
            if request(server.base, "GET", "/readyz")[0] == 200:
                read_ok = time.monotonic() - restarted_at
            else:
                time.sleep(0.2)
        time.sleep(1.0)  # a little more load on the recovered service
        load.stop.set()
        for thread in [*writers, *readers]:
            thread.join(timeout=HTTP_TIMEOUT + 5)
        assert not any(t.is_alive() for t in [*writers, *readers])
        assert server.proc.poll() is None, f"the server died:\n{server.output()}"
        logs = server.output()

        assert probe[0] == 503, (probe, logs)
        assert probe[1]["content-type"].startswith(PROBLEM_JSON)
        assert int(probe[1]["retry-after"]) > 0
        assert json.loads(probe[2])["status"] == 503
        assert probe_took < HTTP_TIMEOUT
        assert read_probe[0] in (200, 503), (read_probe, logs)
        assert down.get(503, 0) > 0, (down, logs)
        assert not load.bad, ("\n".join(load.bad[:20]), logs)
        assert load.transport_errors == 0, (load.transport_errors, logs)
        assert recovered_in is not None, (
            f"writes did not recover within {RECOVERY_BOUND} s of the restart: "
            f"{load.statuses}\n{logs}"
        )
        assert read_ok is not None, f"/readyz not 200 within {RECOVERY_BOUND} s\n{logs}"
        status, _, body = request(server.base, "GET", f"/proposals/{seeded.proposal_id}/history")
        assert status == 200, body

        n, _ = check_receipts(server.base, load.acked, vkey)
    finally:
        server.stop()
    assert check_store(settings, env, vkey) == n
    print(
        f"\nPostgreSQL down {DOWN_FOR:.0f} s under load: answers {load.statuses} "
        f"({load.reads} reads), slowest {load.slowest:.2f} s; writes recovered "
        f"{recovered_in:.2f} s and /readyz {read_ok:.2f} s after the restart; "
        f"{len(load.acked)} receipts verified, log size {n}; {time.monotonic() - started:.1f} s"
    )
