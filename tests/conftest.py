"""Shared fixtures: every storage-facing test runs on SQLite and on PostgreSQL.

PostgreSQL tests use ``LEDGER_TEST_DATABASE_URL`` (default: the local ``test`` database)
and a fresh schema per test, dropped afterwards. Outside CI they skip with the reason when
no server answers; under ``CI=true`` they fail instead, so CI can never pass without them.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import settings

from ledger.keys import create_key_file
from ledger.settings import Settings

# Under CI the examples are derandomised: a landing must not depend on the draw. Random
# exploration still runs on every developer's machine (and found real bugs here).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() == "true":
    settings.load_profile("ci")

PG_URL = os.environ.get("LEDGER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


@dataclass
class Store:
    """A ledger store under test and a raw SQL door into it (the insider's view)."""

    kind: str
    settings: Settings
    schema: str | None = None

    def connect(self) -> Any:
        """A raw autocommit DB-API connection to the store."""
        if self.kind == "sqlite":
            return sqlite3.connect(self.settings.sqlite_path, isolation_level=None)
        return psycopg.connect(PG_URL, autocommit=True, options=f"-c search_path={self.schema}")

    def q(self, sql: str) -> str:
        """Adapt ``?`` placeholders to the driver."""
        return sql if self.kind == "sqlite" else sql.replace("?", "%s")

    @property
    def event_key(self) -> str:
        """The event row column that entries reference."""
        return "rowid" if self.kind == "sqlite" else "notification_id"

    def env(self) -> dict[str, str]:
        """Environment for a ``ledger`` subprocess on this store."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        env["LEDGER_SIGNING_KEY_FILE"] = str(self.settings.signing_key_file)
        env["LEDGER_LOG_NAME"] = self.settings.log_name
        if self.kind == "sqlite":
            env["LEDGER_DATA_DIR"] = str(self.settings.data_dir)
        else:
            env["LEDGER_DATABASE_URL"] = PG_URL
            env["LEDGER_PG_SCHEMA"] = str(self.schema)
        return env


_pg_state: dict[str, str | None] = {}


def _pg_unavailable() -> str | None:
    if "reason" not in _pg_state:
        try:
            with psycopg.connect(PG_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_state["reason"] = None
        except psycopg.Error as exc:
            _pg_state["reason"] = f"no PostgreSQL at {PG_URL}: {str(exc).strip()[:120]}"
    return _pg_state["reason"]


LOG_NAME = "ledger.test.example/open-policy"


def make_store(kind: str, tmp_path: Path) -> Iterator[Store]:
    """Create an empty store of the given kind, with its own signing key; drop it afterwards."""
    key_file = tmp_path / "signing.key"
    if not key_file.exists():
        create_key_file(key_file, LOG_NAME)
    keyed = {"signing_key_file": key_file, "log_name": LOG_NAME}
    if kind == "sqlite":
        yield Store("sqlite", Settings(data_dir=tmp_path / "data", **keyed))
        return
    reason = _pg_unavailable()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield Store(
            "postgresql",
            Settings(database_url=PG_URL, pg_schema=schema, data_dir=tmp_path / "data", **keyed),
            schema,
        )
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty ledger store, once on SQLite and once on PostgreSQL."""
    yield from make_store(request.param, tmp_path)
