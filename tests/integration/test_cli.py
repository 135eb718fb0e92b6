"""The `ledger` command line, run as a user runs it: a real process, real stores."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import orjson

from ledger.actors import Actor
from ledger.application import LedgerApplication
from tests.conftest import Store
from tests.helpers import record_sample

ROOT = Path(__file__).resolve().parents[2]


def ledger(
    store_env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args],
        cwd=ROOT,
        env=store_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line(text: str) -> None:
    assert len(text.strip().splitlines()) == 1, text
    assert "Traceback" not in text


def test_verify_reports_an_intact_log(store: Store) -> None:
    """verify exits 0 and summarises entries, head hash and Merkle root."""
    app = LedgerApplication(store.settings)
    n = len(record_sample(app).receipts)
    app.close()
    result = ledger(store.env(), "verify")
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert f"entries      {n}" in result.stdout
    as_json = orjson.loads(ledger(store.env(), "verify", "--json").stdout)
    assert as_json["ok"] is True
    assert as_json["entries"] == n
    assert len(as_json["merkle_root"]) == 64


def test_verify_names_the_first_bad_index(store: Store) -> None:
    """A damaged log makes verify exit 1 with one line naming the index and the kind."""
    app = LedgerApplication(store.settings)
    record_sample(app)
    app.close()
    conn = store.connect()
    conn.execute(store.q("UPDATE ledger_entries SET entry = ? WHERE idx = 4"), (b"{}",))
    conn.close()
    result = ledger(store.env(), "verify")
    assert result.returncode == 1
    assert_one_line(result.stderr)
    assert "DAMAGED at index 4: changed bytes" in result.stderr
    as_json = orjson.loads(ledger(store.env(), "verify", "--json").stdout)
    assert as_json["damage"]["index"] == 4
    assert as_json["damage"]["kind"] == "changed bytes"


def test_verify_without_a_database_exits_2(tmp_path: Path) -> None:
    """A missing or unreadable database is one clear line and exit status 2."""
    env = {"PATH": "/usr/bin:/bin", "LEDGER_DATA_DIR": str(tmp_path / "nowhere")}
    result = ledger(env, "verify")
    assert result.returncode == 2
    assert_one_line(result.stderr)
    assert "no ledger database" in result.stderr
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "ledger.sqlite3").write_bytes(b"this is not a database" * 100)
    result = ledger({**env, "LEDGER_DATA_DIR": str(tmp_path / "junk")}, "verify")
    assert result.returncode == 2
    assert_one_line(result.stderr)
    assert "cannot read ledger database" in result.stderr
    bad_pg = {**env, "LEDGER_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}
    result = ledger(bad_pg, "verify")
    assert result.returncode == 2
    assert_one_line(result.stderr)


def test_record_prints_a_receipt_and_refusals_are_one_line(store: Store) -> None:
    """record writes through the application; bad or refused input exits non-zero, one line."""
    app = LedgerApplication(store.settings)
    sample = record_sample(app, amendments=1)
    app.close()
    env = store.env()
    args = ["record", "add_strand", "--actor", "j.smith", "--org", sample.org_ids[0]]
    payload = orjson.dumps(
        {"process_id": sample.process_id, "strand_id": "fraud", "title": "Fraud, error and debt"}
    ).decode()
    result = ledger(env, *args, "--json", payload)
    assert result.returncode == 0, result.stderr
    receipt = orjson.loads(result.stdout)
    assert receipt["index"] == len(sample.receipts)
    assert orjson.loads(receipt["entry"])["type"] == "process.strand_added"
    again = ledger(env, *args, "--json", "-", stdin=payload)
    assert again.returncode == 1
    assert_one_line(again.stderr)
    assert "already has a strand 'fraud'" in again.stderr
    for bad in ("{not json", "[1]"):
        result = ledger(env, *args, "--json", bad)
        assert result.returncode == 2
        assert_one_line(result.stderr)
    result = ledger(env, *args, "--json", '{"process_id": "x", "nonsense": 1}')
    assert result.returncode == 1
    assert_one_line(result.stderr)
    assert "ledger record: nonsense: is not a field of add_strand" in result.stderr
    result = ledger(
        env,
        "record",
        "add_strand",
        "--actor",
        "j",
        "--org",
        "o",
        "--role",
        "king",
        "--json",
        payload,
    )
    assert result.returncode == 1
    assert_one_line(result.stderr)
    assert ledger(env, "verify").returncode == 0


def test_record_refuses_a_bad_field_in_one_line_naming_it_and_records_nothing(
    store: Store,
) -> None:
    """`ledger record` checks the command's declaration: `<field>: <rule>`, exit 1, no entry
    (a list where a strand id is expected exited 70 with an internal TypeError)."""
    app = LedgerApplication(store.settings)
    sample = record_sample(app)
    app.close()
    env = store.env()
    who = ["--actor", "j.smith", "--org", sample.org_ids[0]]
    cases = {
        "add_strand": (
            {"process_id": sample.process_id, "strand_id": ["a", "b"], "title": "T"},
            "ledger record: strand_id: must be text (got a list)",
        ),
        "schedule_meeting": (
            {
                "process_id": sample.process_id,
                "title": "M",
                "starts_at": "next tuesday",
            },
            "ledger record: starts_at: must be",
        ),
        "start_process": ({"title": 7}, "ledger record: title: must be text"),
    }
    for name, (payload, said) in cases.items():
        result = ledger(env, "record", name, *who, "--json", orjson.dumps(payload).decode())
        assert result.returncode == 1, (name, result.stderr)
        assert_one_line(result.stderr)
        assert said in result.stderr, (name, result.stderr)
        assert "internal error" not in result.stderr
    entries = ledger(env, "entries").stdout.splitlines()
    assert len(entries) == len(sample.receipts)


def test_record_takes_consultation_responses_and_explains_embargo(store: Store) -> None:
    """record_consultation_response is recorded by `ledger record`; embargo_publication,
    which needs the document's bytes, is a one-line refusal saying how to record it."""
    app = LedgerApplication(store.settings)
    sample = record_sample(app)
    setup = Actor(id="setup", role="admin", org=sample.org_ids[0])
    content = b"the consultation document\n"
    sha = hashlib.sha256(content).hexdigest()
    app.side.put_document(sha, "text/plain", content)
    cid = app.open_consultation(
        process_id=sample.process_id,
        title="C",
        questions=[{"id": "q1", "text": "Q?"}],
        documents=[sha],
        closes_at="2099-01-01T00:00:00Z",
        actor=setup,
    ).subject_id
    app.close()
    env = store.env()
    who = ["--actor", "j.smith", "--org", sample.org_ids[0]]
    payload = {
        "consultation_id": cid,
        "answers": [{"question_id": "q1", "text": "Yes"}],
        "org_id": sample.org_ids[0],
    }
    result = ledger(
        env,
        "record",
        "record_consultation_response",
        *who,
        "--json",
        orjson.dumps(payload).decode(),
    )
    assert result.returncode == 0, result.stderr
    entry = orjson.loads(orjson.loads(result.stdout)["entry"])
    assert entry["type"] == "consultation.response_received"
    result = ledger(env, "record", "embargo_publication", *who, "--json", "{}")
    assert result.returncode == 2
    assert_one_line(result.stderr)
    assert "POST /documents" in result.stderr
    assert "unknown command" not in result.stderr


