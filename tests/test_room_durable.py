"""An acknowledged message is durable: a real server process is SIGKILLed right after its
sender saw the echoes, and after a restart every acknowledged chat is in the database — on
SQLite (one process) and on PostgreSQL with Redis. A resume that cannot be served in full says
``recovered: false`` and the hello carries the history to rebuild from.

To make "right after" deterministic, the test holds the database's write lock while the chats
are sent: a server that echoes before committing shows them while nothing can be committed,
and the kill then loses them; a server that acknowledges only durable messages holds them
(its ``vitrine_room_uncommitted`` gauge says so) until the lock is released and the commit is
done, and only then echoes.
"""

from __future__ import annotations

import secrets
import signal
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis
from sqlalchemy import select

from live.db import Database
from live.models import ChatMessage, RoomEvent
from tests.conftest import ADMIN_TOKEN, SECRET
from tests.support import services
from tests.support.browser import chromium
from tests.support.factory import build_world
from tests.support.room import RoomClient, close_all, host_token, join, open_room
from tests.support.server import (
    LiveServer,
    await_for,
    free_port,
    spawned_server,
)

COUNT = 5


@contextmanager
def killable_server(
    env: dict[str, str], port: int | None = None
) -> Iterator[tuple[LiveServer, subprocess.Popen[bytes]]]:
    with spawned_server(env, port=port) as spawned:
        yield spawned.server, spawned.proc


