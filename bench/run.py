"""Run the whole benchmark suite; write bench/results/report.json and report.md.

Each part runs as its own subprocess with its ``--json`` output, so the memory and CPU of
one part do not affect another; the driver merges the parts into one machine-readable
report and renders a Markdown table (every figure beside a baseline measured in the same
run) that can be pasted into docs/PERFORMANCE.md as it is.

    python bench/run.py [--smoke] [--out bench/results] [--parts core,log,...]
                        [--backends sqlite,postgresql]

``--smoke`` runs every part at a small size (well under a minute, for CI). Without it the
full sizes run (1,000,000 entries in the log and scale parts: hours on a small machine).
PostgreSQL that does not answer is skipped with the reason in the report, except under
``CI=true``, where that is an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PG_URL = os.environ.get("LEDGER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def _joined(backends: list[str]) -> list[str]:
    return ["--backends", ",".join(backends)]


def _repeated(backends: list[str]) -> list[str]:
    return [arg for backend in backends for arg in ("--backend", backend)]


@dataclass(frozen=True)
class Part:
    name: str
    title: str
    argv: list[str]  # the part's command, without options
    smoke: list[str]  # options of the smoke run
    full: Callable[[int], list[str]]  # options of the full run at the given large size
    backends: Callable[[list[str]], list[str]] = _joined
    needs: str | None = None  # an executable the part needs

    def command(self, out: Path, smoke: bool, size: int, backends: list[str]) -> list[str]:
        options = self.smoke if smoke else self.full(size)
        return [*self.argv, *options, *self.backends(backends), "--json", str(out)]


def _script(name: str) -> list[str]:
    return [sys.executable, str(BENCH / name)]


FULL_SIZE = 1_000_000
PARTS: tuple[Part, ...] = (
    Part(
        "core",
        "Appends and verify (bench_core.py)",
        _script("bench_core.py"),
        ["--appends", "35", "--verify-size", "1000"],
        lambda size: ["--verify-size", str(min(size, 100_000))],
    ),
    Part(
        "log",
        "Proofs and audit (bench_log.py)",
        _script("bench_log.py"),
        ["--size", "1000", "--samples", "50"],
        lambda size: ["--size", str(size)],
    ),
    Part(
        "projections",
        "Read-model rebuild (bench_projections.py)",
        _script("bench_projections.py"),
        ["--entries", "700"],
        lambda size: ["--entries", str(min(size, 50_000))],
    ),
    Part(
        "scale",
        "Scale: the smallest log against the largest (bench_scale.py)",
        _script("bench_scale.py"),
        ["--quick"],
        lambda size: ["--sizes", f"10000,{size}"],
    ),
    Part(
        "api",
        "HTTP API under load (bench_api.py, wrk)",
        [sys.executable, "-m", "bench.bench_api"],
        [
            "--seconds",
            "1",
            "--warmup",
            "1",
            "--workers",
            "1",
            "--appends",
            "64",
            "--paced-rps",
            "0",
        ],
        lambda _size: [],
        backends=_repeated,
        needs="wrk",
    ),
)
SECTIONS = tuple(part.name for part in PARTS)


# the machine ---------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def postgres_version() -> tuple[str | None, str | None]:
    """(server version, None) or (None, the reason PostgreSQL cannot be used)."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return (str(row[0]) if row else "unknown"), None
    except Exception as exc:
        return None, f"no PostgreSQL at {PG_URL}: {str(exc).strip()[:160]}"


def machine(pg_version: str | None) -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version,
        "eventsourcing": metadata.version("eventsourcing"),
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
    }


# running the parts ---------------------------------------------------------------------------


def run_part(part: Part, smoke: bool, size: int, backends: list[str], tmp: Path) -> dict[str, Any]:
    if part.needs and shutil.which(part.needs) is None:
        return {"status": "skipped", "reason": f"`{part.needs}` is not installed"}
    out = tmp / f"{part.name}.json"
    command = part.command(out, smoke, size, backends)
    print(f"== {part.name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = round(time.perf_counter() - started, 1)
    print(f"== {part.name}: exit {done.returncode} in {seconds} s", file=sys.stderr, flush=True)
    if done.returncode != 0 or not out.exists():
        return {
            "status": "failed",
            "seconds": seconds,
            "returncode": done.returncode,
            "stderr": done.stderr[-3000:],
        }
    return {"status": "ok", "seconds": seconds, "result": json.loads(out.read_text())}


# figures: every measurement beside its baseline -------------------------------------------


@dataclass(frozen=True)
class Figure:
    section: str
    backend: str
    size: int | None
    name: str
    value: float
    unit: str
    baseline: str
    baseline_value: float
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline_value if self.baseline_value else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "backend": self.backend,
            "size": self.size,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_value": self.baseline_value,
            "ratio": self.ratio,
            "note": self.note,
        }


