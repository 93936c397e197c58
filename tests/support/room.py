"""Helpers for the room tests (no tests here): real ``websockets`` clients and viewer joins."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.server import LiveServer, await_for

Event = dict[str, Any]


class RoomClient:
    """A real WebSocket client that records every event it receives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[Event] = []
        self.frames = 0
        self.close_code: int | None = None
        self.close_reason = ""
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames += 1
                batch = orjson.loads(raw)
                assert isinstance(batch, list), batch
                self.events.extend(batch)
        except ConnectionClosed:
            pass
        rcvd = self.ws.close_code
        self.close_code = rcvd if rcvd is not None else 1006
        self.close_reason = self.ws.close_reason or ""

    @property
    def hello(self) -> Event:
        assert self.events and self.events[0]["type"] == "hello", self.events[:1]
        return self.events[0]

    async def send(self, type: str, **fields: Any) -> None:
        await self.ws.send(orjson.dumps({"type": type, **fields}).decode())

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    def of(self, type: str) -> list[Event]:
        return [e for e in self.events if e.get("type") == type]

    async def wait(
        self, pred: Callable[[Event], bool], what: str = "event", timeout: float = 10
    ) -> Event:
        def find() -> Event | None:
            return next((e for e in self.events if pred(e)), None)

        return await await_for(find, timeout, what=what)  # type: ignore[no-any-return]

    async def wait_type(self, type: str, timeout: float = 10, **match: Any) -> Event:
        return await self.wait(
            lambda e: e.get("type") == type and all(e.get(k) == v for k, v in match.items()),
            f"{type} {match}",
            timeout,
        )

    async def error(self, code: str, timeout: float = 10) -> Event:
        return await self.wait_type("error", timeout, error=code)

    async def closed(self, timeout: float = 10) -> int:
        await await_for(lambda: self.close_code is not None, timeout, what="close")
        assert self.close_code is not None
        return self.close_code

    def ids(self) -> list[int]:
        return [e["id"] for e in self.events if e.get("type") not in ("hello", "error")]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        with contextlib.suppress(Exception):
            await self._reader


async def open_room(
    server: LiveServer | str,
    session_id: str,
    token: str | None,
    after: int | None = None,
    wait_hello: bool = True,
    **kw: Any,
) -> RoomClient:
    base = server if isinstance(server, str) else server.ws_url
    q = f"?after={after}" if after is not None else ""
    ws = await connect(
        f"{base}/ws/sessions/{session_id}{q}",
        compression=None,
        subprotocols=room_protocols(token),  # type: ignore[arg-type]
        **kw,
    )
    client = RoomClient(ws)
    if wait_hello:
        await await_for(lambda: client.events or client.close_code is not None, 10, what="hello")
    return client


def room_protocols(token: str | None) -> list[str]:
    """The room socket's subprotocols: the token travels there, never in the URL."""
    return ["vitrine.room"] + ([f"vitrine.token.{token}"] if token is not None else [])


async def join(
    server: LiveServer, session_id: str, name: str = "Ana", invite: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if invite:
        body["invite"] = invite
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        r = await c.post(f"/api/sessions/{session_id}/viewers", json=body)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]


async def viewer(
    server: LiveServer, session_id: str, name: str = "Ana", after: int | None = None
) -> RoomClient:
    joined = await join(server, session_id, name)
    return await open_room(server, session_id, joined["token"], after=after)


def host_token(world: dict[str, Any], key: str = "public") -> str:
    return world[key]["host_token"]  # type: ignore[no-any-return]


async def close_all(*clients: RoomClient) -> None:
    await asyncio.gather(*(c.close() for c in clients))
