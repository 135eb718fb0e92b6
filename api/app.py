"""create_app(settings): the FastAPI application, with no import-time state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.deps import Readers
from api.errors import install_problem_handlers
from api.routes import log
from ledger.keys import ConfigurationError, load_signer
from ledger.proofs import TileCache
from ledger.settings import Settings

__all__ = ["create_app"]


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
        readers = Readers(settings)
        app.state.readers = readers
        try:
            yield
        finally:
            readers.close()

    app = FastAPI(
        title="Open Policy Ledger",
        summary="A tamper-evident record of open policy making",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.verifier_key = signer.verifier_key()
    app.state.tile_cache = TileCache()
    install_problem_handlers(app)
    app.include_router(log.router)
    return app
