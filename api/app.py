"""create_app(settings): the FastAPI application, with no import-time state."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.auth import RateLimiter
from api.cache import CachedReads, LatestIndex, ReadCache
from api.deps import Readers, ReadModelPool
from api.errors import install_problem_handlers
from api.limits import BodyLimits
from api.observability import Metrics, RequestLog, configure_logging, startup_line
from api.openapi import install_openapi
from api.responses import JSONResponse
from api.routes import documents, exports, health, log, people, public, writes
from api.routes.health import metrics_router
from api.web import STATIC_DIR as WEB_STATIC
from api.web import router as web_router
from api.web.site import StaticAssets
from api.workspace import router as workspace_router
from ledger.application import LedgerApplication
from ledger.keys import ConfigurationError, load_signer
from ledger.proofs import TileCache
from ledger.settings import Settings
from ledger.storage import open_reader
from ledger.storage.side import SideStore
from projections import all_views
from projections.db import connect_views
from projections.leader import follow_when_leader
from projections.runner import Runner

__all__ = ["FOLLOWER_CACHE_ROWS", "VERSION", "create_app"]

VERSION = "0.1.0"
# Rows the serving process's read-model follower keeps between batches (it runs for months:
# its memory must stay flat; a rebuild keeps many more).
FOLLOWER_CACHE_ROWS = 20_000


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: from the environment)."""
    settings = settings or Settings()
    signer = load_signer(settings)
    if signer is None:
        raise ConfigurationError(
            "no signing key: set LEDGER_SIGNING_KEY_FILE (or LEDGER_DEMO=1 for a demo key)"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Routes run in a bounded thread pool; each thread keeps its own connections (a
        # log reader, a views connection, a side-table connection), so this bounds the
        # database connections a worker holds: about 3 × api_threads + the write pool.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        # The write side. On SQLite it creates its tables; on PostgreSQL `ledger migrate`
        # does that once, so that any number of replicas can start at the same time.
        ledger = LedgerApplication(settings, create_tables=settings.backend == "sqlite")
        app.state.ledger = ledger
        if app.state.metrics is not None:
            ledger.append_observers.append(app.state.metrics.observe_append)
        app.state.side = SideStore(settings)
        readers = Readers(settings)
        app.state.readers = readers
        # The read models: create their tables, then keep them current in the background.
        follower = Runner(
            connect_views(settings),
            open_reader(settings, snapshot=False),
            all_views(),
            cache_rows=FOLLOWER_CACHE_ROWS,
        )
        follower.setup()
        stop = threading.Event()
        thread = threading.Thread(
            target=follow_when_leader,
            args=(follower, settings, stop),
            daemon=True,
            name="read-model-follower",
        )
        thread.start()
        app.state.read_models = ReadModelPool(settings)
        latest = LatestIndex(lambda: app.state.read_models.get().at(None))
        latest.start()
        app.state.latest_index = latest
        logging.getLogger("ledger").info(
            startup_line(
                settings,
                version=VERSION,
                key_id=signer.key_id.hex(),
                origin=settings.log_name,
            ),
            extra={
                "event": "startup",
                "version": VERSION,
                "backend": settings.backend,
                "store": settings.describe_store(),
                "origin": settings.log_name,
                "key_id": signer.key_id.hex(),
                "pid": os.getpid(),
            },
        )
        try:
            yield
        finally:
            stop.set()
            latest.stop()
            thread.join(timeout=10)
            follower.db.close()
            follower.log.close()
            app.state.read_models.close()
            readers.close()
            app.state.side.close()
            ledger.close()

    configure_logging(settings)
    app = FastAPI(
        title="Open Policy Ledger",
        summary="A tamper-evident record of open policy making",
        version=VERSION,
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )
    app.state.settings = settings
    app.state.verifier_key = signer.verifier_key()
    # Cursors are HMAC'd with a key derived from the log's public key: the same on every
    # replica and across restarts (tamper-evidence, not secrecy: see api/routes/public.py).
    app.state.cursor_secret = hashlib.sha256(
        b"open-policy-ledger cursor key\n" + app.state.verifier_key.encode()
    ).digest()
    app.state.tile_cache = TileCache()
    app.state.read_cache = ReadCache(settings.read_cache_bytes)
    app.state.rate_limiter = RateLimiter(settings.write_rate, settings.write_burst)
    app.state.metrics = Metrics(app.state) if settings.metrics else None
    install_problem_handlers(app)
    app.add_middleware(CachedReads, state=app.state)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD"],
            expose_headers=["ETag", "Link", "X-Ledger-Index", "X-Request-ID"],
        )
    app.add_middleware(
        BodyLimits,
        json_limit=settings.max_json_body,
        document_limit=settings.max_document,
        document_path="/documents",
    )
    app.include_router(log.router)
    app.include_router(public.router)
    app.include_router(exports.router)
    app.include_router(documents.router)
    app.include_router(writes.router)
    app.include_router(people.router)
    app.include_router(health.router)
    if settings.metrics:
        app.include_router(metrics_router)
    app.include_router(web_router)
    app.include_router(workspace_router)
    app.mount("/static", StaticAssets(directory=WEB_STATIC), name="static")
    install_openapi(app)
    # Outermost: every request, cached or not, gets a request id, a metric and a log line.
    app.add_middleware(RequestLog, metrics=app.state.metrics, access_log=settings.access_log)
    return app