@asynccontextmanager
async def write_lock(database_url: str) -> AsyncIterator[None]:
    """Hold what the server needs to commit a chat: SQLite's write lock, or on PostgreSQL a
    lock on ``room_events`` that blocks inserts (reads still work)."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.split(":///", 1)[1], isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
    else:
        pg = await asyncpg.connect(database_url)
        await pg.execute("BEGIN")
        await pg.execute("LOCK TABLE room_events IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            await pg.execute("ROLLBACK")
            await pg.close()


def gauge(server: LiveServer, name: str) -> float:
    for line in httpx.get(server.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


async def stored_chats(database_url: str, session_id: str) -> tuple[set[str], set[str]]:
    db = Database(database_url)
    try:
        async with db.read() as s:
            messages = set(
                (
                    await s.scalars(
                        select(ChatMessage.text).where(ChatMessage.session_id == session_id)
                    )
                ).all()
            )
            events = (
                await s.scalars(
                    select(RoomEvent).where(
                        RoomEvent.session_id == session_id, RoomEvent.type == "chat"
                    )
                )
            ).all()
        return messages, {str(e.data.get("text")) for e in events}
    finally:
        await db.dispose()


@pytest.fixture(params=["sqlite", "postgresql+redis"])
def durable_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        "VITRINE_SECRET_KEY": SECRET,
        "VITRINE_ADMIN_TOKEN": ADMIN_TOKEN,
        "VITRINE_REDIS_PREFIX": "vt" + secrets.token_hex(4),
        "VITRINE_DATA_DIR": str(tmp_path / "data"),
        "VITRINE_ROOM_TICK_MS": "20",
        "VITRINE_RATE_LIMIT_MESSAGES": "1000",
        "VITRINE_LOG_LEVEL": "WARNING",
    }
    if request.param == "sqlite":
        yield {**env, "DATABASE_URL": services.sqlite_database(tmp_path)}
    else:
        services.need_redis()
        url = services.postgres_database()
        try:
            yield {**env, "DATABASE_URL": url, "REDIS_URL": services.REDIS_URL}
        finally:
            services.drop_postgres_database(url)


def forget_session(env: dict[str, str], session_id: str) -> None:
    """What a flushed or replaced Redis looks like to one session: its keys are gone."""
    with redis.Redis.from_url(env["REDIS_URL"]) as r:
        keys = list(r.scan_iter(f"{env['VITRINE_REDIS_PREFIX']}:room:{{{session_id}}}:*"))
        if keys:
            r.delete(*keys)


async def test_acked_chats_survive_a_sigkill_and_a_lost_history_says_recovered_false(
    durable_env: dict[str, str],
) -> None:
    env = durable_env
    texts = [f"durable {i}" for i in range(COUNT)]

    def echoed(c: RoomClient) -> bool:
        return {e.get("text") for e in c.of("chat")} >= set(texts)

    with killable_server(env) as (srv, proc):
        world = build_world(srv, ADMIN_TOKEN)
        sid = world["public"]["id"]
        joined = await join(srv, sid, "Ana")
        ana = await open_room(srv, sid, joined["token"])
        host = await open_room(srv, sid, host_token(world))
        try:
            await ana.send("chat", text="warm-up")
            warm = await ana.wait_type("chat", text="warm-up")
            same = await open_room(srv, sid, joined["token"], after=warm["id"] - 1)
            assert same.hello["recovered"] is True  # nothing was lost: served in full
            await same.wait_type("chat", text="warm-up")
            await same.close()
            async with write_lock(env["DATABASE_URL"]):
                for text in texts:
                    await ana.send("chat", text=text)
                await await_for(
                    lambda: echoed(ana) or gauge(srv, "vitrine_room_uncommitted") >= 1,
                    20,
                    what="the echoes, or the server holding them for their commit",
                )
                if echoed(ana):  # acknowledged while nothing could be committed
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(10)
                else:  # the others see the chats at once; the sender's echo waits its commit
                    await host.wait(
                        lambda _e: {e.get("text") for e in host.of("chat")} >= set(texts),
                        "the others see the chats before their commit",
                    )
                    assert not echoed(ana)
            if proc.poll() is None:
                await await_for(lambda: echoed(ana), 20, what="the echoes after the commit")
                proc.send_signal(signal.SIGKILL)  # right after the acknowledgements
                proc.wait(10)
            seen = max(ana.ids())
        finally:
            await close_all(ana, host)

    messages, events = await stored_chats(env["DATABASE_URL"], sid)
    assert set(texts) <= messages, sorted(set(texts) - messages)
    assert set(texts) <= events, sorted(set(texts) - events)

    if "REDIS_URL" in env:  # Redis kept the sequence; now it loses it too
        forget_session(env, sid)
    with killable_server(env) as (srv, _proc):
        if "REDIS_URL" in env:
            host = await open_room(srv, sid, host_token(world))
            await host.send("chat", text="after Redis forgot")  # the counter is seeded again
            await host.wait_type("chat", text="after Redis forgot")
            await host.close()
        back = await open_room(srv, sid, joined["token"], after=seen)
        try:
            hello: dict[str, Any] = back.hello
            assert hello["recovered"] is False  # ids restarted: what came just before is unknown
            assert set(texts) <= {m["text"] for m in hello["chat"]}  # the history to rebuild from
            await back.send("chat", text="still here")
            assert (await back.wait_type("chat", text="still here"))["id"] > seen
        finally:
            await back.close()


def test_the_watch_page_rebuilds_its_history_when_a_resume_is_not_recovered(
    tmp_path: Path,
) -> None:
    """A phone shows a chat and a question; the server dies and comes back without them (its
    history lost); the page's resume is answered ``recovered: false`` and the page drops what
    no longer exists instead of merging the hello into it."""
    url = services.sqlite_database(tmp_path)
    env = {
        "DATABASE_URL": url,
        "VITRINE_SECRET_KEY": SECRET,
        "VITRINE_ADMIN_TOKEN": ADMIN_TOKEN,
        "VITRINE_DATA_DIR": str(tmp_path / "data"),
        "VITRINE_ROOM_TICK_MS": "20",
        "VITRINE_LOG_LEVEL": "WARNING",
    }
    port = free_port()
    with chromium() as browser:
        with killable_server(env, port) as (srv, proc):
            world = build_world(srv, ADMIN_TOKEN)
            pub = world["public"]
            with srv.client(pub["host_token"]) as host:
                assert host.post(f"/api/sessions/{pub['id']}/start").status_code == 200
            page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
            errors: list[str] = []  # script errors (refused connections while down are expected)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{srv.url}/watch/{pub['id']}")
            page.wait_for_selector("#chat-text:not([disabled])")
            page.fill("#chat-text", "ghost chat")
            page.press("#chat-text", "Enter")
            page.wait_for_selector("#name-sheet[open]", timeout=10000)  # the first asks a name
            page.fill("#n-name", "Ana")
            page.press("#n-name", "Enter")
            page.wait_for_selector("#chat li:has-text('ghost chat')", timeout=10000)
            page.click("#open-questions")
            page.fill("#question-text", "ghost question?")
            page.press("#question-text", "Enter")
            page.wait_for_selector("#question-list li:has-text('ghost question?')", timeout=10000)
            page.click("#questions [data-close]")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        with sqlite3.connect(url.split(":///", 1)[1]) as db:  # the history is gone
            for table in ("room_events", "chat_messages", "questions"):
                db.execute(f"DELETE FROM {table} WHERE session_id = ?", (pub["id"],))
        with killable_server(env, port):
            page.fill("#chat-text", "back again")
            page.press("#chat-text", "Enter")  # sent once the page has reconnected
            page.wait_for_selector("#chat li:has-text('back again')", timeout=30000)
            assert page.locator("#chat li", has_text="ghost chat").count() == 0
            assert page.locator("#question-list li", has_text="ghost question?").count() == 0
        assert errors == [], errors
