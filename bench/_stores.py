"""Scratch stores for the benchmarks: a fresh SQLite directory or PostgreSQL schema each."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from ledger.settings import Settings

PG_URL = os.environ.get("LEDGER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def scratch_stores() -> Iterator[Callable[[str], Settings]]:
    """Yield ``new_store(backend) -> Settings``; every store made is removed at exit."""
    schemas: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:

        def new_store(backend: str) -> Settings:
            name = uuid.uuid4().hex[:12]
            data_dir = Path(tmp) / name
            if backend == "sqlite":
                return Settings(data_dir=data_dir, demo=True)
            schema = f"bench_{name}"
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            schemas.append(schema)
            return Settings(database_url=PG_URL, pg_schema=schema, data_dir=data_dir, demo=True)

        try:
            yield new_store
        finally:
            if schemas:
                with psycopg.connect(PG_URL, autocommit=True) as conn:
                    for schema in schemas:
                        conn.execute(f"DROP SCHEMA {schema} CASCADE")
