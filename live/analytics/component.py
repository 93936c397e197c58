"""Analytics component: the batched recorder behind ``app.state.track`` and the report routes.

Contract for every producer (room, sessions, catalog, rtc)::

    app.state.track(kind, session_id, viewer_id=None, **fields)  # never blocks, never raises

kinds: joined, left, heartbeat, impression, card_opened, cart_added, purchase, chat,
question, reaction (see :mod:`live.analytics.events`). ``app.state.analytics`` is the
:class:`~live.analytics.recorder.Recorder` (``await analytics.flush()`` writes what is queued).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from live.analytics import routes as report_routes
from live.analytics.recorder import Recorder


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    st = app.state
    recorder = Recorder(st.db, registry=st.metrics.registry)
    st.analytics = recorder
    st.track = recorder.track

    async def refresh() -> None:
        recorder.metrics.queued.set(recorder.pending)

    st.metric_refreshers.append(refresh)
    await recorder.start()
    try:
        yield
    finally:
        await recorder.stop()


def routes() -> list[BaseRoute]:
    return report_routes.routes()
