"""Two real server processes on one Redis: chat crosses processes and presence counts both."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tests.conftest import ADMIN_TOKEN, SECRET
from tests.support.factory import build_world
from tests.support.room import close_all, host_token, join, open_room, viewer
from tests.support.server import LiveServer, process_server


@pytest.fixture
def two_servers(
    database_url: str, redis_url: str, tmp_path: Any
) -> Iterator[tuple[LiveServer, LiveServer]]:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "VITRINE_SECRET_KEY": SECRET,
        "VITRINE_ADMIN_TOKEN": ADMIN_TOKEN,
        "VITRINE_REDIS_PREFIX": "vt" + secrets.token_hex(4),
        "VITRINE_DATA_DIR": str(tmp_path / "data"),
        "VITRINE_ROOM_TICK_MS": "20",
    }
    with ExitStack() as stack:
        a = stack.enter_context(process_server(env))
        b = stack.enter_context(process_server(env))
        yield a, b


async def test_chat_crosses_processes_and_presence_counts_both(
    two_servers: tuple[LiveServer, LiveServer],
) -> None:
    a, b = two_servers
    world = build_world(a, ADMIN_TOKEN)
    sid = world["public"]["id"]
    with a.client() as c:
        assert c.get("/healthz").json()["bus"] == "redis"
    ana = await viewer(a, sid, "Ana")
    bo = await viewer(b, sid, "Bo")
    host = await open_room(b, sid, host_token(world))
    try:
        await ana.send("chat", text="from A")
        assert (await bo.wait_type("chat", text="from A"))["name"] == "Ana"
        await bo.send("chat", text="from B")
        await ana.wait_type("chat", text="from B")
        await ana.wait_type("presence", viewers=2)
        await bo.wait_type("presence", viewers=2)
        # ids are one sequence for the session, whichever process assigned them
        ids_a, ids_b = ana.ids(), bo.ids()
        assert ids_a == sorted(set(ids_a)) and ids_b == sorted(set(ids_b))
        chat_ids = {e["text"]: e["id"] for e in ana.of("chat")}
        assert chat_ids == {e["text"]: e["id"] for e in bo.of("chat")}
        # pins and host-only events cross too
        await host.send("pin", product_id=world["products"][0]["id"])
        await ana.wait_type("pin")
        # a viewer reconnecting to the other process resumes where it stopped
        last = ana.ids()[-1]
        joined = await join(a, sid, "Cy")
        cy = await open_room(a, sid, joined["token"])
        await cy.close()  # Cy was on A, has seen up to `last`, and comes back through B
        await bo.send("question", text="still there?")
        await host.wait_type("question")
        back = await open_room(b, sid, joined["token"], after=last)
        await back.wait_type("question", text="still there?")
        assert all(e["id"] > last for e in back.events[1:])
        await close_all(bo, back)
        await host.wait(
            lambda e: e.get("type") == "presence" and e["viewers"] == 1, "one viewer left"
        )
    finally:
        await close_all(ana, bo, host)


async def test_staff_only_events_cross_processes_to_staff_only(
    two_servers: tuple[LiveServer, LiveServer],
) -> None:
    a, b = two_servers
    world = build_world(a, ADMIN_TOKEN)
    sid = world["public"]["id"]
    ana = await viewer(a, sid, "Ana")
    staff = await open_room(a, sid, ADMIN_TOKEN)
    host = await open_room(b, sid, host_token(world))
    try:
        joined = await join(b, sid, "Troll")
        troll = await open_room(b, sid, joined["token"])
        await host.send("ban", viewer_id=joined["viewer_id"])
        assert await troll.closed() == 4403
        mod = await staff.wait_type("moderation", action="ban")
        assert mod["viewer_id"] == joined["viewer_id"]
        await host.send("chat", text="after the ban")
        await ana.wait_type("chat", text="after the ban")
        assert not ana.of("moderation")
    finally:
        await close_all(ana, staff, host)


async def test_ids_continue_from_the_log_when_redis_forgets(
    two_servers: tuple[LiveServer, LiveServer],
) -> None:
    import redis.asyncio as aioredis

    a, b = two_servers
    world = build_world(a, ADMIN_TOKEN)
    sid = world["public"]["id"]
    host = await open_room(a, sid, host_token(world))
    ana = await viewer(b, sid, "Ana")
    r = aioredis.from_url(a.settings.redis_url)
    try:
        await host.send("chat", text="before")
        before = await ana.wait_type("chat", text="before")
        prefix = a.settings.redis_prefix
        assert (
            await r.delete(f"{prefix}:room:{{{sid}}}:seq", f"{prefix}:room:{{{sid}}}:events") == 2
        )
        await host.send("chat", text="after")
        after = await ana.wait_type("chat", text="after")
        assert after["id"] > before["id"]
        back = await viewer(b, sid, "Bo", after=0)  # the log still has both, in order
        await back.wait_type("chat", text="after")
        assert [e["text"] for e in back.of("chat")] == ["before", "after"]
        await back.close()
    finally:
        await r.aclose()
        await close_all(host, ana)
