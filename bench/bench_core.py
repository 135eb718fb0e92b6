"""Core benchmark: chained appends against raw eventsourcing saves, verify against a raw read.

Every figure is printed beside a baseline measured in the same run on the same store, so the
ratios mean something on any machine. Run with ``make bench`` (or ``--quick`` for a smoke run).

    python bench/bench_core.py [--appends N] [--verify-size N] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
from _stores import scratch_stores
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from ledger.actors import Actor
from ledger.aggregates import Organisation
from ledger.application import LedgerApplication
from ledger.settings import Settings
from ledger.storage import open_reader
from ledger.verify import verify_log, verify_store

ACTOR = Actor("bench", "recorder", "bench-org")


class Plain(Aggregate):
    """A single-event aggregate for the raw eventsourcing baseline."""

    def __init__(self, name: str) -> None:
        self.name = name


@contextmanager
def stores(
    backends: list[str],
) -> Iterator[list[tuple[str, Callable[[], Settings], dict[str, str]]]]:
    """Fresh (settings factory, raw env) per backend; each call of the factory is a new store."""
    with scratch_stores() as new_store:
        yield [(name, functools.partial(new_store, name), {}) for name in backends]


def raw_app(settings: Settings) -> Application[Any]:
    """A plain eventsourcing application on the same kind of store, without the chain."""
    if settings.database_url:
        from ledger.storage.postgres import env_from_url

        env = env_from_url(settings.database_url)
        env.update(POSTGRES_SCHEMA=settings.pg_schema, CREATE_TABLE="y")
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.data_dir / "raw.sqlite3"),
        }
    return Application(env=env)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def bench_appends(
    settings_factory: Callable[[], Settings], n: int, rounds: int = 7
) -> dict[str, float]:
    """Single-event aggregates, one transaction each: raw save vs chained save vs command.

    The three run interleaved in ``rounds`` blocks on their own stores, and each figure is
    the median over blocks, so drift in the disk's fsync latency hits all three alike.
    """
    raw = raw_app(settings_factory())
    app = LedgerApplication(settings_factory())
    now = datetime.now(UTC)
    for _ in range(20):
        raw.save(Plain(name="warm-up"))
        app.register_organisation(name="warm-up", org_kind="public_body", actor=ACTOR)
    block = max(1, n // rounds)
    rates: dict[str, list[float]] = {"raw": [], "chained": [], "command": []}
    for r in range(rounds):
        started = time.perf_counter()
        for k in range(block):
            raw.save(Plain(name=f"organisation {r}.{k}"))
        rates["raw"].append(rate(block, time.perf_counter() - started))
        started = time.perf_counter()
        for k in range(block):
            org = Organisation.register(
                name=f"organisation {r}.{k}", org_kind="public_body", actor=ACTOR, at=now
            )
            app._commit(org)
        rates["chained"].append(rate(block, time.perf_counter() - started))
        started = time.perf_counter()
        for k in range(block):
            app.register_organisation(
                name=f"organisation {r}.{k}", org_kind="public_body", actor=ACTOR
            )
        rates["command"].append(rate(block, time.perf_counter() - started))
    raw.close()
    app.close()
    ratios = [c / r for c, r in zip(rates["chained"], rates["raw"], strict=True)]
    return {
        "raw_save_per_s": statistics.median(rates["raw"]),
        "chained_save_per_s": statistics.median(rates["chained"]),
        "command_per_s": statistics.median(rates["command"]),
        "chained_vs_raw": statistics.median(ratios),
    }


def bench_verify(settings_factory: Callable[[], Settings], size: int) -> dict[str, float]:
    """Fill a log in large transactions, then verify it against a raw read of the same rows."""
    settings = settings_factory()
    app = LedgerApplication(settings)
    now = datetime.now(UTC)
    batch = 500
    for start in range(0, size, batch):
        orgs = [
            Organisation.register(
                name=f"organisation {k}", org_kind="academic", actor=ACTOR, at=now
            )
            for k in range(start, min(start + batch, size))
        ]
        app.save(*orgs)
    app.close()

    reader = open_reader(settings)
    started = time.perf_counter()
    count = raw_read(settings)
    raw_seconds = time.perf_counter() - started
    assert count == size
    started = time.perf_counter()
    report = verify_log(reader)
    single_seconds = time.perf_counter() - started
    reader.close()
    assert report.ok
    assert report.size == size
    started = time.perf_counter()
    report = verify_store(settings)  # what `ledger verify` runs: in parallel when large
    verify_seconds = time.perf_counter() - started
    assert report.ok
    assert report.size == size
    raw_rate, verify_rate = rate(size, raw_seconds), rate(size, verify_seconds)
    return {
        "entries": size,
        "raw_read_per_s": raw_rate,
        "verify_single_pass_per_s": rate(size, single_seconds),
        "verify_per_s": verify_rate,
        "verify_vs_raw_read": verify_rate / raw_rate,
    }


def raw_read(settings: Settings) -> int:
    """The baseline: fetch the same joined rows verify reads, touching each, checking nothing."""
    query = (
        "SELECT e.idx, e.entry, e.entry_hash, s.originator_id, s.originator_version, "
        "s.topic, s.state FROM ledger_entries e LEFT JOIN ledger_events s ON {on} "
        "ORDER BY e.idx"
    )
    count = 0
    if settings.database_url:
        with (
            psycopg.connect(
                settings.database_url, options=f"-c search_path={settings.pg_schema}"
            ) as conn,
            conn.cursor(name="raw") as cursor,
        ):
            cursor.itersize = 5000
            cursor.execute(query.format(on="s.notification_id = e.event_id"))
            for _row in cursor:
                count += 1
        return count
    import sqlite3

    db = sqlite3.connect(f"file:{settings.sqlite_path}?mode=ro", uri=True)
    rows = db.execute(query.format(on="s.rowid = e.event_id"))
    while batch := rows.fetchmany(2000):
        for _row in batch:
            count += 1
    db.close()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--verify-size", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI smoke runs")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--json", type=Path, help="write the machine-readable report here")
    args = parser.parse_args()
    if args.quick:
        args.appends, args.verify_size = 200, 5_000
    results: dict[str, Any] = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "appends": args.appends,
        "backends": {},
    }
    with stores(args.backends.split(",")) as configured:
        for name, factory, _env in configured:
            print(f"[{name}] appends ×{args.appends} …", file=sys.stderr)
            appends = bench_appends(factory, args.appends)
            print(f"[{name}] verify ×{args.verify_size} …", file=sys.stderr)
            verify = bench_verify(factory, args.verify_size)
            results["backends"][name] = {**appends, **verify}

    print(
        "| backend | raw save/s | chained save/s | ratio (≥0.8) | command/s "
        "| raw read/s | verify/s, 1 pass | verify/s | ratio (≥0.5) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results["backends"].items():
        print(
            f"| {name} | {r['raw_save_per_s']:,.0f} | {r['chained_save_per_s']:,.0f} "
            f"| {r['chained_vs_raw']:.2f} | {r['command_per_s']:,.0f} "
            f"| {r['raw_read_per_s']:,.0f} | {r['verify_single_pass_per_s']:,.0f} "
            f"| {r['verify_per_s']:,.0f} "
            f"| {r['verify_vs_raw_read']:.2f} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
