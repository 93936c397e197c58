"""The rtc component: WHIP ingest and the WHEP relay, started in the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from rtc import hooks
from rtc import routes as rtc_routes
from rtc.metrics import RelayMetrics
from rtc.service import RelayService

log = logging.getLogger("vitrine.rtc")
REAP_EVERY = 5.0


def routes() -> list[BaseRoute]:
    return rtc_routes.routes()


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    st = app.state
    hooks.prepare_aiortc()  # fail start-up clearly if aiortc's internals moved; apply the fixes
    settings = st.settings
    metrics = RelayMetrics(st.metrics.registry)
    relay = RelayService(
        settings,
        st.db,
        st.sessions.set_status,
        st.rooms.emit,
        on_forward=metrics.forwarded,
        on_reject=lambda reason: metrics.rejected.labels(reason).inc(),
        on_close=lambda reason: metrics.closed_early.labels(reason).inc(),
    )
    st.relay = relay
    workers = settings.relay_workers or os.cpu_count() or 1
    if workers > 1:
        relay.use_workers(
            workers - 1,
            {
                "VITRINE_RTC_LOOPBACK": "1" if settings.rtc_loopback else "0",
                "VITRINE_ICE_SERVERS": settings.ice_servers,
                "VITRINE_LOG_LEVEL": settings.log_level,
                "VITRINE_RTC_PORT_MIN": str(settings.rtc_port_min),
                "VITRINE_RTC_PORT_MAX": str(settings.rtc_port_max),
            },
        )

    async def refresh() -> None:
        metrics.refresh(relay)

    st.metric_refreshers.append(refresh)

    async def reaper() -> None:
        while True:
            await asyncio.sleep(REAP_EVERY)
            try:
                await relay.reap()
                await relay.close_ended()
            except Exception:
                log.exception("reaping peers failed")

    loop = asyncio.get_running_loop()
    with (
        hooks.loopback_only(settings.rtc_loopback),
        hooks.udp_port_range(loop, settings.rtc_port_min, settings.rtc_port_max),
    ):
        tasks = [asyncio.create_task(reaper()), asyncio.create_task(relay.gauge.run())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await relay.close()
