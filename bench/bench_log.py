"""Verifiable-log benchmark: proofs and a full audit on a large log, on each store.

Fills a log with N single-event entries (in transactions of 1,000, each with its signed
checkpoint), then measures inclusion and consistency proof generation from the stored tree
(median and p99 over random sizes) beside a baseline read of one row by index, and a full
audit from an empty state (bundle source) with its peak memory, beside a raw SHA-256 pass.

    python bench/bench_log.py [--size N] [--quick] [--backends sqlite,postgresql] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _stores import scratch_stores

from ledger.actors import Actor
from ledger.aggregates import Organisation
from ledger.application import LedgerApplication
from ledger.proofs import ProofBuilder, TileCache
from ledger.settings import Settings
from ledger.storage import open_reader

ACTOR = Actor("bench", "recorder", "bench-org")
ROOT = Path(__file__).resolve().parents[1]


def fill(settings: Settings, size: int, batch: int = 1000) -> float:
    app = LedgerApplication(settings)
    now = datetime.now(UTC)
    started = time.perf_counter()
    for start in range(0, size, batch):
        orgs = [
            Organisation.register(
                name=f"organisation {k}", org_kind="academic", actor=ACTOR, at=now
            )
            for k in range(start, min(start + batch, size))
        ]
        app.save(*orgs)
        if start and start % 100_000 == 0:
            print(f"  … {start:,} entries", file=sys.stderr)
    seconds = time.perf_counter() - started
    app.close()
    return size / seconds


def ms(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "median_ms": statistics.median(values) * 1000,
        "p99_ms": values[int(len(values) * 0.99) - 1] * 1000,
    }


def bench_proofs(settings: Settings, size: int, samples: int) -> dict[str, Any]:
    reader = open_reader(settings, snapshot=False)
    cache = TileCache()  # what a serving process keeps
    rng = random.Random(7)
    row, inclusion, consistency = [], [], []
    for _ in range(samples):
        n = rng.randint(size // 2, size)
        i = rng.randrange(n)
        m = rng.randint(1, n)
        started = time.perf_counter()
        reader.entries(i, i + 1)
        row.append(time.perf_counter() - started)
        started = time.perf_counter()
        ProofBuilder(reader, cache).inclusion(i, n)
        inclusion.append(time.perf_counter() - started)
        started = time.perf_counter()
        ProofBuilder(reader, cache).consistency(m, n)
        consistency.append(time.perf_counter() - started)
    reader.close()
    return {"row_read": ms(row), "inclusion": ms(inclusion), "consistency": ms(consistency)}


def bench_audit(settings: Settings, size: int, tmp: Path) -> dict[str, Any]:
    """Export a bundle, then audit it from an empty state in a fresh process (peak RSS)."""
    bundle, state = tmp / f"{uuid.uuid4().hex}.bundle", tmp / f"{uuid.uuid4().hex}.state"
    env = {
        **os.environ,
        "LEDGER_DATA_DIR": str(settings.data_dir),
        "LEDGER_DEMO": "1",
        "LEDGER_LOG_NAME": settings.log_name,
    }
    if settings.database_url:
        env.update(LEDGER_DATABASE_URL=settings.database_url, LEDGER_PG_SCHEMA=settings.pg_schema)
    subprocess.run(
        [sys.executable, "-m", "ledger.cli", "export", "--bundle", str(bundle)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    vkey = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "keys", "show"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Peak memory is the child's own VmHWM: ru_maxrss would include the parent's RSS,
    # which Linux carries across fork and execve.
    script = (
        "import sys, time, json;"
        "from pathlib import Path;"
        "from ledger.audit import BundleSource, audit;"
        "t = time.perf_counter();"
        "r = audit(BundleSource(Path(sys.argv[1])), vkey=sys.argv[2],"
        " state_path=Path(sys.argv[3]));"
        "s = time.perf_counter() - t;"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0];"
        "print(json.dumps({'seconds': s, 'size': r.new_size,"
        " 'max_rss_mb': int(hwm.split()[1]) / 1024}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(bundle), vkey, str(state)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out)
    # Baseline: one SHA-256 per entry over the same bytes, read from the bundle file.
    started = time.perf_counter()
    with bundle.open("rb") as handle:
        handle.readline()
        for line in handle:
            hashlib.sha256(line).digest()
    raw = size / (time.perf_counter() - started)
    bundle.unlink()
    return {
        "entries_per_s": result["size"] / result["seconds"],
        "max_rss_mb": result["max_rss_mb"],
        "raw_sha256_per_s": raw,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.size, args.samples = 20_000, 300
    results: dict[str, Any] = {"size": args.size, "backends": {}}
    with tempfile.TemporaryDirectory() as tmp_name, scratch_stores() as new_store:
        tmp = Path(tmp_name)
        for backend in args.backends.split(","):
            settings = new_store(backend)
            print(f"[{backend}] filling {args.size:,} entries …", file=sys.stderr)
            fill_rate = fill(settings, args.size)
            print(f"[{backend}] proofs …", file=sys.stderr)
            proofs = bench_proofs(settings, args.size, args.samples)
            print(f"[{backend}] {json.dumps(proofs)}", file=sys.stderr)
            print(f"[{backend}] audit …", file=sys.stderr)
            audit = bench_audit(settings, args.size, tmp)
            results["backends"][backend] = {"fill_per_s": fill_rate, **proofs, "audit": audit}
    print(
        "| backend | entries | fill/s | row read ms (median) | inclusion ms median / p99 "
        "| consistency ms median / p99 | audit entries/s | audit peak MB | raw SHA-256/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results["backends"].items():
        print(
            f"| {name} | {args.size:,} | {r['fill_per_s']:,.0f} | {r['row_read']['median_ms']:.3f} "
            f"| {r['inclusion']['median_ms']:.2f} / {r['inclusion']['p99_ms']:.2f} "
            f"| {r['consistency']['median_ms']:.2f} / {r['consistency']['p99_ms']:.2f} "
            f"| {r['audit']['entries_per_s']:,.0f} | {r['audit']['max_rss_mb']:.0f} "
            f"| {r['audit']['raw_sha256_per_s']:,.0f} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
