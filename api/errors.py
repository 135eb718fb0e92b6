"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import (
    ConflictError,
    DamagedLogError,
    InvalidInputError,
    LedgerError,
    NotFoundError,
    RuleViolationError,
    StorageError,
)
from ledger.storage import connection_errors
from projections.runner import ViewTimeoutError

__all__ = ["ProblemError", "install_problem_handlers", "problem_response"]

PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """An error to answer with problem details."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers
        self.extra = extra


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    headers = dict(headers or {})
    if status == 503:
        headers.setdefault("Retry-After", "5")
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_STATUS: list[tuple[type[LedgerError], int, str]] = [
    (NotFoundError, 404, "Not found"),
    (ConflictError, 409, "Conflict"),
    (RuleViolationError, 422, "Refused by the rules of the process"),
    (InvalidInputError, 400, "Invalid input"),
    (StorageError, 503, "Ledger store unavailable"),
    (DamagedLogError, 500, "Stored log damaged"),
    (ViewTimeoutError, 503, "Read models behind"),
]


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error, expected or not, as problem+json; never leak a traceback."""

    @app.exception_handler(ProblemError)
    async def on_problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            request, exc.status, exc.title, exc.detail, headers=exc.headers, **exc.extra
        )

    @app.exception_handler(LedgerError)
    async def on_ledger_error(request: Request, exc: LedgerError) -> JSONResponse:
        extra: dict[str, Any] = {}
        current = getattr(exc, "current_version", None)
        if isinstance(exc, ConflictError) and current is not None:
            extra["current_version"] = current
        field = getattr(exc, "field", None)
        if isinstance(field, str):
            extra["field"] = field  # the argument the refusal is about
        for kind, status, title in _STATUS:
            if isinstance(exc, kind):
                if status == 400 and request.method not in ("GET", "HEAD"):
                    # A write's content refused by the domain's checks.
                    return problem_response(request, 422, "Invalid command", str(exc), **extra)
                return problem_response(request, status, title, str(exc), **extra)
        return problem_response(request, 400, "Refused", str(exc))

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem_response(
                request, 400, "Malformed JSON", "the request body is not valid JSON"
            )
        if any(e["loc"][:1] == ["body"] for e in errors):
            # A body that parses but does not fit the command (unknown or missing fields,
            # wrong types): 422. Bad query, path or header parameters stay 400.
            return problem_response(
                request,
                422,
                "Invalid request body",
                "the request body does not fit this command: "
                + "; ".join(f"{'.'.join(e['loc'][1:]) or 'body'}: {e['msg']}" for e in errors),
                errors=errors,
            )
        return problem_response(
            request, 400, "Invalid request", "the request's parameters are invalid", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title, _, detail = str(exc.detail).partition(": ")
        return problem_response(
            request,
            exc.status_code,
            title,
            detail or title,
            headers=dict(exc.headers) if exc.headers else None,
        )

    async def on_unavailable(request: Request, _exc: Exception) -> JSONResponse:
        # A connection lost under a read (the database stopped or restarted): the reader
        # is replaced on a later request (api.deps), so the service recovers by itself.
        return problem_response(
            request,
            503,
            "Ledger store unavailable",
            "the database does not answer; try again shortly",
        )

    # Registered by class (not in the catch-all below, which Starlette runs outside its
    # exception middleware and re-raises, so the client's connection would be dropped).
    for lost in connection_errors():
        app.add_exception_handler(lost, on_unavailable)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(
            request, 500, "Internal error", f"unexpected {type(exc).__name__}; see server logs"
        )
