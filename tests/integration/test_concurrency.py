"""Several writer processes on one store make one dense chain; kill -9 loses nothing acked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.storage import open_reader
from ledger.verify import verify_log
from tests.conftest import BACKENDS, Store, make_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=BACKENDS)
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, str]]:
    """A migrated store with one shared process that every writer contends for."""
    for store in make_store(request.param, tmp_path):
        app = LedgerApplication(store.settings)
        shared = app.start_process(title="Shared", actor=Actor("setup", "admin", ""))
        app.close()
        yield store, shared.subject_id


def spawn(store: Store, name: str, count: int, shared: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.writer",
            "--name",
            name,
            "--count",
            str(count),
            "--shared-process",
            shared,
        ],
        cwd=ROOT,
        env=store.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def acknowledged(output: bytes) -> list[dict[str, object]]:
    """Receipts a writer printed in full (a line cut by the kill is not an acknowledgement)."""
    lines = output.split(b"\n")
    return [orjson.loads(line) for line in lines[:-1] if line]


def check_receipts(store: Store, receipts: list[dict[str, object]]) -> int:
    reader = open_reader(store.settings)
    try:
        report = verify_log(reader)
        assert report.ok, str(report.damage)
        entries = reader.entries(0, report.size)
    finally:
        reader.close()
    import hashlib

    for receipt in receipts:
        index = receipt["index"]
        assert isinstance(index, int)
        assert hashlib.sha256(entries[index]).hexdigest() == receipt["entry_hash"]
    return report.size


@pytest.mark.slow
def test_four_writers_make_one_dense_chain(seeded: tuple[Store, str]) -> None:
    """4 processes × 250 commands, some contending for one aggregate: one dense, valid chain."""
    store, shared = seeded
    procs = [spawn(store, f"w{k}", 250, shared) for k in range(4)]
    receipts = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        receipts += acknowledged(out)
    assert len(receipts) == 1000
    indexes = sorted(int(r["index"]) for r in receipts)  # type: ignore[call-overload]
    assert indexes == list(range(1, 1001))  # index 0 is the shared process
    assert check_receipts(store, receipts) == 1001


@pytest.mark.slow
def test_kill_9_mid_stream_loses_nothing_acknowledged(seeded: tuple[Store, str]) -> None:
    """Writers killed with SIGKILL mid-stream: every acknowledged entry is there and verifies."""
    store, shared = seeded
    procs = [spawn(store, f"k{k}", 100_000, shared) for k in range(3)]
    deadline = time.monotonic() + 60
    time.sleep(1.0)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        size = check_size(store)
        if size >= 60:
            break
    for proc in procs:
        os.kill(proc.pid, signal.SIGKILL)
    receipts = []
    for proc in procs:
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        receipts += acknowledged(out)
    assert receipts, "no writer acknowledged anything before the kill"
    size = check_receipts(store, receipts)
    # Restart: the chain continues where it stopped.
    app = LedgerApplication(store.settings, create_tables=False)
    after = app.start_process(title="After the crash", actor=Actor("ops", "admin", ""))
    app.close()
    assert after.index == size
    assert (
        check_receipts(store, [*receipts, {"index": after.index, "entry_hash": after.entry_hash}])
        == size + 1
    )


def check_size(store: Store) -> int:
    reader = open_reader(store.settings)
    try:
        head = reader.head()
        return head.size if head else 0
    finally:
        reader.close()
