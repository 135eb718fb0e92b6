"""The public website: server-rendered pages, Atom feeds and in-browser verification.

``router`` holds every page and feed (none of them in the OpenAPI document); ``STATIC_DIR``
is the directory to serve at ``/static`` (CSS and the verifying JavaScript).
"""

from __future__ import annotations

from fastapi import APIRouter

from api.web import feeds, pages
from api.web.site import STATIC_DIR

__all__ = ["STATIC_DIR", "router"]

router = APIRouter(include_in_schema=False)
router.include_router(feeds.router)
router.include_router(pages.router)
