"""Stores for the chained log: SQLite (default) and PostgreSQL.

Only modules in this package import a database driver.
"""

from __future__ import annotations

from typing import Any

from ledger.settings import Settings
from ledger.storage.base import ENTRIES_TABLE, EVENTS_TABLE, HEAD_TABLE, LogReader

__all__ = [
    "ENTRIES_TABLE",
    "EVENTS_TABLE",
    "HEAD_TABLE",
    "LogReader",
    "connection_errors",
    "create_schema",
    "factory_for",
    "open_reader",
]


def connection_errors() -> tuple[type[Exception], ...]:
    """The drivers' exceptions for a lost or refused database connection (answered 503)."""
    import psycopg
    from eventsourcing.persistence import InterfaceError, OperationalError

    return (psycopg.OperationalError, psycopg.InterfaceError, OperationalError, InterfaceError)


def create_schema(settings: Settings) -> None:
    """Create the log's tables (and side tables) if missing; never drops or rewrites."""
    from ledger.errors import StorageError

    try:
        factory = factory_for(settings, create_tables=True)
        factory.application_recorder()
        factory.close()
    except Exception as exc:  # the driver's own errors, e.g. no server or no rights
        raise StorageError(
            f"cannot create the schema at {settings.describe_store()}: {exc}"
        ) from exc


def factory_for(settings: Settings, *, create_tables: bool) -> Any:
    """The eventsourcing infrastructure factory for the configured store."""
    from eventsourcing.utils import Environment

    if settings.database_url:
        from ledger.storage.postgres import PostgresLedgerFactory, env_from_url

        env = env_from_url(settings.database_url)
        env.update(
            POSTGRES_POOL_SIZE=str(settings.pg_pool_size),
            POSTGRES_MAX_OVERFLOW=str(settings.pg_pool_size),
            POSTGRES_LOCK_TIMEOUT="30",
            POSTGRES_SCHEMA=settings.pg_schema,
            POSTGRES_CONNECT_TIMEOUT="10",
        )
        env["CREATE_TABLE"] = "y" if create_tables else "n"
        return PostgresLedgerFactory(Environment("ledger", env))

    from ledger.storage.sqlite import SQLiteLedgerFactory

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(settings.sqlite_path),
        "SQLITE_LOCK_TIMEOUT": str(settings.sqlite_lock_timeout),
        "CREATE_TABLE": "y" if create_tables else "n",
    }
    return SQLiteLedgerFactory(Environment("ledger", env))


def open_reader(settings: Settings, *, snapshot: bool = True) -> LogReader:
    """A read-only reader of the configured store; raises StorageError if unusable.

    ``snapshot`` pins one consistent state for the reader's life (verify, export); without
    it every read sees the latest commit (serving proofs and entries).
    """
    if settings.database_url:
        from ledger.storage.postgres import PostgresLogReader

        return PostgresLogReader(
            settings.database_url, schema=settings.pg_schema, snapshot=snapshot
        )
    from ledger.storage.sqlite import SQLiteLogReader

    return SQLiteLogReader(settings.sqlite_path, snapshot=snapshot)
