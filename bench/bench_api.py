"""HTTP API under load on loopback: proposal-history reads and officials' writes.

Starts a real `ledger serve` (uvicorn, ``--workers`` processes) over a fresh store holding the
demo process, then drives it with wrk (C, event-driven: it costs the 2-core machine far less
CPU than a Python client would) at 32 concurrent connections:

* reads: GET /proposals/{id}/history (the proposal with the most history), flat out and then
  paced near 1,000 requests/s (each connection waits between requests) for the latency a
  client sees when the server is not saturated;
* writes: POST /organisations with a fresh Idempotency-Key each, as recorder tokens (one per
  wrk thread), on PostgreSQL (and SQLite for comparison); only 201s count.

The baseline, measured in the same run: the in-process append rate of the same command
(LedgerApplication.register_organisation) from 1 thread and from 32 threads.

    .venv/bin/python -m bench.bench_api [--seconds 10] [--workers 2] [--backend postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench._stores import scratch_stores
from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.demo import record_demo
from ledger.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
ADMIN = Actor("bench", "admin", "")
CONNECTIONS = 32

WRITE_LUA = """
local counter = 0
local tokens = {%(tokens)s}
local threads = {}
function setup(thread)
  thread:set("token", tokens[(#threads %% #tokens) + 1])
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  created = 0
  other = 0
end
function request()
  counter = counter + 1
  local key = "bench-" .. tid .. "-" .. counter .. "-" .. math.random(1, 1000000000)
  local body = '{"name": "Bench organisation ' .. key .. '", "org_kind": "civil_society"}'
  return wrk.format("POST", "/organisations", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = key,
  }, body)
end
function response(status, headers, body)
  if status == 201 then created = created + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local created_total, other_total = 0, 0
  for _, t in ipairs(threads) do
    created_total = created_total + t:get("created")
    other_total = other_total + t:get("other")
  end
  io.write(string.format("CREATED %%d OTHER %%d\\n", created_total, other_total))
end
"""


PACED_LUA = """
function delay()
  return %(delay_ms)d
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(
        LEDGER_DATA_DIR=str(settings.data_dir),
        LEDGER_DEMO="1",
        LEDGER_LOG_NAME=settings.log_name,
        LEDGER_WRITE_RATE="0",  # the benchmark measures the store, not the per-token limit
    )
    if settings.database_url:
        env.update(LEDGER_DATABASE_URL=settings.database_url, LEDGER_PG_SCHEMA=settings.pg_schema)
    env.update(extra)
    return env


class Served:
    def __init__(self, settings: Settings, workers: int, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ledger.cli", "serve", "--port", str(self.port),
             "--workers", str(workers), "--log-level", "warning"],
            cwd=ROOT, env=env_for(settings, **env),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def wrk(url: str, seconds: int, script: str | None = None) -> dict[str, float]:
    """Run wrk; requests/s, latency percentiles (ms) and, with the write script, counts."""
    cmd = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = {}
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["rps"] = float(found.group(1)) if found else 0.0
    for pct in ("50", "90", "99"):
        found = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)\b", out)
        if found:
            value, unit = float(found.group(1)), found.group(2)
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
            result[f"p{pct}"] = value * scale
    found = re.search(r"CREATED (\d+) OTHER (\d+)", out)
    if found:
        result["created"], result["other"] = float(found.group(1)), float(found.group(2))
    found = re.search(r"(\d+) requests in ([\d.]+)(s|m)", out)
    if found:
        result["requests"] = float(found.group(1))
        result["elapsed"] = float(found.group(2)) * (60 if found.group(3) == "m" else 1)
    return result


def in_process_rates(settings: Settings, count: int) -> tuple[float, float]:
    """Appends/s of the same command in-process: one thread, then 32 threads."""
    app = LedgerApplication(settings)
    try:
        started = time.perf_counter()
        for i in range(count):
            app.register_organisation(name=f"Serial {i}", org_kind="department", actor=ADMIN)
        serial = count / (time.perf_counter() - started)
        per_thread = max(1, count // CONNECTIONS)
        barrier = threading.Barrier(CONNECTIONS + 1)

        def work(t: int) -> None:
            barrier.wait()
            for i in range(per_thread):
                app.register_organisation(
                    name=f"Threaded {t}-{i}", org_kind="department", actor=ADMIN
                )

        threads = [threading.Thread(target=work, args=(t,)) for t in range(CONNECTIONS)]
        for thread in threads:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        threaded = per_thread * CONNECTIONS / (time.perf_counter() - started)
    finally:
        app.close()
    return serial, threaded


def run_backend(backend: str, new_store: object, args: argparse.Namespace) -> dict[str, object]:
    settings: Settings = new_store(backend)  # type: ignore[operator]
    app = LedgerApplication(settings)
    try:
        record_demo(app)
        tokens = [
            app.issue_token(principal=f"bench-{i}", org="", role="recorder", actor=ADMIN)[1]
            for i in range(2)
        ]
    finally:
        app.close()
    serial, threaded = in_process_rates(settings, args.appends)
    server = Served(settings, args.workers)
    try:
        # The read models may still be catching up with the log when /readyz answers.
        deadline = time.monotonic() + 30
        while True:
            with urllib.request.urlopen(server.base + "/proposals?limit=50") as r:
                proposals = json.load(r)["items"]
            if proposals or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if not proposals:
            raise RuntimeError("the API lists no proposals 30 s after it became ready")
        longest, best = proposals[0]["id"], -1
        for item in proposals:
            with urllib.request.urlopen(f"{server.base}/proposals/{item['id']}/history") as r:
                size = len(json.load(r)["items"])
            if size > best:
                longest, best = item["id"], size
        base = server.base
        history_url = f"{base}/proposals/{longest}/history"
        wrk(history_url, args.warmup)  # warm up
        reads = wrk(history_url, args.seconds)
        # The same read paced near the target rate (each connection waits between requests),
        # for the latency a client sees when the server is not saturated.
        paced: dict[str, float] = {}
        if args.paced_rps > 0:
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
                delay = int(CONNECTIONS * 1000 / args.paced_rps) - 2
                script.write(PACED_LUA % {"delay_ms": delay})
            try:
                paced = wrk(history_url, args.seconds, script.name)
            finally:
                os.unlink(script.name)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(WRITE_LUA % {"tokens": ", ".join(f'"{t}"' for t in tokens)})
        try:
            writes = wrk(server.base, args.seconds, script.name)
        finally:
            os.unlink(script.name)
    finally:
        server.stop()
    # The same read with the read cache off: every request queries the read models.
    server = Served(settings, args.workers, LEDGER_READ_CACHE_BYTES="0")
    try:
        wrk(history_url.replace(base, server.base), args.warmup)
        uncached = wrk(history_url.replace(base, server.base), args.seconds)
    finally:
        server.stop()
    acked = writes.get("created", 0.0) / max(writes.get("elapsed", args.seconds), 1e-9)
    return {
        "backend": backend,
        "history_entries": best,
        "read_rps": reads["rps"],
        "read_p50_ms": reads.get("p50"),
        "read_p99_ms": reads.get("p99"),
        "uncached_read_rps": uncached["rps"],
        "uncached_read_p50_ms": uncached.get("p50"),
        "uncached_read_p99_ms": uncached.get("p99"),
        "paced_read_rps": paced.get("rps"),
        "paced_read_p50_ms": paced.get("p50"),
        "paced_read_p99_ms": paced.get("p99"),
        "write_acked_per_s": round(acked, 1),
        "write_refused": int(writes.get("other", 0)),
        "write_p50_ms": writes.get("p50"),
        "write_p99_ms": writes.get("p99"),
        "in_process_appends_per_s_1_thread": round(serial, 1),
        "in_process_appends_per_s_32_threads": round(threaded, 1),
        "http_writes_vs_in_process_32": round(acked / threaded, 2) if threaded else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--appends", type=int, default=640, help="in-process baseline size")
    parser.add_argument(
        "--paced-rps", type=int, default=1000, help="rate of the paced read (0: no paced run)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="seconds of each warm-up run")
    parser.add_argument(
        "--backend", action="append", choices=("sqlite", "postgresql"),
        help="default: both",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_api needs wrk (Debian: apt-get install wrk)")
    print(f"HTTP API load on loopback: {CONNECTIONS} connections, {args.workers} workers, "
          f"{args.seconds} s per run, {os.cpu_count()} CPUs")  # fmt: skip
    results: dict[str, object] = {}
    with scratch_stores() as new_store:
        for backend in args.backend or ["sqlite", "postgresql"]:
            result = run_backend(backend, new_store, args)
            results[backend] = result
            print(json.dumps(result))
            sys.stdout.flush()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"connections": CONNECTIONS, "workers": args.workers, "seconds": args.seconds}
        args.json.write_text(json.dumps({**report, "backends": results}, indent=2))


if __name__ == "__main__":
    main()
