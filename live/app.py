"""The ASGI app: one factory, resources created in the lifespan, packages plugged in as components.

A component is a module with ``routes() -> list[BaseRoute]`` and, optionally,
``lifespan(app) -> AsyncContextManager[None]`` that creates its resources on ``app.state``.
Components start in the order of :data:`COMPONENTS` and stop in reverse.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from types import ModuleType

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from live.auth import Tokens
from live.config import Settings
from live.csrf import CsrfGuard
from live.db import Database
from live.http import EXCEPTION_HANDLERS, RejectNul
from live.metrics import Metrics

log = logging.getLogger("vitrine.app")
access = logging.getLogger("vitrine.access")

COMPONENTS = (
    "live.routes.system",
    "live.revocation",
    "live.routes.directory",
    "live.routes.sessions",
    "live.analytics.component",
    "live.room.component",
    "catalog.component",
    "rtc.component",
    "web.component",
    "live.routes.media",
)


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:  # a component not built yet
            return None
        raise


class StatusMetrics:
    """Counts HTTP responses by status class and writes one structured access-log line each."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self.metrics.http_requests.labels(f"{status // 100}xx").inc()
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            access.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    metrics = Metrics()
    modules = [m for m in (_load(n) for n in COMPONENTS) if m is not None]
    routes: list[BaseRoute] = []
    for m in modules:
        routes.extend(m.routes())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        st = app.state
        st.db = Database(settings.database_url)
        st.redis = None
        if settings.redis_url:
            from live.room.redis_bus import redis_client

            st.redis = redis_client(settings.redis_url)
        async with AsyncExitStack() as stack:
            stack.push_async_callback(st.db.dispose)
            if st.redis is not None:
                stack.push_async_callback(st.redis.aclose)
            for m in modules:
                hook = getattr(m, "lifespan", None)
                if hook is not None:
                    await stack.enter_async_context(hook(app))
            log.info(
                "vitrine started",
                extra={
                    "bus": getattr(st.bus, "name", "?"),
                    "database": st.db.url.get_backend_name(),
                    "process_id": st.process_id,
                },
            )
            yield

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            Middleware(StatusMetrics, metrics=metrics),
            Middleware(RejectNul),
            Middleware(CsrfGuard, base_url=settings.base_url),
        ],
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.tokens = Tokens(
        settings.secret_key,
        admin_token=settings.admin_token,
        staff_ttl=settings.staff_token_ttl,
        host_ttl=settings.host_token_ttl,
        viewer_ttl=settings.viewer_token_ttl,
    )
    app.state.process_id = f"{socket.gethostname()}:{os.getpid()}"
    app.state.metric_refreshers = []

    async def refresh_metrics() -> None:
        for fn in app.state.metric_refreshers:
            await fn()

    app.state.refresh_metrics = refresh_metrics
    return app


def app_from_env() -> Starlette:
    """Entry point for ``uvicorn --factory live.app:app_from_env``."""
    from live import logs

    settings = Settings.from_env()
    logs.configure(settings.log_level, settings.log_format, secrets=[settings.admin_token])
    return create_app(settings)
