"""Read-model benchmark: rebuild rate against a raw read of the log, and a long history.

Records N entries of proposal activity (tablings, amendments, decisions, revisions) plus one
proposal revised 200 times, then times, beside a raw read of the same entries (fetch + JSON
parse, nothing applied):

* ``Runner.rebuild()`` of every view (one process), and ``rebuild(workers=2)`` (the views
  split across two processes);
* ``Runner.rebuild([view])`` of each view alone, in one process;

each over views already built (so the reset's emptying counts), after one untimed rebuild,
as the median of ``--repeat`` runs (other load on the machine makes single runs noisy);
and the median time to read the 200-version proposal's versions with provenance.

    python bench/bench_projections.py [--entries N] [--repeat N] [--quick]
        [--backends sqlite,postgresql] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from _stores import scratch_stores

from ledger.actors import Actor
from ledger.aggregates import Organisation, Process, Proposal
from ledger.application import LedgerApplication
from ledger.settings import Settings
from ledger.storage import open_reader
from projections import all_views
from projections.db import connect_views
from projections.proposals import versions
from projections.runner import Runner

ACTOR = Actor("bench", "recorder", "bench-org")


def fill(settings: Settings, entries: int) -> str:
    """Record proposal activity in large transactions; return the long-history proposal id."""
    app = LedgerApplication(settings)
    now = datetime.now(UTC)
    process = Process.start(title="Bench", summary="", actor=ACTOR, at=now)
    process.add_strand(strand_id="s", title="S", summary="", actor=ACTOR, at=now)
    org = Organisation.register(name="Org", org_kind="academic", actor=ACTOR, at=now)
    app.save(process, org)
    sections = [
        {"id": f"s{k}", "heading": f"Section {k}", "text": f"Text of section {k}."}
        for k in range(5)
    ]

    def table() -> Proposal:
        return Proposal.table(
            process_id=str(process.id),
            strand_id="s",
            title="P",
            sections=sections,
            sponsor_org=str(org.id),
            meeting_id=None,
            actor=ACTOR,
            at=now,
        )

    long = table()
    for v in range(1, 200):
        long.revise(
            base_version=v,
            amendment_ids=[],
            note=f"revision {v}",
            sections=[{**s, "text": f"{s['text']} v{v}"} for s in sections],
            meeting_id=None,
            actor=ACTOR,
            at=now,
        )
    app.save(long)
    made = 203
    while made < entries:
        batch = []
        for _ in range(50):
            p = table()
            for a in range(4):
                amendment = p.propose_amendment(
                    base_version=p.text_version,
                    changes=[{"op": "replace", "section_id": "s1", "text": f"new {a}"}],
                    rationale="r",
                    proposer_org=str(org.id),
                    meeting_id=None,
                    actor=ACTOR,
                    at=now,
                )
                p.decide_amendment(
                    amendment_id=amendment,
                    decision="agreed",
                    consensus="banked",
                    dissenting_orgs=[],
                    meeting_id=None,
                    note="",
                    actor=ACTOR,
                    at=now,
                )
                p.revise(
                    base_version=p.text_version,
                    amendment_ids=[amendment],
                    note="",
                    sections=None,
                    meeting_id=None,
                    actor=ACTOR,
                    at=now,
                )
            batch.append(p)
        app.save(*batch)
        made += 50 * 13
    app.close()
    return str(long.id)


def timed_rebuild(runner: Runner, names: list[str] | None, workers: int, repeat: int) -> float:
    """Median seconds of ``repeat`` rebuilds of ``names`` (None: every view)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        runner.rebuild(names, workers=workers)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3, help="rebuilds timed (median)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for smoke runs")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.entries, args.repeat = min(args.entries, 2_000), 1
    results: dict[str, Any] = {}
    with scratch_stores() as new_store:
        for backend in args.backends.split(","):
            settings = new_store(backend)
            print(f"[{backend}] recording …", file=sys.stderr)
            long_id = fill(settings, args.entries)
            log = open_reader(settings, snapshot=False)
            head = log.head()
            size = head.size if head else 0
            started = time.perf_counter()
            for start in range(0, size, 2000):
                for raw in log.entries(start, min(start + 2000, size)):
                    orjson.loads(raw)
            raw_rate = size / (time.perf_counter() - started)
            db = connect_views(settings)
            runner = Runner(db, log, all_views(), settings=settings)
            runner.setup()
            print(f"[{backend}] rebuilding …", file=sys.stderr)
            runner.rebuild(workers=1)  # untimed: builds the views the timed runs replace
            serial = timed_rebuild(runner, None, 1, args.repeat)
            parallel = timed_rebuild(runner, None, 2, args.repeat)
            per_view = {
                name: size / timed_rebuild(runner, [name], 1, args.repeat) for name in runner.views
            }
            at = runner.as_of_index(None)
            timings = []
            for _ in range(50):
                started = time.perf_counter()
                found = versions(db, long_id, at)
                timings.append(time.perf_counter() - started)
            assert len(found) == 200
            results[backend] = {
                "entries": size,
                "raw_read_per_s": raw_rate,
                "rebuild_per_s": size / serial,
                "rebuild_vs_raw_read": size / serial / raw_rate,
                "rebuild_2_processes_per_s": size / parallel,
                "rebuild_2_processes_split": len(runner.plan(2)) == 2,
                "rebuild_per_view_per_s": per_view,
                "history_200_versions_median_ms": statistics.median(timings) * 1000,
            }
            db.close()
            log.close()
    print(
        "| backend | entries | raw read/s | rebuild/s | ratio | rebuild/s, 2 processes "
        "| 200-version history ms (median) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        split = "" if r["rebuild_2_processes_split"] else " (not split: too few entries)"
        print(
            f"| {name} | {r['entries']:,} | {r['raw_read_per_s']:,.0f} | "
            f"{r['rebuild_per_s']:,.0f} | {r['rebuild_vs_raw_read']:.2f} | "
            f"{r['rebuild_2_processes_per_s']:,.0f}{split} | "
            f"{r['history_200_versions_median_ms']:.2f} |"
        )
    views = list(next(iter(results.values()))["rebuild_per_view_per_s"]) if results else []
    print()
    print("| backend | " + " | ".join(views) + " |")
    print("|---|" + "---:|" * len(views))
    for name, r in results.items():
        rates = r["rebuild_per_view_per_s"]
        print(f"| {name} | " + " | ".join(f"{rates[v]:,.0f}" for v in views) + " |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
