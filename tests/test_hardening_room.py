"""Hardening of the room socket: hostile ``after`` values and text never break the room or lose a
message, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from live.config import Settings
from tests.conftest import ADMIN_TOKEN
from tests.support.factory import build_world
from tests.support.room import close_all, join, open_room, viewer
from tests.support.server import LiveServer, await_for, thread_server


async def test_after_beyond_64_bits_is_refused(server: LiveServer, world: dict[str, Any]) -> None:
    pub = world["public"]["id"]
    ana = await join(server, pub, "Ana")
    for after in (2**63, 2**64 - 1, 10**22):
        c = await open_room(server, pub, ana["token"], after=after)
        assert await c.closed() == 4400, (after, c.close_reason)
    ok = await open_room(server, pub, ana["token"], after=2**63 - 1)
    assert ok.hello["type"] == "hello"
    await close_all(ok)


async def test_nul_in_chat_is_refused_and_the_room_keeps_working(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid = world["public"]["id"]
    ana, bo = await viewer(server, sid, "Ana"), await viewer(server, sid, "Bo")
    try:
        await ana.send("chat", text="a\u0000b", ref="r1")
        err = await ana.wait_type("error", ref="r1")
        assert err["error"] == "invalid"
        await ana.send("question", text="\u0000", ref="r2")
        assert (await ana.wait_type("error", ref="r2"))["error"] == "invalid"
        await ana.send("chat", text="\u202eRTL <b>ok</b>")
        got = await bo.wait_type("chat")
        assert got["text"] == "\u202eRTL <b>ok</b>"
    finally:
        await close_all(ana, bo)
    # the message was stored: a late reader sees it in the hello backlog
    late = await viewer(server, sid, "Cy")
    try:
        assert [m["text"] for m in late.hello["chat"]] == ["\u202eRTL <b>ok</b>"]
    finally:
        await close_all(late)


async def test_one_viewer_cannot_hold_unbounded_sockets(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    with thread_server(make_settings(database_url, max_sockets_per_viewer=2)) as server:
        world = build_world(server, ADMIN_TOKEN)
        pub = world["public"]["id"]
        ana, bo = await join(server, pub, "Ana"), await join(server, pub, "Bo")
        first = [await open_room(server, pub, ana["token"]) for _ in range(2)]
        third = await open_room(server, pub, ana["token"])
        assert await third.closed() == 4429, third.close_reason
        other = await open_room(server, pub, bo["token"])  # other viewers are unaffected
        host = await open_room(server, pub, world["admin"])
        await first[0].send("chat", text="still here")
        assert (await other.wait_type("chat"))["text"] == "still here"
        await close_all(first[0])
        hub = server.app.state.room_hub
        await await_for(lambda: hub.rooms[pub].viewers.get(ana["viewer_id"]) == 1)
        again = await open_room(server, pub, ana["token"])  # a closed socket frees its place
        assert again.hello["type"] == "hello"
        await close_all(first[1], again, other, host)
