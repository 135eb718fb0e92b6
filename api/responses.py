"""JSON responses serialised by orjson (FastAPI's own ORJSONResponse is deprecated)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import responses

__all__ = ["JSONResponse"]


class JSONResponse(responses.JSONResponse):
    """``application/json`` rendered with orjson: fast, and strict about what JSON is."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