def _core(result: dict[str, Any]) -> Iterator[Figure]:
    for backend, r in result["backends"].items():
        raw = r["raw_save_per_s"]
        yield Figure(
            "core",
            backend,
            None,
            "chained save",
            r["chained_save_per_s"],
            "/s",
            "raw eventsourcing save",
            raw,
            "one transaction each",
        )
        yield Figure(
            "core",
            backend,
            None,
            "command (register_organisation)",
            r["command_per_s"],
            "/s",
            "raw eventsourcing save",
            raw,
        )
        yield Figure(
            "core",
            backend,
            r["entries"],
            "verify (parallel)",
            r["verify_per_s"],
            "/s",
            "raw row read",
            r["raw_read_per_s"],
        )
        yield Figure(
            "core",
            backend,
            r["entries"],
            "verify (one pass)",
            r["verify_single_pass_per_s"],
            "/s",
            "raw row read",
            r["raw_read_per_s"],
        )


def _log(result: dict[str, Any]) -> Iterator[Figure]:
    size = result["size"]
    for backend, r in result["backends"].items():
        row = r["row_read"]
        for proof in ("inclusion", "consistency"):
            for stat in ("median", "p99"):
                yield Figure(
                    "log",
                    backend,
                    size,
                    f"{proof} proof {stat}",
                    r[proof][f"{stat}_ms"],
                    "ms",
                    f"raw row read {stat}",
                    row[f"{stat}_ms"],
                )
        audit = r["audit"]
        yield Figure(
            "log",
            backend,
            size,
            "audit from a bundle",
            audit["entries_per_s"],
            "/s",
            "raw SHA-256",
            audit["raw_sha256_per_s"],
            f"peak {audit['max_rss_mb']:.0f} MB; fill {r['fill_per_s']:,.0f}/s",
        )


def _projections(result: dict[str, Any]) -> Iterator[Figure]:
    for backend, r in result.items():
        yield Figure(
            "projections",
            backend,
            r["entries"],
            "rebuild every view",
            r["rebuild_per_s"],
            "/s",
            "raw read + JSON parse",
            r["raw_read_per_s"],
            f"200-version history {r['history_200_versions_median_ms']:.2f} ms",
        )


