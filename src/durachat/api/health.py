"""Liveness, readiness and Prometheus metrics.

`/readyz` answers 503 with the list of problems while the server cannot accept
replies: the database does not answer, a dependency in `Services.readiness` fails
(the Redis bus registers `redis` there when configured), it is shutting down, or
flushes fail.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

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
    """200 when the database (and Redis, when configured) answers and the server
    accepts replies."""
    problems = []
    checks = {"database": services.store.ping, **services.readiness}
    for name, check in checks.items():
        try:
            answer = await check()
        except Exception as exc:  # any failure of a dependency means not ready
            problems.append(f"{name}: {exc}")
            continue
        if answer is False:
            problems.append(f"{name}: not answering")
    if not services.runner.accepting:
        problems.append("shutting down")
    if services.runner.committer.last_error:
        problems.append(f"flush failing: {services.runner.committer.last_error}")
    if problems:
        return JSONResponse({"status": "unready", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/metrics")
async def metrics(services: ServicesDep, request: Request) -> Response:
    """Prometheus text format (OpenMetrics when the scraper asks for it).

    The metrics are declared in `durachat/metrics.py`; the README's
    "Observability" section lists them.
    """
    body, content_type = services.metrics.render(request.headers.get("accept"))
    return Response(body, media_type=content_type)
