"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from durachat.api.deps import ServicesDep

router = APIRouter()


@router.get("/healthz")
async def healthz(services: ServicesDep) -> JSONResponse:
    """200 once the process serves and start-up recovery is done."""
    if not services.ready:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    """200 when the database answers and the server accepts replies."""
    problems = []
    try:
        await services.store.ping()
    except Exception as exc:  # any failure of the database means not ready
        problems.append(f"database: {exc}")
    if not services.runner.accepting:
        problems.append("shutting down")
    if services.runner.committer.last_error:
        problems.append(f"flush failing: {services.runner.committer.last_error}")
    if problems:
        return JSONResponse({"status": "unready", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/metrics")
async def metrics(services: ServicesDep) -> PlainTextResponse:
    """Prometheus text format."""
    stats = services.store.stats
    lines = [
        "# TYPE durachat_connected_sockets gauge",
        f"durachat_connected_sockets {services.bus.total_sockets}",
        "# TYPE durachat_active_generations gauge",
        f"durachat_active_generations {services.runner.active}",
        "# TYPE durachat_text_events_total counter",
        f"durachat_text_events_total {services.runner.text_events}",
        "# TYPE durachat_db_write_transactions_total counter",
        f"durachat_db_write_transactions_total {stats.write_transactions}",
        "# TYPE durachat_flush_transactions_total counter",
        f"durachat_flush_transactions_total {stats.flush_transactions}",
        "# TYPE durachat_flushed_items_total counter",
        f"durachat_flushed_items_total {stats.flushed_items}",
        "# TYPE durachat_flush_seconds_total counter",
        f"durachat_flush_seconds_total {stats.flush_seconds_total:.6f}",
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
