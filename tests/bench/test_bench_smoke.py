"""`bench/run.py --smoke` runs every benchmark part and writes a complete report.

The run takes about a minute (every part is a subprocess on both stores), once per test
session. PostgreSQL is skipped outside CI, with the reason, when no server answers; under
``CI=true`` a missing PostgreSQL fails the test.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.run import SECTIONS
from tests.conftest import _pg_unavailable

ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    reason = _pg_unavailable()
    if reason is not None and CI:
        pytest.fail(f"CI=true but {reason}")
    backends = "sqlite" if reason else "sqlite,postgresql"
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", "--out", str(out), "--backends", backends],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    report["_markdown"] = (out / "report.md").read_text()
    report["_pg_reason"] = reason
    return report


def _check_backend(report: dict[str, Any], backend: str) -> None:
    parts = report["parts"]
    assert set(parts) == set(SECTIONS)
    for section in SECTIONS:
        part = parts[section]
        if section == "api" and part["status"] == "skipped" and shutil.which("wrk") is None:
            assert "wrk" in part["reason"]
            continue
        assert part["status"] == "ok", part
        found = [
            f for f in report["figures"] if f["section"] == section and f["backend"] == backend
        ]
        assert found, f"no {section} figures for {backend}"
        for figure in found:
            for key in ("value", "baseline_value", "ratio"):
                assert math.isfinite(figure[key]), figure
                assert figure[key] > 0, figure
        assert f"| {backend} |" in report["_markdown"]
    scale = parts["scale"]["result"]["backends"][backend]["sizes"]
    assert len(scale) == 2
    for measured in scale.values():
        assert measured["verify"]["peak_rss_mb"] > 0
        assert measured["storage"]["bytes_per_entry"] > 0
        assert measured["appends"]["latency"]["concurrent_wait"]["p99_ms"] > 0
    assert backend in parts["scale"]["result"]["targets"]


def test_smoke_report_describes_the_machine(smoke: dict[str, Any]) -> None:
    machine = smoke["machine"]
    for key in ("date", "cpu", "cpus", "ram_gb", "python", "sqlite"):
        assert machine[key], key
    markdown = smoke["_markdown"]
    assert "Machine:" in markdown
    assert f"SQLite {machine['sqlite']}" in markdown
    assert "| store | entries | figure | value | baseline |" in markdown


def test_smoke_report_sqlite(smoke: dict[str, Any]) -> None:
    _check_backend(smoke, "sqlite")


def test_smoke_report_postgresql(smoke: dict[str, Any]) -> None:
    if smoke["_pg_reason"] is not None:
        pytest.skip(f"PostgreSQL not benchmarked: {smoke['_pg_reason']}")
    assert smoke["machine"]["postgresql"]
    _check_backend(smoke, "postgresql")