def test_entries_prints_verbatim_bytes(store: Store) -> None:
    """entries prints each stored entry exactly, one per line."""
    app = LedgerApplication(store.settings)
    receipts = record_sample(app, amendments=1).receipts
    app.close()
    result = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "entries", "--start", "2"],
        cwd=ROOT,
        env=store.env(),
        capture_output=True,
        check=True,
    )
    assert result.stdout.split(b"\n")[:-1] == [r.entry for r in receipts[2:]]


def test_migrate_is_idempotent_and_needs_no_key(store: Store) -> None:
    """`ledger migrate` needs no signing key, runs twice, and leaves an empty log that verifies."""
    env = {k: v for k, v in store.env().items() if k != "LEDGER_SIGNING_KEY_FILE"}
    for _ in range(2):
        result = ledger(env, "migrate")
        assert result.returncode == 0, result.stderr
        assert "schema ready" in result.stdout
    verified = ledger(env, "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    assert orjson.loads(verified.stdout)["entries"] == 0
    refused = ledger(
        env, "record", "start_process", "--json", '{"title": "x"}', "--actor", "a", "--org", "o"
    )
    assert refused.returncode == 2
    assert_one_line(refused.stderr)
    assert "no signing key" in refused.stderr


def test_demo_runs_twice_and_guards_other_directories(tmp_path: Path) -> None:
    """`ledger demo` records, verifies and builds views; it remakes only its own directory."""
    env = {"PATH": "/usr/bin:/bin"}
    demo_dir = str(tmp_path / "demo")
    for _ in range(2):
        result = ledger(env, "demo", "--data-dir", demo_dir)
        assert result.returncode == 0, result.stderr
        assert "Verified: 218 entries intact" in result.stdout
        assert "Read models built to index 217" in result.stdout
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    refused = ledger(env, "demo", "--data-dir", str(other))
    assert refused.returncode == 2
    assert_one_line(refused.stderr)
    assert (other / "notes.txt").read_text() == "keep me"
