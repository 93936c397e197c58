"""Health, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from live import openapi
from live.api import doc
from live.http import JSON


@doc("Health: database and bus reachable", tag="system", responses={503: "a dependency is down"})
async def healthz(request: Request) -> Response:
    state = request.app.state
    checks: dict[str, Any] = {}
    ok = True
    for name, probe in (("database", state.db.ping), ("bus", state.bus.ping)):
        try:
            await asyncio.wait_for(probe(), timeout=2.0)
            checks[name] = "ok"
        except Exception as exc:  # a health probe reports every failure, whatever it is
            checks[name] = f"error: {type(exc).__name__}"
            ok = False
    body = {
        "status": "ok" if ok else "degraded",
        "checks": checks,
        "bus": state.bus.name,
        "process": state.process_id,
    }
    return JSON(body, status_code=200 if ok else 503)


@doc("Prometheus metrics: connections, events, sessions live, viewers", tag="system")
async def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    await request.app.state.refresh_metrics()
    return Response(m.render(), media_type=m.content_type)


@doc("This OpenAPI document", tag="system")
async def openapi_json(request: Request) -> Response:
    return JSON(openapi.build(list(request.app.routes)))


def routes() -> list[BaseRoute]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
    ]
