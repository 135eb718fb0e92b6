"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.errors import ProblemError

__all__ = ["MAX_LAG", "healthz", "metrics", "metrics_router", "readyz", "router"]

router = APIRouter(tags=["health"])
metrics_router = APIRouter(tags=["health"])

MAX_LAG = 1000  # entries the read models may trail the log by and still be "ready"


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database answers and the read models are caught up")
def readyz(request: Request) -> dict[str, Any]:
    models = request.app.state.read_models.get()
    try:
        head = models.runner.log.head()
        size = head.size if head is not None else 0
        position = models.runner.position()
    except Exception as exc:  # any failure to read the database means not ready
        raise ProblemError(503, "Not ready", f"the database does not answer: {exc}") from exc
    lag = size - position
    if lag > MAX_LAG:
        raise ProblemError(
            503,
            "Not ready",
            f"the read models trail the log by {lag} entries",
            log_size=size,
            read_model_position=position,
        )
    return {"status": "ready", "log_size": size, "read_model_position": position, "lag": lag}


@metrics_router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain; version=0.0.4": {}}, "description": "Metrics"}},
)
def metrics(request: Request) -> Response:
    body = request.app.state.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