def _scale(result: dict[str, Any]) -> Iterator[Figure]:
    for backend, data in result["backends"].items():
        for size_text, r in data["sizes"].items():
            size = int(size_text)
            a, lat, v = r["appends"], r["appends"]["latency"], r["verify"]
            raw, p = a["raw_save_per_s"], r["proofs"]

            def fig(
                name: str,
                value: float,
                unit: str,
                base: str,
                base_value: float,
                note: str = "",
                backend: str = backend,
                size: int = size,
            ) -> Figure:
                return Figure("scale", backend, size, name, value, unit, base, base_value, note)

            if "bulk_import_per_s" in r:
                yield fig(
                    "bulk import",
                    r["bulk_import_per_s"],
                    "/s",
                    "raw save, 1,000 a transaction",
                    a["raw_batched_save_per_s"],
                    f"{r['fill']['batches']} batches",
                )
            yield fig("append, 1 thread", a["append_1_thread_per_s"], "/s", "raw save", raw)
            turns = data.get("interleaved", {}).get(size_text)
            if turns:
                note = f"sizes measured in turns, median of {data['interleaved']['rounds']} blocks"
                yield fig(
                    "append, 1 thread (in turns)",
                    turns["append_1_thread_per_s"],
                    "/s",
                    "raw save",
                    raw,
                    note,
                )
                yield fig(
                    "append, 32 threads (in turns)",
                    turns["append_32_threads_per_s"],
                    "/s",
                    "raw save",
                    raw,
                    note,
                )
            yield fig(
                "append, 32 threads",
                a["append_32_threads_per_s"],
                "/s",
                "raw save",
                raw,
                f"{lat['batches']} batches, mean {lat['mean_batch']:.1f}",
            )
            for stat in ("median", "p99"):
                yield fig(
                    f"latency under 32 writers {stat}",
                    lat["concurrent"][f"{stat}_ms"],
                    "ms",
                    f"latency alone {stat}",
                    lat["alone"][f"{stat}_ms"],
                )
                yield fig(
                    f"wait for its batch {stat}",
                    lat["concurrent_wait"][f"{stat}_ms"],
                    "ms",
                    "latency alone median",
                    lat["alone"]["median_ms"],
                )
            for proof in ("inclusion", "consistency"):
                for stat in ("median", "p99"):
                    yield fig(
                        f"{proof} proof {stat}",
                        p[proof][f"{stat}_ms"],
                        "ms",
                        f"raw row read {stat}",
                        p["row_read"][f"{stat}_ms"],
                    )
            memory = (
                f"peak {v['peak_rss_mb']:.0f} MB (+ workers {v['workers_peak_rss_mb']:.0f}"
                f" MB); one pass {v['single_pass_entries_per_s']:,.0f}/s, peak "
                f"{v['single_pass_peak_rss_mb']:.0f} MB"
            )
            yield fig(
                "ledger verify",
                v["entries_per_s"],
                "/s",
                "raw row read",
                v["raw_read_per_s"],
                memory,
            )
            yield fig(
                "ledger verify", v["entries_per_s"], "/s", "raw SHA-256", v["raw_sha256_per_s"]
            )
            yield fig(
                "projection rebuild",
                r["rebuild"]["rebuild_per_s"],
                "/s",
                "raw read + JSON parse",
                r["rebuild"]["raw_read_parse_per_s"],
            )
            tables = sorted(r["storage"]["tables"].items(), key=lambda kv: -kv[1])[:4]
            breakdown = ", ".join(f"{name} {n / size:,.0f}" for name, n in tables)
            yield fig(
                "database bytes per entry",
                r["storage"]["bytes_per_entry"],
                "B",
                "entry bytes",
                v["mean_entry_bytes"],
                breakdown,
            )


def _api(result: dict[str, Any]) -> Iterator[Figure]:
    for backend, r in result["backends"].items():
        yield Figure(
            "api",
            backend,
            None,
            "HTTP writes acknowledged",
            r["write_acked_per_s"],
            "/s",
            "in-process, 32 threads",
            r["in_process_appends_per_s_32_threads"],
            f"p50 {r['write_p50_ms']} ms, p99 {r['write_p99_ms']} ms",
        )
        yield Figure(
            "api",
            backend,
            None,
            "HTTP history reads (cached)",
            r["read_rps"],
            "/s",
            "uncached reads",
            r["uncached_read_rps"],
            f"p50 {r['read_p50_ms']} ms, p99 {r['read_p99_ms']} ms",
        )


EXTRACT: dict[str, Callable[[dict[str, Any]], Iterator[Figure]]] = {
    "core": _core,
    "log": _log,
    "projections": _projections,
    "scale": _scale,
    "api": _api,
}


def figures(parts: dict[str, dict[str, Any]]) -> list[Figure]:
    found: list[Figure] = []
    for name, part in parts.items():
        if part["status"] == "ok":
            found += EXTRACT[name](part["result"])
    return found


# the Markdown report ------------------------------------------------------------------------


