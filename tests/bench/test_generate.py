"""The benchmark's command generator writes files the ledger accepts, line by line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from bench.generate import generate
from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ACTOR = Actor("bench-import", "recorder", "")


def replay(app: LedgerApplication, lines: list[bytes]) -> int:
    """Record every line through the command it names; return how many were accepted."""
    accepted = 0
    for number, raw in enumerate(lines, 1):
        line: dict[str, Any] = orjson.loads(raw)
        given = line.get("actor")
        actor = Actor(**given) if given else DEFAULT_ACTOR
        try:
            getattr(app, line["command"])(**line["args"], actor=actor)
        except Exception as exc:
            raise AssertionError(f"line {number} ({line['command']}) refused: {exc}") from exc
        accepted += 1
    return accepted


def test_generate_is_deterministic_and_exact() -> None:
    first, second, other = io.BytesIO(), io.BytesIO(), io.BytesIO()
    counts = generate(first, 500, seed=5)
    generate(second, 500, seed=5)
    generate(other, 500, seed=6)
    assert first.getvalue() == second.getvalue()
    assert first.getvalue() != other.getvalue()
    assert first.getvalue().count(b"\n") == 500 == sum(counts.values())


def test_generated_process_covers_the_whole_story() -> None:
    counts = generate(io.BytesIO(), 20_000, seed=1)
    for command in (
        "start_process", "add_strand", "start_phase", "register_organisation",
        "add_membership", "table_proposal", "propose_amendment", "decide_amendment",
        "revise_proposal", "change_proposal_status", "schedule_meeting",
        "record_meeting_held", "record_meeting_outcome", "agree_minutes", "publish",
        "open_consultation", "record_consultation_response", "close_consultation",
        "record_consultation_review", "record_government_response",
    ):  # fmt: skip
        assert counts.get(command, 0) > 0, command
    assert counts["record_consultation_response"] > 0.4 * 20_000
    assert 0.005 * 20_000 < counts["register_organisation"] < 0.02 * 20_000


def test_every_generated_line_is_accepted_and_the_log_verifies(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    generate(buffer, 300, seed=11)
    lines = buffer.getvalue().splitlines()
    settings = Settings(data_dir=tmp_path / "data", demo=True)
    app = LedgerApplication(settings)
    try:
        assert replay(app, lines) == 300
    finally:
        app.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(LEDGER_DATA_DIR=str(settings.data_dir), LEDGER_DEMO="1")
    done = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "verify", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert report["entries"] == 300
