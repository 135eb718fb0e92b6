"""A small DB-API door for the read models: SQLite or PostgreSQL, same SQL.

Views write portable SQL with ``?`` placeholders; on PostgreSQL they become ``%s``. Each
``transaction()`` commits all view rows and the runner's tracking together, or nothing.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from ledger.errors import StorageError
from ledger.settings import Settings

__all__ = ["Db", "connect_views"]

_PLACEHOLDER = re.compile(r"\?")


class Db:
    """One connection to the database that holds the views."""

    def __init__(self, conn: Any, dialect: Literal["sqlite", "postgresql"]) -> None:
        self.conn = conn
        self.dialect = dialect
        self.buffer: Any = None  # a projections.base.Buffer while a runner batch is open

    @property
    def closed(self) -> bool:
        """PostgreSQL: the connection was lost (the server restarted, say); open a new one."""
        return self.dialect == "postgresql" and bool(self.conn.closed)

    def sql(self, statement: str) -> str:
        return statement if self.dialect == "sqlite" else _PLACEHOLDER.sub("%s", statement)

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.sql(statement), tuple(params))

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.dialect == "sqlite":
            self.conn.executemany(statement, rows)
        else:
            with self.conn.cursor() as cursor:
                cursor.executemany(self.sql(statement), rows)

    def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert many rows: executemany on SQLite, COPY on PostgreSQL (far fewer trips)."""
        if not rows:
            return
        if self.dialect == "sqlite":
            marks = ", ".join("?" * len(columns))
            self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
            )
            return
        with (
            self.conn.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def all(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.execute(statement, params).fetchall()]

    def one(self, statement: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self.execute(statement, params).fetchone()
        return None if row is None else tuple(row)

    @contextmanager
    def transaction(self) -> Iterator[Db]:
        """Commit everything done inside, or nothing."""
        if self.dialect == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self.conn.rollback()
                raise
            self.conn.commit()
        else:
            with self.conn.transaction():
                yield self

    def listener(self) -> Callable[[float | None], None]:
        """PostgreSQL: a function that waits up to N seconds for a NOTIFY on the ledger's
        events channel (None closes it). Uses its own connection."""
        import psycopg

        info = self.conn.info
        conn = psycopg.connect(info.dsn, password=info.password, autocommit=True)
        conn.execute("LISTEN ledger_events")

        def wait(timeout: float | None) -> None:
            if timeout is None:
                conn.close()
                return
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                pass

        return wait

    def close(self) -> None:
        self.conn.close()


def connect_views(settings: Settings) -> Db:
    """Open the views' database: the log's own database, as the design asks."""
    if settings.database_url:
        import psycopg

        try:
            conn = psycopg.connect(
                settings.database_url,
                autocommit=True,
                options=f"-c search_path={settings.pg_schema}",
                connect_timeout=10,
            )
        except psycopg.Error as exc:
            raise StorageError(f"cannot open the views' database: {exc}") from exc
        return Db(conn, "postgresql")
    path = settings.sqlite_path
    if not path.exists():
        raise StorageError(f"no ledger database at {path}")
    lite = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    lite.execute("PRAGMA journal_mode=WAL")
    # Views are derived data: in WAL mode NORMAL never tears a transaction, so after a power
    # cut a view and its tracking roll back together and the runner re-applies from there.
    # (The log's own connections keep synchronous=FULL.)
    lite.execute("PRAGMA synchronous=NORMAL")
    lite.execute("PRAGMA cache_size=-65536")
    return Db(lite, "sqlite")
