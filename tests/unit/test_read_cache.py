"""The read cache: keyed by path, parameters (not as_of) and index; bounded; headers kept."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from api.cache import ReadCache


def _request(path: str, query: str = "") -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query.encode(),
        "headers": [],
    }
    return Request(scope)


def test_same_key_is_built_once_and_served_with_its_headers() -> None:
    cache = ReadCache()
    built: list[int] = []

    def build(response: Response) -> Any:
        built.append(1)
        response.headers["X-Ledger-Index"] = "7"
        response.headers["X-Other"] = "dropped"
        return {"as_of_index": 7, "items": [1, 2]}

    first = cache.serve(_request("/p/1/history", "limit=5"), 7, build)
    second = cache.serve(_request("/p/1/history", "limit=5&as_of=7"), 7, build)
    assert first.body == second.body == b'{"as_of_index":7,"items":[1,2]}'
    assert second.headers["x-ledger-index"] == "7"
    assert "x-other" not in second.headers
    assert len(built) == 1
    assert (cache.hits, cache.misses) == (1, 1)


def test_another_index_path_or_parameter_is_another_answer() -> None:
    cache = ReadCache()
    calls: list[tuple[str, int]] = []

    def builder(tag: str, at: int) -> Any:
        def build(response: Response) -> Any:
            calls.append((tag, at))
            return {"tag": tag, "at": at}

        return build

    cache.serve(_request("/a"), 1, builder("a", 1))
    cache.serve(_request("/a"), 2, builder("a", 2))
    cache.serve(_request("/b"), 1, builder("b", 1))
    cache.serve(_request("/a", "limit=2"), 1, builder("a2", 1))
    assert len(calls) == 4


def test_size_is_bounded_least_recently_used_first() -> None:
    cache = ReadCache(max_bytes=8000)
    body = {"x": "y" * 900}
    for i in range(20):
        cache.serve(_request(f"/r/{i}"), 1, lambda _r: body)
    assert cache._bytes <= 8000
    rebuilt: list[int] = []
    cache.serve(_request("/r/0"), 1, lambda _r: rebuilt.append(1) or body)
    assert rebuilt == [1]  # the oldest was evicted
    cache.serve(_request("/r/19"), 1, lambda _r: rebuilt.append(2) or body)
    assert rebuilt == [1]  # the newest was kept
