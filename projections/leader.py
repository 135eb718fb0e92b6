"""One active read-model follower per store, however many API processes serve it.

Every API worker (and every replica) can follow the log, but only one should apply entries:
the others would compute the same rows and lose the position-checked commit. The follower
that holds this lock applies; the rest wait and take over within seconds if it goes away
(the lock dies with its process or connection). On PostgreSQL it is a session advisory lock;
on SQLite an exclusive ``flock`` on a file beside the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from typing import Any

from ledger.settings import Settings
from projections.runner import Runner

__all__ = ["FollowerLock", "follow_when_leader"]

log = logging.getLogger("ledger.projections")

_LOCK_KEY = 7461627  # pg_advisory_lock key of the read-model follower


class FollowerLock:
    """A non-blocking, process-lifetime lock naming the store's active follower."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._conn: Any = None
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._settings.database_url:
            import psycopg

            if self._conn is None:
                self._conn = psycopg.connect(
                    self._settings.database_url, autocommit=True, connect_timeout=10
                )
            row = self._conn.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                (_LOCK_KEY, self._settings.pg_schema),
            ).fetchone()
            return bool(row and row[0])
        path = self._settings.data_dir / "read-models.lock"
        if self._fd is None:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()  # ends the session, and with it the advisory lock
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def follow_when_leader(
    runner: Runner, settings: Settings, stop: threading.Event, *, retry: float = 2.0
) -> None:
    """Follow the log with ``runner`` whenever this process holds the follower lock."""
    lock = FollowerLock(settings)
    try:
        while not stop.is_set():
            try:
                leader = lock.try_acquire()
            except Exception:  # the database is away: try again later
                lock.release()
                leader = False
            if not leader:
                stop.wait(retry)
                continue
            try:
                runner.follow(stop)
            except Exception:  # keep serving; let another follower (or us, later) go on
                log.exception("the read-model follower stopped; retrying in %.0f s", retry)
                lock.release()
                stop.wait(retry)
    finally:
        lock.release()
