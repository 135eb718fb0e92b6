"""A cache of public read answers, keyed by the log index they reflect.

A public read is a pure function of its path, its parameters and the log index it answers
at: the read models are versioned by index, so the answer "as of k" never changes once the
views have applied k. The cache keeps those answers serialised, per API process, bounded by
total size (least recently used out first); a new entry in the log simply makes new keys.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Request, Response

__all__ = ["ReadCache"]

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

    def serve(self, request: Request, at: int, build: Callable[[Response], Any]) -> Response:
        """The answer at index ``at``: from the cache, or ``build`` (which may set headers on
        the response it is given) serialised and kept."""
        params = tuple(sorted(kv for kv in request.query_params.multi_items() if kv[0] != "as_of"))
        key = (request.url.path, params, at)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.hits += 1
        if found is not None:
            return Response(found[0], media_type="application/json", headers=found[1])
        scratch = Response()
        body = orjson.dumps(build(scratch))
        headers = {k: v for k, v in scratch.headers.items() if k in _KEPT_HEADERS}
        size = len(body) + sum(len(k) + len(v) for k, v in headers.items())
        with self._lock:
            self.misses += 1
            if size <= self.max_bytes // 8 and key not in self._items:
                self._items[key] = (body, headers)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, (old_body, old_headers) = self._items.popitem(last=False)
                    self._bytes -= len(old_body) + sum(
                        len(k) + len(v) for k, v in old_headers.items()
                    )
        return Response(body, media_type="application/json", headers=headers)
