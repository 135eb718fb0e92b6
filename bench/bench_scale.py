"""Scale benchmark: what changes between a small log and a large one, on each store.

For each size (default 10,000 and 1,000,000 entries) a fresh store is filled — through
``ledger.bulk.import_ndjson`` with a realistic command file from ``bench/generate.py`` when
that module exists, otherwise by saving aggregates in transactions of 1,000 (as
``bench_log.fill``) — and then measured:

* storage: database bytes per entry (SQLite: the file and its WAL after a checkpoint;
  PostgreSQL: ``pg_total_relation_size`` of every ledger table of the scratch schema), with
  a breakdown per table;
* proofs: inclusion and consistency proof median/p99 beside a raw read of one row;
* verify: ``ledger verify`` in a child process (entries/s, peak memory as its VmHWM and its
  workers' peak RSS), also as one streaming pass (``--jobs 1``), beside a raw read of the
  same rows and a raw SHA-256 of every entry;
* rebuild: every projection rebuilt from the log (entries/s) beside a raw read + JSON parse;
* appends: single commands from one thread (one transaction each) and from 32 threads
  (group commit), beside raw eventsourcing saves of single-event aggregates;
* group commit latency: per-command latency alone vs under 32 writers, and how long each
  command waited before the transaction of its batch started;
* bulk import: entries/s (when ``ledger.bulk`` exists).

    python bench/bench_scale.py [--sizes 10000,1000000] [--quick] [--backends ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import psycopg
from _stores import scratch_stores
from bench_core import Plain, raw_app, raw_read
from bench_log import bench_proofs
from bench_log import fill as fill_aggregates
from generate import generate

from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.settings import Settings
from ledger.storage import open_reader
from ledger.verify import PARALLEL_MIN_ENTRIES

ACTOR = Actor("bench", "recorder", "bench-org")
ROOT = Path(__file__).resolve().parents[1]
THREADS = 32

TARGETS = {
    "append_largest_vs_smallest_min": 0.8,
    "group_commit_added_latency_max_ms": 5.0,
    "proof_median_max_ms": 2.0,
    "verify_min_per_s": 100_000.0,
    "rebuild_min_per_s": 20_000.0,
    "bulk_import_min_per_s_postgresql": 20_000.0,
}


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    values = sorted(seconds)
    if not values:
        return {"median_ms": 0.0, "p99_ms": 0.0}
    p99 = values[min(len(values) - 1, max(0, int(len(values) * 0.99) - 1))]
    return {"median_ms": statistics.median(values) * 1000, "p99_ms": p99 * 1000}


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def log_size(settings: Settings) -> int:
    reader = open_reader(settings, snapshot=False)
    try:
        head = reader.head()
        return head.size if head else 0
    finally:
        reader.close()


# fill ---------------------------------------------------------------------------------------


def bulk_module() -> Any:
    try:
        from ledger import bulk  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    return bulk


def fill(settings: Settings, size: int, tmp: Path, seed: int) -> dict[str, Any]:
    bulk = bulk_module()
    if bulk is None:
        per_s = fill_aggregates(settings, size)
        return {
            "method": "aggregates in transactions of 1,000 (ledger.bulk is not importable)",
            "entries_per_s": per_s,
        }
    path = tmp / f"commands-{size}-{seed}.ndjson"
    if not path.exists():
        started = time.perf_counter()
        with path.open("wb", buffering=1 << 20) as handle:
            generate(handle, size, seed=seed)
        print(f"  generated {size:,} commands in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)  # fmt: skip
    app = LedgerApplication(settings)
    last = [0.0]

    def progress(done: int, total: int, *more: int) -> None:
        # (bytes read, file bytes[, entries]): the signature grew while ledger.bulk was written
        now = time.monotonic()
        if now - last[0] > 30:
            last[0] = now
            print(f"  … {done / max(total, 1):.0%} imported {more}", file=sys.stderr)

    try:
        result = bulk.import_ndjson(app, path, actor=ACTOR, progress=progress)
    finally:
        app.close()
    return {
        "method": "ledger.bulk.import_ndjson of bench/generate.py commands",
        "lines": result.lines,
        "entries": result.entries,
        "batches": result.batches,
        "seconds": result.seconds,
        "entries_per_s": rate(result.entries, result.seconds),
        "file_bytes": path.stat().st_size,
    }


# storage ------------------------------------------------------------------------------------


def storage(settings: Settings, size: int) -> dict[str, Any]:
    """Bytes of the ledger's tables (before any projection is built in the same database)."""
    tables: dict[str, int] = {}
    if settings.database_url:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT tablename, pg_total_relation_size(format('%%I.%%I', schemaname, "
                "tablename)::regclass) FROM pg_tables WHERE schemaname = %s ORDER BY 1",
                (settings.pg_schema,),
            ).fetchall()
        tables = {name: int(total) for name, total in rows if name.startswith("ledger_")}
        total = sum(tables.values())
    else:
        import sqlite3

        db = sqlite3.connect(settings.sqlite_path)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            try:
                rows = db.execute(
                    "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY name"
                ).fetchall()
                tables = {str(name): int(total) for name, total in rows}
            except sqlite3.OperationalError:  # SQLite built without dbstat
                tables = {}
        finally:
            db.close()
        total = sum(
            p.stat().st_size for p in settings.data_dir.glob(settings.sqlite_path.name + "*")
        )
    return {"bytes": total, "bytes_per_entry": total / size if size else 0.0, "tables": tables}


# verify -------------------------------------------------------------------------------------

VERIFY_CHILD = """
import io, json, resource, sys, time
from contextlib import redirect_stdout
from ledger.cli import main
out = io.StringIO()
started = time.perf_counter()
with redirect_stdout(out):
    try:
        main(["verify", "--json", "--quiet", *sys.argv[1:]])
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
seconds = time.perf_counter() - started
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"code": code, "seconds": seconds, "report": json.loads(out.getvalue()),
                  "peak_rss_mb": int(hwm.split()[1]) / 1024,
                  "workers_peak_rss_mb": children / 1024}))
"""


def store_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(
        LEDGER_DATA_DIR=str(settings.data_dir), LEDGER_DEMO="1", LEDGER_LOG_NAME=settings.log_name
    )
    if settings.database_url:
        env.update(LEDGER_DATABASE_URL=settings.database_url, LEDGER_PG_SCHEMA=settings.pg_schema)
    return env


def run_verify(settings: Settings, *extra: str) -> dict[str, Any]:
    """``ledger verify`` in a fresh process: its time, rate and peak memory."""
    done = subprocess.run(
        [sys.executable, "-c", VERIFY_CHILD, *extra],
        cwd=ROOT, env=store_env(settings), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"ledger verify failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    report = result["report"]
    if result["code"] not in (0, None) or not report["ok"]:
        raise RuntimeError(f"ledger verify did not pass: {report}")
    return {
        "entries": report["entries"],
        "seconds": result["seconds"],
        "entries_per_s": rate(report["entries"], result["seconds"]),
        "peak_rss_mb": result["peak_rss_mb"],
        "workers_peak_rss_mb": result["workers_peak_rss_mb"],
    }


def raw_sha256(settings: Settings, size: int) -> tuple[float, float]:
    """SHA-256 of every entry's bytes (hashing time only, fetched in chunks): entries/s,
    and the mean size of an entry in bytes."""
    reader = open_reader(settings, snapshot=False)
    spent = 0.0
    total = 0
    try:
        for start in range(0, size, 5000):
            chunk = reader.entries(start, min(start + 5000, size))
            started = time.perf_counter()
            for entry in chunk:
                hashlib.sha256(entry).digest()
            spent += time.perf_counter() - started
            total += sum(len(entry) for entry in chunk)
    finally:
        reader.close()
    return rate(size, spent), total / max(size, 1)


def bench_verify(settings: Settings, size: int) -> dict[str, Any]:
    started = time.perf_counter()
    count = raw_read(settings)
    raw_read_per_s = rate(count, time.perf_counter() - started)
    default = run_verify(settings)
    # below PARALLEL_MIN_ENTRIES `ledger verify` is already one streaming pass
    single = run_verify(settings, "--jobs", "1") if size >= PARALLEL_MIN_ENTRIES else default
    sha_per_s, entry_bytes = raw_sha256(settings, size)
    return {
        **default,
        "single_pass_entries_per_s": single["entries_per_s"],
        "single_pass_peak_rss_mb": single["peak_rss_mb"],
        "raw_read_per_s": raw_read_per_s,
        "raw_sha256_per_s": sha_per_s,
        "mean_entry_bytes": entry_bytes,
        "verify_vs_raw_read": default["entries_per_s"] / raw_read_per_s,
    }


# rebuild ------------------------------------------------------------------------------------


def bench_rebuild(settings: Settings) -> dict[str, float]:
    from projections import all_views
    from projections.db import connect_views
    from projections.runner import Runner

    log = open_reader(settings, snapshot=False)
    try:
        head = log.head()
        size = head.size if head else 0
        started = time.perf_counter()
        for start in range(0, size, 2000):
            for raw in log.entries(start, min(start + 2000, size)):
                orjson.loads(raw)
        raw_per_s = rate(size, time.perf_counter() - started)
        db = connect_views(settings)
        try:
            runner = Runner(db, log, all_views())
            runner.setup()
            started = time.perf_counter()
            runner.rebuild()
            rebuild_per_s = rate(size, time.perf_counter() - started)
        finally:
            db.close()
    finally:
        log.close()
    return {
        "entries": size,
        "rebuild_per_s": rebuild_per_s,
        "raw_read_parse_per_s": raw_per_s,
        "rebuild_vs_raw_read": rebuild_per_s / raw_per_s,
    }


# appends and group commit -------------------------------------------------------------------


class CommitProbe:
    """Times each command's wait in the group committer: enqueued → its batch's write began."""

    def __init__(self, app: LedgerApplication) -> None:
        committer = app._committer
        self.enqueued: dict[Any, float] = {}
        self.started: dict[Any, float] = {}
        self.batch_sizes: list[int] = []
        put, commit = committer._put, committer.commit

        def timed_put(events: list[Any], rows: list[Any]) -> Any:
            now = time.perf_counter()
            for event in events:
                self.started[event.originator_id] = now
            self.batch_sizes.append(len(events))
            return put(events, rows)

        def timed_commit(events: Sequence[Any], rows: Sequence[Any] = ()) -> Any:
            now = time.perf_counter()
            for event in events:
                self.enqueued[event.originator_id] = now
            return commit(events, rows)

        committer._put = timed_put
        setattr(committer, "commit", timed_commit)  # noqa: B010 (an instance override)

    def reset(self) -> None:
        self.enqueued.clear()
        self.started.clear()
        self.batch_sizes.clear()

    def waits(self) -> list[float]:
        return [self.started[k] - t for k, t in self.enqueued.items() if k in self.started]


def bench_appends(
    settings: Settings, raw_settings: Settings, appends: int, per_thread: int
) -> dict[str, Any]:
    raw = raw_app(raw_settings)
    for _ in range(20):
        raw.save(Plain(name="warm-up"))
    started = time.perf_counter()
    for k in range(appends):
        raw.save(Plain(name=f"organisation {k}"))
    raw_per_s = rate(appends, time.perf_counter() - started)
    # the bulk import's baseline: raw saves of 1,000 single-event aggregates a transaction
    batch_total = max(1000, appends * 5)
    started = time.perf_counter()
    for start in range(0, batch_total, 1000):
        raw.save(*(Plain(name=f"organisation {k}") for k in range(start, start + 1000)))
    raw_batched_per_s = rate(batch_total // 1000 * 1000, time.perf_counter() - started)
    raw.close()

    app = LedgerApplication(settings)
    probe = CommitProbe(app)
    try:
        for k in range(20):
            app.register_organisation(name=f"Warm-up {k}", org_kind="academic", actor=ACTOR)
        probe.reset()
        alone: list[float] = []
        started = time.perf_counter()
        for k in range(appends):
            t = time.perf_counter()
            app.register_organisation(name=f"Serial {k}", org_kind="academic", actor=ACTOR)
            alone.append(time.perf_counter() - t)
        serial_per_s = rate(appends, time.perf_counter() - started)
        alone_waits = probe.waits()
        probe.reset()

        latencies: list[list[float]] = [[] for _ in range(THREADS)]
        barrier = threading.Barrier(THREADS + 1)
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                barrier.wait()
                for k in range(per_thread):
                    s = time.perf_counter()
                    app.register_organisation(
                        name=f"Threaded {t}.{k}", org_kind="academic", actor=ACTOR
                    )
                    latencies[t].append(time.perf_counter() - s)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        threaded_per_s = rate(per_thread * THREADS, time.perf_counter() - started)
        if errors:
            raise errors[0]
        concurrent = [x for per in latencies for x in per]
        waits = probe.waits()
        batches = list(probe.batch_sizes)
    finally:
        app.close()
    alone_p, concurrent_p, wait_p = (
        percentiles(alone),
        percentiles(concurrent),
        percentiles(waits),
    )
    return {
        "raw_save_per_s": raw_per_s,
        "raw_batched_save_per_s": raw_batched_per_s,
        "append_1_thread_per_s": serial_per_s,
        "append_32_threads_per_s": threaded_per_s,
        "append_vs_raw_save": serial_per_s / raw_per_s,
        "latency": {
            "alone": alone_p,
            "alone_wait": percentiles(alone_waits),
            "concurrent": concurrent_p,
            "concurrent_wait": wait_p,
            "added_median_ms": concurrent_p["median_ms"] - alone_p["median_ms"],
            "added_p99_ms": concurrent_p["p99_ms"] - alone_p["p99_ms"],
            "batches": len(batches),
            "mean_batch": statistics.mean(batches) if batches else 0.0,
            "largest_batch": max(batches, default=0),
        },
    }


# driver -------------------------------------------------------------------------------------


def bench_size(
    new_store: Callable[[str], Settings],
    backend: str,
    size: int,
    args: argparse.Namespace,
    tmp: Path,
) -> tuple[Settings, dict[str, Any]]:
    settings = new_store(backend)
    print(f"[{backend} {size:,}] fill …", file=sys.stderr)
    filled = fill(settings, size, tmp, args.seed)
    entries = log_size(settings)
    result: dict[str, Any] = {"entries": entries, "fill": filled}
    if bulk_module() is not None:
        result["bulk_import_per_s"] = filled["entries_per_s"]
    print(f"[{backend} {size:,}] storage, proofs …", file=sys.stderr)
    result["storage"] = storage(settings, entries)
    result["proofs"] = bench_proofs(settings, entries, args.samples)
    print(f"[{backend} {size:,}] verify …", file=sys.stderr)
    result["verify"] = bench_verify(settings, entries)
    print(f"[{backend} {size:,}] rebuild …", file=sys.stderr)
    result["rebuild"] = bench_rebuild(settings)
    print(f"[{backend} {size:,}] appends …", file=sys.stderr)
    result["appends"] = bench_appends(settings, new_store(backend), args.appends, args.per_thread)
    print(f"[{backend} {size:,}] {json.dumps(result['appends'])}", file=sys.stderr)
    return settings, result


def interleaved_appends(
    stores: dict[int, Settings], appends: int, per_thread: int, rounds: int
) -> dict[str, Any]:
    """Append rates of every size's store measured in alternating blocks.

    On a shared machine the disk's fsync latency and the CPU drift over minutes; the small
    and the large store are measured in turns (``rounds`` blocks each, 1 thread then 32
    threads) and each figure is the median over its blocks, so drift hits every size alike.
    """
    apps = {size: LedgerApplication(settings) for size, settings in stores.items()}
    single: dict[int, list[float]] = {size: [] for size in stores}
    threaded: dict[int, list[float]] = {size: [] for size in stores}
    block = max(1, appends // rounds)
    per = max(1, per_thread // rounds)
    try:
        for r in range(rounds):
            for size, app in apps.items():
                started = time.perf_counter()
                for k in range(block):
                    app.register_organisation(
                        name=f"Interleaved {r}.{k}", org_kind="academic", actor=ACTOR
                    )
                single[size].append(rate(block, time.perf_counter() - started))
                threaded[size].append(concurrent_rate(app, per, f"Interleaved {r}"))
    finally:
        for app in apps.values():
            app.close()
    result: dict[str, Any] = {
        str(size): {
            "append_1_thread_per_s": statistics.median(single[size]),
            "append_32_threads_per_s": statistics.median(threaded[size]),
        }
        for size in stores
    }
    small, large = str(min(stores)), str(max(stores))
    for key in ("append_1_thread_per_s", "append_32_threads_per_s"):
        result[f"{key}_largest_vs_smallest"] = result[large][key] / result[small][key]
    result["rounds"] = rounds
    return result


def concurrent_rate(app: LedgerApplication, per_thread: int, label: str) -> float:
    """Commands/s from THREADS threads writing ``per_thread`` commands each."""
    barrier = threading.Barrier(THREADS + 1)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            barrier.wait()
            for k in range(per_thread):
                app.register_organisation(name=f"{label} {t}.{k}", org_kind="academic", actor=ACTOR)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return rate(per_thread * THREADS, time.perf_counter() - started)


def summarise(backends: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets, each with the measured value and whether it was met."""
    checks: dict[str, Any] = {}
    for backend, data in backends.items():
        sizes = sorted(data["sizes"], key=int)
        small, large = data["sizes"][sizes[0]], data["sizes"][sizes[-1]]
        turns = data.get("interleaved")
        if turns:
            ratio = turns["append_1_thread_per_s_largest_vs_smallest"]
            ratio32 = turns["append_32_threads_per_s_largest_vs_smallest"]
        else:  # one size only: the separate runs
            ratio = (
                large["appends"]["append_1_thread_per_s"]
                / small["appends"]["append_1_thread_per_s"]
            )
            ratio32 = (
                large["appends"]["append_32_threads_per_s"]
                / small["appends"]["append_32_threads_per_s"]
            )
        added = max(data["sizes"][s]["appends"]["latency"]["added_median_ms"] for s in sizes)
        wait99 = max(data["sizes"][s]["appends"]["latency"]["concurrent_wait"]["p99_ms"]
                     for s in sizes)  # fmt: skip
        proof = max(large["proofs"][k]["median_ms"] for k in ("inclusion", "consistency"))
        verify = large["verify"]["entries_per_s"]
        rebuild = large["rebuild"]["rebuild_per_s"]
        checks[backend] = {
            "append_largest_vs_smallest": {"value": ratio, "met": ratio >= 0.8},
            "append_32_largest_vs_smallest": {"value": ratio32, "met": ratio32 >= 0.8},
            "group_commit_added_median_ms": {"value": added, "met": added <= 5.0},
            "group_commit_wait_p99_ms": {"value": wait99, "met": wait99 <= 5.0},
            "proof_median_ms": {"value": proof, "met": proof <= 2.0},
            "verify_per_s": {"value": verify, "met": verify >= 100_000},
            "verify_peak_rss_mb_largest_vs_smallest": {
                "value": large["verify"]["single_pass_peak_rss_mb"]
                / small["verify"]["single_pass_peak_rss_mb"],
                "met": None,
            },
            "rebuild_per_s": {"value": rebuild, "met": rebuild >= 20_000},
        }
        if "bulk_import_per_s" in large:
            bulk = large["bulk_import_per_s"]
            checks[backend]["bulk_import_per_s"] = {
                "value": bulk,
                "met": bulk >= 20_000 if backend == "postgresql" else None,
            }
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000", help="comma-separated log sizes")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--appends", type=int, default=1000, help="single-thread commands")
    parser.add_argument("--per-thread", type=int, default=64, help="commands per writer thread")
    parser.add_argument("--samples", type=int, default=2000, help="proofs sampled")
    parser.add_argument("--rounds", type=int, default=5, help="blocks of interleaved appends")
    parser.add_argument("--seed", type=int, default=1, help="the command file's seed")
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI smoke runs")
    parser.add_argument("--json", type=Path, help="write the machine-readable report here")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.appends, args.per_thread, args.samples = "500,1500", 40, 2, 50
        args.rounds = 2
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    backends: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp_name, scratch_stores() as new_store:
        tmp = Path(tmp_name)
        for backend in args.backends.split(","):
            backends[backend] = {"sizes": {}}
            stores: dict[int, Settings] = {}
            for size in sizes:
                stores[size], backends[backend]["sizes"][str(size)] = bench_size(
                    new_store, backend, size, args, tmp
                )
            if len(stores) > 1:
                print(f"[{backend}] appends, sizes in turn …", file=sys.stderr)
                backends[backend]["interleaved"] = interleaved_appends(
                    stores, args.appends, args.per_thread * 4, args.rounds
                )
    results = {
        "sizes": sizes,
        "threads": THREADS,
        "appends": args.appends,
        "per_thread": args.per_thread,
        "samples": args.samples,
        "bulk": bulk_module() is not None,
        "backends": backends,
        "targets": summarise(backends),
        "run_id": uuid.uuid4().hex[:8],
    }
    print(
        "| backend | entries | fill/s | bytes/entry | inclusion ms p50/p99 | verify/s "
        "| verify peak MB (1 pass) | rebuild/s | append/s 1 thread | append/s 32 threads |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for backend, data in backends.items():
        for size, r in data["sizes"].items():
            print(
                f"| {backend} | {int(size):,} | {r['fill']['entries_per_s']:,.0f} "
                f"| {r['storage']['bytes_per_entry']:,.0f} "
                f"| {r['proofs']['inclusion']['median_ms']:.2f} / "
                f"{r['proofs']['inclusion']['p99_ms']:.2f} "
                f"| {r['verify']['entries_per_s']:,.0f} "
                f"| {r['verify']['single_pass_peak_rss_mb']:.0f} "
                f"| {r['rebuild']['rebuild_per_s']:,.0f} "
                f"| {r['appends']['append_1_thread_per_s']:,.0f} "
                f"| {r['appends']['append_32_threads_per_s']:,.0f} |"
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
