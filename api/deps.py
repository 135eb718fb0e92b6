"""Dependencies shared by the routes: the settings and a log reader per worker thread."""

from __future__ import annotations

import contextlib
import threading
from typing import Annotated

from fastapi import Depends, Request

from ledger.settings import Settings
from ledger.storage import LogReader, open_reader
from projections import all_views
from projections.db import connect_views
from projections.reader import ReadModels
from projections.runner import Runner

__all__ = ["ReadModelPool", "ReaderDep", "Readers", "SettingsDep"]


class Readers:
    """One latest-commit reader per thread (sync routes run in FastAPI's thread pool)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._local = threading.local()
        self._all: list[LogReader] = []
        self._lock = threading.Lock()

    def get(self) -> LogReader:
        reader: LogReader | None = getattr(self._local, "reader", None)
        if reader is not None and getattr(reader, "closed", False):
            # Its connection was lost (a database restart): replace it, so the service
            # recovers by itself once the database is back.
            with self._lock:
                self._all.remove(reader)
            reader = self._local.reader = None
        if reader is None:
            reader = open_reader(self._settings, snapshot=False)
            self._local.reader = reader
            with self._lock:
                self._all.append(reader)
        return reader

    def close(self) -> None:
        with self._lock:
            for reader in self._all:
                reader.close()
            self._all.clear()


class ReadModelPool:
    """One ReadModels (own views connection, own log reader) per worker thread."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._local = threading.local()
        self._all: list[ReadModels] = []
        self._lock = threading.Lock()

    def get(self) -> ReadModels:
        models: ReadModels | None = getattr(self._local, "models", None)
        if models is not None and (
            models.runner.db.closed or getattr(models.runner.log, "closed", False)
        ):
            # A connection was lost (a database restart): replace both, as for Readers.
            with self._lock:
                self._all.remove(models)
            _close_quietly(models)
            models = self._local.models = None
        if models is None:
            runner = Runner(
                connect_views(self._settings),
                open_reader(self._settings, snapshot=False),
                all_views(),
            )
            models = ReadModels(runner)
            self._local.models = models
            with self._lock:
                self._all.append(models)
        return models

    def close(self) -> None:
        with self._lock:
            for models in self._all:
                models.runner.db.close()
                models.runner.log.close()
            self._all.clear()


def _close_quietly(models: ReadModels) -> None:
    for close in (models.runner.db.conn.close, models.runner.log.close):
        with contextlib.suppress(Exception):  # already broken: closing only tidies up
            close()


def _reader(request: Request) -> LogReader:
    readers: Readers = request.app.state.readers
    return readers.get()


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ReaderDep = Annotated[LogReader, Depends(_reader)]
SettingsDep = Annotated[Settings, Depends(_settings)]
