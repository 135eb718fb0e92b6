"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import (
    ConflictError,
    InvalidInputError,
    LedgerError,
    NotFoundError,
    RuleViolationError,
    StorageError,
)

__all__ = ["ProblemError", "install_problem_handlers", "problem_response"]

PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """An error to answer with problem details."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra


def problem_response(
    request: Request, status: int, title: str, detail: str, **extra: Any
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_STATUS: list[tuple[type[LedgerError], int, str]] = [
    (NotFoundError, 404, "Not found"),
    (ConflictError, 409, "Conflict"),
    (RuleViolationError, 422, "Refused by the rules of the process"),
    (InvalidInputError, 400, "Invalid input"),
    (StorageError, 503, "Ledger store unavailable"),
]


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error, expected or not, as problem+json; never leak a traceback."""

    @app.exception_handler(ProblemError)
    async def on_problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(request, exc.status, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(LedgerError)
    async def on_ledger_error(request: Request, exc: LedgerError) -> JSONResponse:
        for kind, status, title in _STATUS:
            if isinstance(exc, kind):
                return problem_response(request, status, title, str(exc))
        return problem_response(request, 400, "Refused", str(exc))

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return problem_response(
            request, 400, "Invalid request", "the request's parameters are invalid", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(request, exc.status_code, str(exc.detail), str(exc.detail))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(
            request, 500, "Internal error", f"unexpected {type(exc).__name__}; see server logs"
        )
