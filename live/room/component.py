"""Room component: creates the event bus and the room service (placeholder until the hub lands)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from live.sessions import SessionService


class _NullBus:
    name = "none"

    async def ping(self) -> bool:
        return True


class _NullRooms:
    async def emit(self, session_id: str, type: str, data: dict[str, Any], *, store: bool = True) -> None:
        return None


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    st = app.state
    st.bus = _NullBus()
    st.rooms = _NullRooms()
    st.sessions = SessionService(st.db, st.tokens, emit=st.rooms.emit)
    yield


def routes() -> list[BaseRoute]:
    return []
