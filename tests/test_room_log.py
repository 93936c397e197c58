"""The durable room log: replay from the database past the bus buffer, ids across restarts,
staff-only events, presence, reactions and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from live.config import Settings
from tests.conftest import ADMIN_TOKEN
from tests.support.factory import build_world
from tests.support.room import close_all, host_token, join, open_room, viewer
from tests.support.server import LiveServer, thread_server


def emit(server: LiveServer, *args: Any, **kw: Any) -> dict[str, Any]:
    """Call ``app.state.rooms.emit`` on the server's loop, as another package would."""
    fut = asyncio.run_coroutine_threadsafe(
        server.app.state.rooms.emit(*args, **kw), server.app.state.room_hub._loop
    )
    return fut.result(10)  # type: ignore[no-any-return]


async def test_replay_past_the_buffer_and_ids_across_restarts(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(database_url, replay_buffer=3, rate_limit_messages=100)
    with thread_server(settings) as srv:
        world = build_world(srv, ADMIN_TOKEN)
        sid = world["public"]["id"]
        host = await open_room(srv, sid, host_token(world))
        for i in range(10):
            await host.send("chat", text=f"m{i}")
        await host.wait_type("chat", text="m9")
        await host.close()
        first = host.of("chat")[0]["id"]
        joined = await join(srv, sid, "Ana")
        ana = await open_room(srv, sid, joined["token"], after=first - 1)
        await ana.wait_type("chat", text="m9")
        assert [e["text"] for e in ana.of("chat")] == [f"m{i}" for i in range(10)]
        last = ana.ids()[-1]
        await ana.close()
    with thread_server(settings) as srv:  # a restart: ids keep increasing, the log is still there
        again = await open_room(srv, sid, joined["token"], after=first)
        await again.wait_type("chat", text="m9")
        assert [e["text"] for e in again.of("chat")] == [f"m{i}" for i in range(1, 10)]
        assert again.hello["id"] >= last and [m["text"] for m in again.hello["chat"]][-1] == "m9"
        await again.send("chat", text="after restart")
        ev = await again.wait_type("chat", text="after restart")
        assert ev["id"] > last
        await again.close()


async def test_staff_only_events_and_the_emit_contract(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid = world["public"]["id"]
    ana = await viewer(server, sid)
    host = await open_room(server, sid, host_token(world))
    staff = await open_room(server, sid, world["admin"])
    try:
        counters = emit(server, sid, "counters", {"orders": 1, "revenue": 39900}, store=False)
        assert counters["type"] == "counters" and counters["id"] > 0 and counters["ts"] > 0
        purchase = emit(server, sid, "purchase", {"order_id": "or_1"}, audience="staff")
        deal = emit(server, sid, "deal_started", {"deal_id": "dl_1"})
        assert deal["id"] > purchase["id"] > counters["id"]
        for c in (host, staff):
            await c.wait_type("deal_started")
            assert [
                e["type"] for e in c.events if e["type"] in ("counters", "purchase", "deal_started")
            ] == ["counters", "purchase", "deal_started"]
        await ana.wait_type("deal_started")
        assert not ana.of("counters") and not ana.of("purchase")
        # a viewer replaying the log does not see staff events either; the host does
        joined = await join(server, sid, "Bo")
        bo = await open_room(server, sid, joined["token"], after=0)
        await bo.wait_type("deal_started")
        assert not bo.of("purchase")
        h2 = await open_room(server, sid, host_token(world), after=0)
        await h2.wait_type("deal_started")
        assert h2.of("purchase") and h2.of(
            "counters"
        )  # from the bus buffer (counters are not stored)
        await close_all(bo, h2)
    finally:
        await close_all(ana, host, staff)


async def test_presence_reactions_and_metrics(server: LiveServer, world: dict[str, Any]) -> None:
    sid = world["public"]["id"]
    host = await open_room(server, sid, host_token(world))
    ana, bo = await viewer(server, sid, "Ana"), await viewer(server, sid, "Bo")
    try:
        await host.wait_type("presence", viewers=2)  # the host is not a viewer
        for kind in ("heart", "heart", "clap"):
            await ana.send("react", kind=kind)
        await bo.send("react", kind="heart")

        def total(kind: str) -> int:
            return sum(e["counts"].get(kind, 0) for e in host.of("reaction"))

        await host.wait(
            lambda e: total("heart") == 3 and total("clap") == 1, "aggregated reactions"
        )
        assert len(host.of("reaction")) <= 2
        await bo.close()
        await host.wait(lambda e: e.get("type") == "presence" and e["viewers"] == 1, "presence 1")
        with server.client(host_token(world)) as c:
            c.post(f"/api/sessions/{sid}/start")
            text = c.get("/metrics").text
        assert "vitrine_sessions_live 1.0" in text
        assert "vitrine_ws_connections 2.0" in text
        assert (
            'vitrine_room_events_total{type="chat"}' in text
            or 'vitrine_room_events_total{type="presence"}' in text
        )
    finally:
        await close_all(host, ana, bo)
