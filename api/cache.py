"""A cache of public read answers, keyed by the log index they reflect.

A public read is a pure function of its path, its parameters and the log index it answers
at: the read models are versioned by index, so the answer "as of k" never changes once the
views have applied k. The cache keeps those answers serialised, per API process, bounded by
total size (least recently used out first); a new entry in the log simply makes new keys.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from fastapi import Request, Response
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["CachedReads", "LatestIndex", "ReadCache"]

_KEPT_HEADERS = ("x-ledger-index", "link", "etag")


class ReadCache:
    """LRU of (path, parameters, index) → (body bytes, headers), at most ``max_bytes``."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[Any, ...], tuple[bytes, dict[str, str]]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(path: str, params: Iterable[tuple[str, str]], at: int) -> tuple[Any, ...]:
        return (path, tuple(sorted(kv for kv in params if kv[0] != "as_of")), at)

    def get(self, key: tuple[Any, ...]) -> tuple[bytes, dict[str, str]] | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return found

    def serve(self, request: Request, at: int, build: Callable[[Response], Any]) -> Response:
        """The answer at index ``at``: from the cache, or ``build`` (which may set headers on
        the response it is given) serialised and kept."""
        key = self.key(request.url.path, request.query_params.multi_items(), at)
        found = self.get(key)
        if found is not None:
            return Response(found[0], media_type="application/json", headers=found[1])
        scratch = Response()
        body = orjson.dumps(build(scratch))
        headers = {k: v for k, v in scratch.headers.items() if k in _KEPT_HEADERS}
        size = len(body) + sum(len(k) + len(v) for k, v in headers.items())
        with self._lock:
            self.misses += 1
            if 0 < size <= self.max_bytes // 8 and key not in self._items:
                self._items[key] = (body, headers)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, (old_body, old_headers) = self._items.popitem(last=False)
                    self._bytes -= len(old_body) + sum(
                        len(k) + len(v) for k, v in old_headers.items()
                    )
        return Response(body, media_type="application/json", headers=headers)


class LatestIndex:
    """The latest index the read models have applied, refreshed in the background.

    Lets a request for the latest state find its cached answer without a database round
    trip. It may trail the views by up to ``interval`` seconds; an answer always says the
    index it reflects, so that is never a wrong answer, only a slightly older one.
    """

    def __init__(self, read: Callable[[], int], interval: float = 0.05) -> None:
        self._read = read
        self.interval = interval
        self.value: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="latest-index")

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.value = self._read()
            except Exception:  # the database is away: answer through the slow path
                self.value = None
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class CachedReads:
    """ASGI middleware: a GET for the latest state whose answer is cached is sent at once,
    before routing, validation or any database call. Everything else goes to the app."""

    def __init__(self, app: ASGIApp, *, state: Any) -> None:
        self.app = app
        self.state = state  # the FastAPI app's state: latest_index and read_cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            latest: LatestIndex | None = getattr(self.state, "latest_index", None)
            cache: ReadCache | None = getattr(self.state, "read_cache", None)
            if latest is not None and cache is not None and latest.value is not None:
                params = QueryParams(scope.get("query_string", b"").decode("latin-1"))
                if "as_of" not in params:
                    found = cache.get(cache.key(scope["path"], params.multi_items(), latest.value))
                    if found is not None:
                        response = Response(
                            found[0], media_type="application/json", headers=found[1]
                        )
                        await response(scope, receive, send)
                        return
        await self.app(scope, receive, send)
