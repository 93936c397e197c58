"""Analytics component (placeholder): ``app.state.track`` records behaviour events.

Contract for every producer (room, sessions, catalog, rtc)::

    app.state.track(kind, session_id, viewer_id=None, **fields)  # never blocks, never raises

kinds: joined, left, heartbeat, impression, card_opened, cart_added, purchase, chat,
question, reaction. The analytics package replaces this no-op with a batched recorder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute


def _noop(kind: str, session_id: str, viewer_id: str | None = None, **fields: Any) -> None:
    return None


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.track = _noop
    yield


def routes() -> list[BaseRoute]:
    return []
