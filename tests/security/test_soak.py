"""Soak: mixed read and write load on a real `ledger serve --workers 2` (threat model, E).

Client threads on loopback write several kinds of command (organisations, processes with
strands, proposals, amendments, decisions on them) and read what the public reads (a
proposal's history, lists, the checkpoint, entries with proofs, inclusion and consistency
proofs) for ``LEDGER_SOAK_SECONDS`` (default 12; ``make soak`` runs 600). Meanwhile the
server's worker processes' resident memory is sampled twice a second.

Passes when:

* no answer was an error: every status is 2xx except 409s (contended amendments and
  decisions, decided again), and no request failed in transport or hung;
* memory does not grow: after a warm-up (the first quarter of the run, at least 5 s), the
  samples are cut in thirds; for every worker, the median RSS of the last third is at most
  1.2 x the median of the first third plus 16 MiB. Medians ignore a momentary peak (a
  big answer, a collection); thirds compare steady states instead of two noisy points;
  the fixed slack absorbs allocator growth that is not a leak on a short run, while a leak
  that keeps growing for ten minutes shows up as a ratio. Bounded caches would look like
  growth while they fill, so the read cache is set small (4 MiB) and fills during warm-up;
* afterwards the chain verifies: `ledger verify`, every receipt (entry byte for byte,
  inclusion proof, consistency of its checkpoint with the final one, for a spread sample
  of checkpoint sizes), and the served entries hash to the final root.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Store
from tests.security.test_crash import (
    Client,
    LedgerServer,
    Load,
    Seeded,
    amendment_body,
    check_receipts,
    check_store,
    cli,
    org_body,
    request,
    seed,
    serving_env,
    vkey_of,
)

SECONDS = float(os.environ.get("LEDGER_SOAK_SECONDS", "12"))
WRITERS = 2
READERS = 3
SAMPLE_EVERY = 0.5  # seconds between RSS samples
GROWTH = 1.2
SLACK_MIB = 16.0


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def soak_writer(load: Load, seeded: Seeded, name: str) -> None:
    """Cycle through commands; every label is unique, so every write is one entry."""
    client = Client(load)
    proposal = seeded.proposal_id
    amendments: list[str] = []
    n = 0
    try:
        while not load.stop.is_set():
            label = f"ws-{name}-{n}-{uuid.uuid4().hex[:8]}"
            step = n % 6
            receipt: dict[str, Any] | None
            if step == 0:
                receipt = client.write(label, "/organisations", org_body(label))
            elif step == 1:
                receipt = client.write(label, "/processes", {"title": f"Process {label}"})
                if receipt is not None:
                    client.write(
                        f"{label}-strand",
                        f"/processes/{receipt['subject']['id']}/strands",
                        {"strand_id": "research", "title": "Research"},
                    )
            elif step == 2 and n % 24 == 2:
                receipt = client.write(
                    label,
                    "/proposals",
                    {
                        "process_id": seeded.process_id,
                        "strand_id": "research",
                        "title": f"Proposal {label}",
                        "sections": [
                            {"id": "s1", "heading": "Purpose", "text": "Allow access."},
                            {"id": "s2", "heading": "Safeguards", "text": "Accredit."},
                        ],
                        "sponsor_org": seeded.org_id,
                    },
                )
                if receipt is not None:
                    proposal = receipt["subject"]["id"]
                    amendments = []
            elif step in (2, 3, 4):
                receipt = client.write(
                    label,
                    f"/proposals/{proposal}/amendments",
                    amendment_body(seeded.org_id, label),
                )
                if receipt is not None:
                    amendments.append(json.loads(receipt["entry"])["data"]["amendment_id"])
            elif amendments:
                receipt = client.write(
                    label,
                    f"/proposals/{proposal}/amendments/{amendments[-1]}/decision",
                    {"decision": "no_decision", "consensus": "still_to_discuss", "note": label},
                )
            n += 1
    finally:
        client.close()


def soak_reader(load: Load, seeded: Seeded, k: int) -> None:
    """What the public reads, with proofs against the sizes the log has published."""
    client = Client(load)
    size = 1
    n = k
    try:
        while not load.stop.is_set():
            choice = n % 9
            n += 1
            if choice == 0:
                answer = client.send("GET", "/checkpoint")
                if answer is not None and answer[0] == 200:
                    size = int(answer[2].decode().splitlines()[1])
                path = None
            else:
                index = (n * 7919) % size
                path = [
                    "",
                    f"/proposals/{seeded.proposal_id}/history",
                    f"/proposals/{seeded.proposal_id}",
                    "/proposals?limit=20",
                    "/organisations?limit=20",
                    f"/entries/{index}",
                    f"/proof/inclusion?index={index}&size={size}",
                    f"/proof/consistency?old={max(1, index)}&new={size}",
                    "/timeline?limit=20",
                ][choice]
                answer = client.send("GET", path)
            with load.lock:
                load.reads += 1
            if answer is None:
                time.sleep(0.1)
            elif path and answer[0] == 200 and path.startswith("/proof/"):
                assert "proof" in json.loads(answer[2])
    finally:
        client.close()


@pytest.mark.slow
def test_soak_mixed_load(store: Store, tmp_path: Path) -> None:
    env = store.env()
    cli(env, "migrate")
    token = cli(env, "tokens", "create", "--name", "soak", "--role", "recorder").strip()
    vkey = vkey_of(store.settings)
    server_env = {
        **serving_env(env),
        "LEDGER_READ_CACHE_BYTES": str(4 * 1024 * 1024),
        "LEDGER_API_THREADS": "4",  # two workers stay well inside max_connections
    }
    if store.kind == "postgresql":
        server_env["LEDGER_PG_POOL_SIZE"] = "3"
    server = LedgerServer(server_env, tmp_path, "soak", workers=2)
    samples: list[tuple[float, dict[int, float]]] = []
    try:
        server.wait_ready()
        workers = [p for p in server.pids() if p != server.proc.pid]
        load = Load(server.base, token)
        seeded = seed(load)
        # The read models follow the log: the seeded proposal is readable a moment later.
        deadline = time.monotonic() + 20
        while request(server.base, "GET", f"/proposals/{seeded.proposal_id}")[0] != 200:
            assert time.monotonic() < deadline, "the read models did not catch up"
            time.sleep(0.1)
        threads = [
            threading.Thread(target=soak_writer, args=(load, seeded, f"t{k}"), daemon=True)
            for k in range(WRITERS)
        ] + [
            threading.Thread(target=soak_reader, args=(load, seeded, k), daemon=True)
            for k in range(READERS)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        while (now := time.monotonic()) < started + SECONDS:
            alive = server.proc.poll() is None
            assert alive, f"the server died:\n{server.output()}"
            samples.append((now - started, {p: rss_mib(p) or 0.0 for p in server.pids()}))
            time.sleep(SAMPLE_EVERY)
        load.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        elapsed = time.monotonic() - started
        assert not any(t.is_alive() for t in threads), "clients did not stop"
        assert server.proc.poll() is None, f"the server died:\n{server.output()}"
        requests = sum(load.statuses.values())
        errors = sum(c for s, c in load.statuses.items() if not (200 <= s < 300 or s == 409))
        errors += load.transport_errors + len(load.bad)

        # Memory: per worker process, steady state after warm-up, first third vs last.
        warm = max(5.0, SECONDS / 4)
        steady = [per for t, per in samples if t >= warm]
        assert len(steady) >= 6, f"too few RSS samples after warm-up: {len(steady)}"
        third = len(steady) // 3
        growth: dict[int, tuple[float, float]] = {}
        for pid in workers:
            first = statistics.median(per.get(pid, 0.0) for per in steady[:third])
            last = statistics.median(per.get(pid, 0.0) for per in steady[-third:])
            growth[pid] = (first, last)
        start_total = sum(samples[0][1].get(p, 0.0) for p in workers)
        end_total = sum(samples[-1][1].get(p, 0.0) for p in workers)
        acked = len(load.acked)
        print(
            f"\nsoak {store.kind}: {elapsed:.0f} s, {requests} requests "
            f"({acked} writes acknowledged, {load.reads} reads), {errors} errors, "
            f"{load.statuses.get(409, 0)} 409s, {requests / elapsed:.0f} req/s, "
            f"slowest {load.slowest:.2f} s; RSS of {len(workers)} child processes "
            f"{start_total:.0f} -> {end_total:.0f} MiB; steady medians (first -> last third) "
            + ", ".join(f"{a:.0f} -> {b:.0f} MiB" for a, b in growth.values())
        )
        assert errors == 0, (load.refused, load.transport_errors, load.bad[:20], server.output())
        assert acked > 0
        assert load.reads > 0
        for pid, (first, last) in growth.items():
            assert last <= first * GROWTH + SLACK_MIB, (
                f"worker {pid} grew from {first:.0f} to {last:.0f} MiB (median RSS)",
                samples[::10],
            )

        n, _ = check_receipts(server.base, load.acked, vkey, labels=False, most_sizes=100)
    finally:
        server.stop()
    assert check_store(store.settings, env, vkey) == n