def _number(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.3f} ms" if value < 1 else f"{value:,.2f} ms"
    if unit == "B":
        return f"{value:,.0f} B"
    return f"{value:,.0f}{unit}"


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    kind = "smoke run" if report["smoke"] else f"full run, up to {report['size']:,} entries"
    lines = [
        f"### Benchmark results ({kind}, {m['date']})",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['ram_gb']} GB RAM; {m['os']}; "
        f"Python {m['python']}, SQLite {m['sqlite']}, PostgreSQL {m['postgresql'] or 'not run'}"
        f", eventsourcing {m['eventsourcing']}. Load average at start: "
        f"{', '.join(str(x) for x in m['load_average_at_start'] or [])}.",
        "",
        "Every figure is beside a baseline measured in the same run on the same store; "
        "ratio = figure / baseline (for rates higher is better, for times lower is better).",
        "",
    ]
    for note in report.get("notes", []):
        lines += [f"Note: {note}", ""]
    titles = {part.name: part.title for part in PARTS}
    for name, part in report["parts"].items():
        lines += [f"#### {titles[name]}", ""]
        if part["status"] != "ok":
            why = part.get("reason") or f"exit {part.get('returncode')}"
            last = [line for line in part.get("stderr", "").splitlines() if line.strip()]
            if last:
                why += f" (`{last[-1].strip()[:200]}`)"
            lines += [f"{part['status'].capitalize()}: {why}.", ""]
            continue
        lines += [
            "| store | entries | figure | value | baseline | baseline value | ratio | notes |",
            "|---|---:|---|---:|---|---:|---:|---|",
        ]
        for f in (f for f in report["figures"] if f["section"] == name):
            size = f"{f['size']:,}" if f["size"] is not None else ""
            lines.append(
                f"| {f['backend']} | {size} | {f['name']} | {_number(f['value'], f['unit'])} "
                f"| {f['baseline']} | {_number(f['baseline_value'], f['unit'])} "
                f"| {f['ratio']:.2f} | {f['note']} |"
            )
        lines += ["", f"_{part['seconds']} s_", ""]
    targets = report.get("targets") or {}
    if targets:
        lines += [
            "#### Targets (scale part, largest size against the smallest)",
            "",
            "| store | target | measured | met |",
            "|---|---|---:|---|",
        ]
        for backend, checks in targets.items():
            for name, check in checks.items():
                met = {True: "yes", False: "**no**", None: "n/a"}[check["met"]]
                lines.append(
                    f"| {backend} | {TARGET_TEXT.get(name, name)} | {check['value']:,.2f} | {met} |"
                )
        lines.append("")
    return "\n".join(lines)


TARGET_TEXT = {
    "append_largest_vs_smallest": "append rate (1 thread) at the largest size ÷ smallest ≥ 0.8",
    "append_32_largest_vs_smallest": "append rate (32 threads) largest ÷ smallest ≥ 0.8",
    "group_commit_added_median_ms": "group commit added median latency ≤ 5 ms",
    "group_commit_wait_p99_ms": "p99 wait before a command's batch starts ≤ 5 ms",
    "proof_median_ms": "inclusion/consistency proof median ≤ 2 ms",
    "verify_per_s": "ledger verify ≥ 100,000 entries/s",
    "verify_peak_rss_mb_largest_vs_smallest": "verify peak memory (one pass) largest ÷ smallest",
    "rebuild_per_s": "projection rebuild ≥ 20,000 entries/s",
    "bulk_import_per_s": "bulk import ≥ 20,000 entries/s (PostgreSQL)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, for CI")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--parts", default=",".join(SECTIONS))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument(
        "--size",
        type=int,
        default=FULL_SIZE,
        help="the large log size of the full run (log and scale parts; default 1,000,000)",
    )
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    notes: list[str] = []
    pg_version, pg_missing = postgres_version()
    if "postgresql" in backends and pg_missing:
        if os.environ.get("CI", "").lower() == "true":
            sys.exit(f"CI=true but {pg_missing}")
        backends.remove("postgresql")
        notes.append(f"PostgreSQL skipped: {pg_missing}")
    wanted = [p for p in PARTS if p.name in args.parts.split(",")]
    parts: dict[str, dict[str, Any]] = {}
    report: dict[str, Any] = {
        "smoke": args.smoke,
        "size": None if args.smoke else args.size,
        "machine": machine(pg_version),
        "backends": backends,
        "notes": notes,
        "parts": parts,
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for part in wanted:
            parts[part.name] = run_part(part, args.smoke, args.size, backends, Path(tmp))
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["figures"] = [f.as_dict() for f in figures(parts)]
    scale = parts.get("scale", {})
    report["targets"] = scale["result"]["targets"] if scale.get("status") == "ok" else {}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "report.md").write_text(render(report))
    print((args.out / "report.md").read_text())
    failed = [name for name, part in parts.items() if part["status"] == "failed"]
    if failed:
        for name in failed:
            print(f"== {name} failed:\n{parts[name]['stderr']}", file=sys.stderr)
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
