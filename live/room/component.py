"""Room component: the event bus, the hub and the room service on ``app.state``; the room socket.

``app.state.bus`` — :class:`LocalBus` without ``REDIS_URL``, :class:`RedisBus` with it;
``app.state.rooms`` — :class:`RoomService` (``emit``); ``app.state.room_hub`` — this process's
fan-out hub; ``app.state.sessions`` — the session service, broadcasting through the room.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute, WebSocketRoute

from live.room import store
from live.room.bus import EventBus, LocalBus
from live.room.hub import Hub
from live.room.persist import Persister
from live.room.presence import LocalPresence, Presence, RedisPresence
from live.room.protocol import RateLimiter
from live.room.redis_bus import RedisBus
from live.room.service import RoomService
from live.room.ws import room_socket
from live.sessions import SessionService


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    st = app.state
    settings = st.settings
    bus: EventBus
    presence: Presence
    if st.redis is not None:
        bus = RedisBus(
            st.redis,
            st.db,
            prefix=settings.redis_prefix,
            buffer_size=settings.replay_buffer,
            process_id=st.process_id,
        )
        presence = RedisPresence(st.redis, prefix=settings.redis_prefix, process_id=st.process_id)
    else:
        bus = LocalBus(st.db, settings.replay_buffer)
        presence = LocalPresence()

    def track(*args: Any, **fields: Any) -> None:
        """``track(kind, session_id, viewer_id, **fields)`` passed on as it came: a field may be
        called ``kind`` itself (a reaction's), so the leading three stay positional."""
        recorder = getattr(st, "track", None)  # looked up per call: analytics may swap it
        if recorder is not None:
            recorder(*args, **fields)

    hub = Hub(
        bus=bus,
        presence=presence,
        metrics=st.metrics,
        track=track,
        tick_ms=settings.room_tick_ms,
        limiter=RateLimiter(settings.rate_limit_messages, settings.rate_limit_window),
    )
    persister = Persister(st.db, st.metrics.room_commit_seconds)
    rooms = RoomService(
        db=st.db,
        bus=bus,
        hub=hub,
        track=track,
        persister=persister,
        ack_before_commit=settings.room_ack_before_commit,
    )
    hub.bind(emit=rooms.emit, load_state=rooms.load_state)
    st.bus, st.room_hub, st.rooms = bus, hub, rooms
    st.sessions = SessionService(st.db, st.tokens, emit=rooms.emit)

    async def refresh_sessions_live() -> None:
        st.metrics.sessions_live.set(await store.live_sessions(st.db))

    st.metric_refreshers.append(refresh_sessions_live)
    persister.start()
    await bus.start(hub.deliver)
    hub.start()
    try:
        yield
    finally:
        await hub.close()
        await rooms.close()
        await bus.close()
        await persister.close()


def routes() -> list[BaseRoute]:
    return [WebSocketRoute("/ws/sessions/{id}", room_socket)]
