"""`ledger import`: bulk recording that is all-or-nothing per batch and resumable.

On both stores: an import makes exactly the entries the same commands make one by one
(byte for byte, with a fixed clock); a bad line fails its whole batch and names itself; the
same command resumes after the last recorded batch, refuses a file whose recorded lines
changed, and survives `kill -9` mid-import; the CLI reports progress and one-line errors.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.bulk import ImportLineError, import_ndjson
from ledger.errors import InvalidInputError
from ledger.storage import open_reader
from ledger.verify import verify_store
from tests.conftest import Store, make_store

CLERK = Actor("clerk", "recorder", "cabinet-office")
START = datetime(2016, 3, 1, 9, 0, tzinfo=UTC)


def _clock() -> Any:
    ticks = iter(range(10**9))
    return lambda: START + timedelta(microseconds=next(ticks))


def commands(responses: int, *, seed: int = 1, individuals: bool = False) -> list[dict[str, Any]]:
    """A process, organisations, a consultation and ``responses`` responses to it."""
    ids = iter(uuid.UUID(int=seed * 10**6 + k) for k in range(10**6))
    process, consultation = str(next(ids)), str(next(ids))
    orgs = [str(next(ids)) for _ in range(5)]
    lines: list[dict[str, Any]] = [
        {"command": "start_process", "args": {"id": process, "title": "Data sharing"}},
        {
            "command": "add_strand",
            "args": {"process_id": process, "strand_id": "research", "title": "Research"},
        },
    ]
    lines += [
        {
            "command": "register_organisation",
            "args": {"id": org, "name": f"Organisation {k}", "org_kind": "civil_society"},
        }
        for k, org in enumerate(orgs)
    ]
    lines.append(
        {
            "command": "open_consultation",
            "args": {
                "id": consultation,
                "process_id": process,
                "title": "Research access",
                "questions": [{"id": "q1", "text": "Agree?"}, {"id": "q2", "text": "Why?"}],
                "closes_at": "2030-01-01T00:00:00Z",
            },
        }
    )
    for k in range(responses):
        args: dict[str, Any] = {
            "consultation_id": consultation,
            "answers": [{"question_id": "q1", "text": f"Answer {k}"}],
        }
        if individuals and k % 3 == 2:
            person = f"respondent-{seed:04d}-{k:06d}"
            args["individual"] = {"person_id": person, "name": f"Resident {k}"}
        else:
            args["org_id"] = orgs[k % len(orgs)]
        lines.append({"command": "record_consultation_response", "args": args})
    return lines


def write_ndjson(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    with path.open("wb") as out:
        for line in lines:
            out.write(line.encode() if isinstance(line, str) else orjson.dumps(line))
            out.write(b"\n")
    return path


def record_one_by_one(app: LedgerApplication, lines: list[dict[str, Any]]) -> None:
    for line in lines:
        getattr(app, line["command"])(**line["args"], actor=CLERK)


def all_entries(store: Store) -> list[bytes]:
    reader = open_reader(store.settings)
    try:
        head = reader.head()
        return reader.entries(0, head.size) if head else []
    finally:
        reader.close()


def log_size(store: Store) -> int:
    reader = open_reader(store.settings, snapshot=False)
    try:
        head = reader.head()
        return head.size if head else 0
    finally:
        reader.close()


def test_import_makes_the_same_entries_as_recording_one_by_one(
    store: Store, tmp_path: Path
) -> None:
    lines = commands(150)
    path = write_ndjson(tmp_path / "responses.ndjson", list(lines))
    app = LedgerApplication(store.settings, clock=_clock())
    try:
        result = import_ndjson(app, path, actor=CLERK, batch_size=64)
    finally:
        app.close()
    assert (result.lines, result.entries, result.batches) == (len(lines), len(lines), 3)
    assert (result.first_index, result.tree_size, result.resumed_from) == (0, len(lines), 0)
    imported = all_entries(store)

    with pytest.MonkeyPatch.context():
        for other in make_store(store.kind, tmp_path / "one-by-one"):
            app = LedgerApplication(other.settings, clock=_clock())
            try:
                record_one_by_one(app, lines)
            finally:
                app.close()
            assert all_entries(other) == imported  # byte for byte, index for index
    assert verify_store(store.settings, jobs=1).ok


def test_a_bad_line_fails_its_batch_only_and_the_fixed_file_resumes(
    store: Store, tmp_path: Path
) -> None:
    lines: list[dict[str, Any] | str] = list(commands(40))
    good = lines[30]
    assert isinstance(good, dict)
    bad = orjson.loads(orjson.dumps(good))
    bad["args"]["answers"] = [{"question_id": "q9", "text": "No such question"}]
    lines[30] = bad  # line 31, in the third batch of 10
    path = write_ndjson(tmp_path / "responses.ndjson", lines)
    app = LedgerApplication(store.settings)
    try:
        with pytest.raises(ImportLineError) as failed:
            import_ndjson(app, path, actor=CLERK, batch_size=10)
        assert failed.value.line == 31
        assert "no question 'q9'" in str(failed.value)
        assert failed.value.recorded_lines == 30
        assert log_size(store) == 30  # lines 31–40's batch: nothing of it

        # The same bad file again: the first 30 lines are skipped, the bad batch fails again.
        with pytest.raises(ImportLineError):
            import_ndjson(app, path, actor=CLERK, batch_size=10)
        assert log_size(store) == 30

        lines[30] = good
        write_ndjson(path, lines)
        result = import_ndjson(app, path, actor=CLERK, batch_size=10)
        assert result.resumed_from == 30
        assert (result.entries, result.first_index) == (len(lines) - 30, 30)
        assert log_size(store) == len(lines)

        again = import_ndjson(app, path, actor=CLERK, batch_size=10)
        assert (again.entries, again.batches, again.lines) == (0, 0, len(lines))
        assert log_size(store) == len(lines)
    finally:
        app.close()
    assert verify_store(store.settings, jobs=1).ok


def test_resume_refuses_a_file_whose_recorded_lines_changed(store: Store, tmp_path: Path) -> None:
    lines: list[dict[str, Any] | str] = list(commands(20))
    path = write_ndjson(tmp_path / "responses.ndjson", lines[:17])
    app = LedgerApplication(store.settings)
    try:
        import_ndjson(app, path, actor=CLERK, batch_size=8)
        changed = orjson.loads(orjson.dumps(lines[10]))
        changed["args"]["answers"][0]["text"] = "Rewritten after the fact"
        lines[10] = changed
        write_ndjson(path, lines)
        with pytest.raises(InvalidInputError, match=r"differs from .* in those lines"):
            import_ndjson(app, path, actor=CLERK, batch_size=8)
        assert log_size(store) == 17
        # Under another name it is a new import: its creations then clash with records that
        # exist, and the whole first batch is refused.
        with pytest.raises(ImportLineError, match="already exists"):
            import_ndjson(app, path, actor=CLERK, batch_size=8, name="second")
        assert log_size(store) == 17
    finally:
        app.close()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "a line is an object"),
        ('{"command": "drop_tables", "args": {}}', "unknown command 'drop_tables'"),
        ('{"command": "issue_token", "args": {}}', "unknown command 'issue_token'"),
        ('{"command": "start_process", "args": {"title": "x", "colour": 1}}', "no argument"),
        ('{"command": "start_process", "args": {}}', "needs the argument 'title'"),
        ('{"command": "start_process", "args": {"title": "x"}, "actor": "me"}', '"actor"'),
        ('{"command": "start_process", "args": {"title": ""}}', "title"),
    ],
)
def test_bad_lines_are_named_and_nothing_of_their_batch_is_recorded(
    tmp_path: Path, line: str, message: str
) -> None:
    for store in make_store("sqlite", tmp_path):
        path = write_ndjson(
            tmp_path / "f.ndjson", ['{"command": "start_process", "args": {"title": "ok"}}', line]
        )
        app = LedgerApplication(store.settings)
        try:
            with pytest.raises(ImportLineError, match=message) as failed:
                import_ndjson(app, path, actor=CLERK)
        finally:
            app.close()
        assert failed.value.line == 2
        assert log_size(store) == 0


def test_blank_lines_count_and_per_line_actors_are_recorded(tmp_path: Path) -> None:
    for store in make_store("sqlite", tmp_path):
        other = {"id": "a.jones", "role": "recorder", "org": "privacy-group"}
        path = write_ndjson(
            tmp_path / "f.ndjson",
            [
                '{"command": "start_process", "args": {"title": "one"}}',
                "",
                '{"command": "start_process", "args": {"title": "two"}, "actor": '
                + orjson.dumps(other).decode()
                + "}",
                "   ",
            ],
        )
        app = LedgerApplication(store.settings)
        try:
            result = import_ndjson(app, path, actor=CLERK, batch_size=2)
        finally:
            app.close()
        assert (result.lines, result.entries) == (4, 2)
        actors = [orjson.loads(e)["actor"] for e in all_entries(store)]
        assert actors == [CLERK.as_entry(), other]


@hsettings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batch_size=st.integers(min_value=1, max_value=9),
    fail_at=st.integers(min_value=1, max_value=30),
)
def test_any_batching_and_any_failure_point_resume_to_the_same_log(
    tmp_path_factory: pytest.TempPathFactory, batch_size: int, fail_at: int
) -> None:
    """Property: cut anywhere, resumed, any batch size → the one-by-one log, byte for byte."""
    lines = commands(22)
    tmp = tmp_path_factory.mktemp("prop")
    for expected_store in make_store("sqlite", tmp / "expected"):
        app = LedgerApplication(expected_store.settings, clock=_clock())
        record_one_by_one(app, lines)
        app.close()
        expected = all_entries(expected_store)
    for store in make_store("sqlite", tmp / "import"):
        broken: list[dict[str, Any] | str] = list(lines)
        broken[fail_at - 1] = '{"command": "start_process", "args": {}}'
        path = write_ndjson(tmp / "f.ndjson", broken)
        clock = _clock()
        app = LedgerApplication(store.settings, clock=clock)
        with pytest.raises(ImportLineError) as failed:
            import_ndjson(app, path, actor=CLERK, batch_size=batch_size)
        recorded = failed.value.recorded_lines
        assert recorded == (fail_at - 1) // batch_size * batch_size
        assert log_size(store) == recorded
        write_ndjson(path, list(lines))
        result = import_ndjson(app, path, actor=CLERK, batch_size=batch_size)
        app.close()
        assert result.resumed_from == recorded
        # The failed attempt drew times from the clock, so times (and the links that hash
        # them) differ; everything else is the same, index for index.
        assert [_timeless(e) for e in all_entries(store)] == [_timeless(e) for e in expected]


def _timeless(entry: bytes) -> dict[str, Any]:
    fields: dict[str, Any] = orjson.loads(entry)
    del fields["time"], fields["prev"]
    return fields


def _cli(store: Store, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args],
        env=store.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cli_import_reports_and_refuses_in_one_line(store: Store, tmp_path: Path) -> None:
    assert _cli(store, "migrate").returncode == 0
    path = write_ndjson(tmp_path / "responses.ndjson", list(commands(30)))
    done = _cli(store, "import", str(path), "--actor", "clerk", "--org", "cabinet-office")
    assert done.returncode == 0, done.stderr
    assert "recorded 38 entries (indexes 0–37) from 38 lines of responses.ndjson" in done.stdout
    assert "in 1 batch," in done.stdout
    again = _cli(store, "import", str(path), "--actor", "clerk", "--org", "cabinet-office")
    assert again.returncode == 0
    assert "nothing new to record" in again.stdout

    bad = write_ndjson(tmp_path / "bad.ndjson", ['{"command": "start_process", "args": {}}'])
    refused = _cli(store, "import", str(bad), "--actor", "clerk", "--org", "cabinet-office")
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("ledger import: line 1: start_process needs the argument")
    missing = _cli(store, "import", str(tmp_path / "nope"), "--actor", "c", "--org", "o")
    assert missing.returncode != 0
    assert "no such file" in missing.stderr
    assert log_size(store) == 38
    assert _cli(store, "verify", "--quiet").returncode == 0


def test_kill_9_mid_import_loses_nothing_and_the_rerun_completes(
    store: Store, tmp_path: Path
) -> None:
    assert _cli(store, "migrate").returncode == 0
    lines = commands(6000)
    path = write_ndjson(tmp_path / "responses.ndjson", list(lines))
    args = ["import", str(path), "--actor", "clerk", "--org", "cabinet-office"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ledger.cli", *args, "--batch-size", "200"],
        env=store.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while log_size(store) < 400 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    cut = log_size(store)
    assert cut > 0, "the import recorded nothing before it was killed"
    # Whole batches only (the first line of the file is line 1).
    assert cut % 200 == 0 or cut == len(lines)
    rerun = _cli(store, *args, "--batch-size", "200")
    assert rerun.returncode == 0, rerun.stderr
    assert log_size(store) == len(lines)
    assert _cli(store, "verify", "--quiet").returncode == 0
    versions = [
        (s["id"], s["version"]) for s in (orjson.loads(e)["subject"] for e in all_entries(store))
    ]
    assert len(set(versions)) == len(lines)  # no command was recorded twice


def test_individual_respondents_are_sealed_in_bulk_too(store: Store, tmp_path: Path) -> None:
    lines = commands(400, individuals=True)
    path = write_ndjson(tmp_path / "responses.ndjson", list(lines))
    settings = store.settings.model_copy(update={"demo": True})  # a throwaway master key
    app = LedgerApplication(settings)
    try:
        # Batches of 300: over a hundred new people's keys in one (written with COPY on
        # PostgreSQL), in the batch's own transaction.
        import_ndjson(app, path, actor=CLERK, batch_size=300)
        consultation = lines[7]["args"]["id"]
        names = sorted(r["name"] for r in app.consultation_respondents(consultation))
    finally:
        app.close()
    assert names == sorted(f"Resident {k}" for k in range(400) if k % 3 == 2)
    blob = b"".join(all_entries(store))
    assert b"Resident" not in blob
