"""The operator's command-line flows: configuration check, schema, keys, read models.

(Tokens: tests/integration/test_tokens_cli.py; backup and restore:
tests/security/test_backup_restore.py; import: tests/integration/test_import.py.)
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from ledger.application import LedgerApplication
from ledger.checkpoint import CosignatureSigner
from tests.conftest import Store
from tests.helpers import record_sample


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(values)
    return env


def production(tmp_path: Path) -> dict[str, str]:
    """A configuration that should pass: a 0600 signing key and master key, a witness."""
    keys = tmp_path / "keys"
    keys.mkdir(parents=True)
    made = run(
        clean_env(), "keys", "init", "--out", str(keys / "log.key"), "--name", "gov.example/log"
    )
    assert made.returncode == 0, made.stderr
    master = run(clean_env(), "keys", "init-master", "--out", str(keys / "master.key"))
    assert master.returncode == 0, master.stderr
    witness = CosignatureSigner.generate("witness.example")
    return clean_env(
        LEDGER_DATA_DIR=str(tmp_path / "data"),
        LEDGER_LOG_NAME="gov.example/log",
        LEDGER_SIGNING_KEY_FILE=str(keys / "log.key"),
        LEDGER_MASTER_KEY_FILE=str(keys / "master.key"),
        LEDGER_WITNESSES=json.dumps(
            [{"url": "https://witness.example", "key": witness.verifier_key()}]
        ),
        LEDGER_CORS_ORIGINS='["https://data.gov.example"]',
        LEDGER_PUBLIC_URL="https://ledger.gov.example",
    )


def test_config_check_passes_a_production_configuration(tmp_path: Path) -> None:
    env = production(tmp_path)
    done = run(env, "config", "check")
    assert done.returncode == 0, done.stderr
    assert "ledger config check: OK for production" in done.stdout
    assert "LEDGER_SIGNING_KEY_FILE" in done.stdout
    assert "(set)" in done.stdout
    assert "warning:" not in done.stdout
    described = json.loads(run(env, "config", "check", "--json").stdout)
    assert described["ok"] is True
    assert described["settings"]["LEDGER_LOG_NAME"] == {
        "value": "gov.example/log",
        "source": "environment",
    }
    assert described["settings"]["LEDGER_API_THREADS"]["source"] == "default"


def test_config_check_refuses_unsafe_production_settings(tmp_path: Path) -> None:
    env = production(tmp_path)
    cases = {
        "demo": ({"LEDGER_DEMO": "1"}, "LEDGER_DEMO is on"),
        "no key": ({"LEDGER_SIGNING_KEY_FILE": ""}, "no signing key"),
        "open CORS": ({"LEDGER_CORS_ORIGINS": '["*"]'}, "allows any origin"),
        "missing key file": (
            {"LEDGER_SIGNING_KEY_FILE": str(tmp_path / "nope.key")},
            "cannot be read",
        ),
    }
    for name, (changes, reason) in cases.items():
        changed = {**env, **changes}
        if changes.get("LEDGER_SIGNING_KEY_FILE") == "":
            del changed["LEDGER_SIGNING_KEY_FILE"]
        done = run(changed, "config", "check")
        assert done.returncode == 1, name
        assert f"refused: {reason}" in done.stderr or reason in done.stderr, (name, done.stderr)
        assert "NOT safe for production" in done.stderr, name

    loose = Path(env["LEDGER_SIGNING_KEY_FILE"])
    loose.chmod(0o644)
    done = run(env, "config", "check")
    assert done.returncode == 1
    assert "readable by others (mode 644)" in done.stderr
    loose.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_config_check_masks_secrets_and_names_bad_values(tmp_path: Path) -> None:
    env = production(tmp_path)
    secret_key = Path(env.pop("LEDGER_SIGNING_KEY_FILE")).read_text().strip()
    env["LEDGER_SIGNING_KEY"] = secret_key
    env["LEDGER_DATABASE_URL"] = "postgresql://ledger:s3cret-pw@db.internal:5432/ledger"
    for args in (("config", "check"), ("config", "check", "--json")):
        done = run(env, *args)
        shown = done.stdout + done.stderr
        assert secret_key not in shown
        assert secret_key.split("+")[-1] not in shown
        assert "s3cret-pw" not in shown
        assert "postgresql://ledger:****@db.internal:5432/ledger" in shown
        assert "**** (set)" in shown
    done = run(env, "config", "check")
    assert "reached without sslmode=require" in done.stdout  # a warning, not a refusal

    bad = run({**production(tmp_path / "again"), "LEDGER_API_THREADS": "0"}, "config", "check")
    assert bad.returncode != 0
    assert bad.stderr.count("\n") == 1
    assert "LEDGER_API_THREADS: Input should be greater than or equal to 1" in bad.stderr


def test_warnings_for_weak_but_allowed_choices(tmp_path: Path) -> None:
    env = production(tmp_path)
    del env["LEDGER_WITNESSES"]
    del env["LEDGER_MASTER_KEY_FILE"]
    del env["LEDGER_PUBLIC_URL"]
    done = run(env, "config", "check")
    assert done.returncode == 0
    assert "warning: no witnesses" in done.stdout
    assert "warning: no master key" in done.stdout
    assert "warning: no public URL (LEDGER_PUBLIC_URL)" in done.stdout


def test_a_public_url_that_is_not_a_base_url_is_one_line_naming_it(tmp_path: Path) -> None:
    env = production(tmp_path)
    for bad in ("ledger.gov.example", "https://ledger.gov.example/?next=x", "javascript:alert(1)"):
        env["LEDGER_PUBLIC_URL"] = bad
        done = run(env, "config", "check")
        assert done.returncode != 0, bad
        assert done.stderr.count("\n") == 1, done.stderr
        assert "LEDGER_PUBLIC_URL" in done.stderr, done.stderr


def test_migrate_twice_then_rebuild_and_status(store: Store) -> None:
    env = store.env()
    for _ in range(2):  # idempotent: a second migrate (every replica's deploy) changes nothing
        done = run(env, "migrate")
        assert done.returncode == 0, done.stderr
        assert "schema ready" in done.stdout
    app = LedgerApplication(store.settings)
    record_sample(app, amendments=2)
    app.close()
    size = int(json.loads(run(env, "verify", "--json").stdout)["entries"])
    rebuilt = run(env, "projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    status = run(env, "projections", "status")
    assert status.returncode == 0
    assert f"log size {size}" in status.stdout
    lines = [line for line in status.stdout.splitlines() if "position" in line]
    assert lines
    assert all(line.rstrip().endswith("lag 0") for line in lines)


def test_keys_init_refuses_to_overwrite_and_keeps_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    first = run(clean_env(), "keys", "init", "--out", str(path), "--name", "gov.example/log")
    assert first.returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    vkey = first.stdout.strip().splitlines()[-1]
    again = run(clean_env(), "keys", "init", "--out", str(path), "--name", "gov.example/log")
    assert again.returncode != 0
    assert again.stderr.count("\n") == 1
    shown = run(
        clean_env(LEDGER_SIGNING_KEY_FILE=str(path), LEDGER_LOG_NAME="gov.example/log"),
        "keys",
        "show",
    )
    assert shown.returncode == 0
    assert shown.stdout.strip() in first.stdout
    assert vkey.startswith("gov.example/log+")
