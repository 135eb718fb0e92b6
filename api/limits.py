"""Request body limits and media types, enforced before any route runs.

A body over the limit is refused with 413 as soon as ``Content-Length`` says so, or as soon
as a streamed body passes it; a write whose body is not JSON gets 415. Documents (``POST
/documents``) have their own, larger limit and any allowed media type (checked by the route).
The officials' workspace (``/workspace/...``) posts HTML forms: URL-encoded forms within the
JSON limit, multipart forms (document uploads) within the document limit.
"""

from __future__ import annotations

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimits"]

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_WORKSPACE = "/workspace"
_FORM = b"application/x-www-form-urlencoded"
_MULTIPART = b"multipart/form-data"


async def _problem(send: Send, scope: Scope, status: int, title: str, detail: str) -> None:
    body = orjson.dumps(
        {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope.get("path", ""),
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimits:
    """ASGI middleware: 413 for oversized bodies, 415 for non-JSON writes."""

    def __init__(
        self, app: ASGIApp, *, json_limit: int, document_limit: int, document_path: str
    ) -> None:
        self.app = app
        self.json_limit = json_limit
        self.document_limit = document_limit
        self.document_path = document_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        path = str(scope.get("path", ""))
        is_document = path == self.document_path
        limit = self.document_limit if is_document else self.json_limit
        media_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        is_form = media_type in (_FORM, _MULTIPART) and (
            path == _WORKSPACE or path.startswith(_WORKSPACE + "/")
        )
        if is_form and media_type == _MULTIPART:
            limit = self.document_limit
        if not is_document and not is_form and media_type != b"application/json":
            await _problem(
                send,
                scope,
                415,
                "Unsupported media type",
                "send the command as a JSON object with Content-Type: application/json",
            )
            return
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                await _problem(send, scope, 400, "Bad request", "invalid Content-Length")
                return
            if too_large:
                await _problem(
                    send, scope, 413, "Body too large", f"the limit here is {limit} bytes"
                )
                return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside the app, answered by its problem handler with 413.
                    raise HTTPException(413, f"Body too large: the limit here is {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)
