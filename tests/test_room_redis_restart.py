"""Redis comes and goes: a real ``redis-server`` started by the test on its own port (the shared
one at 6379 is never touched), killed and restarted under a real server process.

* the first request after a restart succeeds (``/healthz``, a chat, a new room socket), also
  when, as behind a NAT or a container's port mapping, the server's pooled connections are not
  told that Redis went away and fail only when next used;
* an idle bus reader keeps one connection and logs nothing (its socket timeout is longer than
  its ``XREAD BLOCK``);
* with Redis down an order is paid, and its ``purchase`` and ``counters`` reach the room once
  Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from live.room.redis_bus import BLOCK_MS
from tests.conftest import ADMIN_TOKEN, SECRET
from tests.support import services
from tests.support.factory import abuy, build_world, join_buyer, set_stock
from tests.support.room import close_all, host_token, open_room, viewer
from tests.support.server import LiveServer, free_port, spawned_server, wait_for


class RedisServer:
    """A throw-away ``redis-server`` (no persistence) that can be killed and started again on
    the same port."""

    def __init__(self, tmp: Path) -> None:
        if shutil.which("redis-server") is None:
            if services.IN_CI:
                pytest.fail("redis-server is not installed (CI never skips)")
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.dir = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_for(up, 10, what="redis-server")
        client.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def clients(self) -> list[dict[str, Any]]:
        with redis.Redis(port=self.port) as c:
            return list(c.client_list())


class StaleProxy:
    """A TCP proxy in front of Redis that, like a NAT or a container's port mapping, keeps the
    client's side of a connection open when Redis goes away; the connection is closed only
    when the client next sends on it."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        started.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        started.set()
        self.loop.run_forever()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            return
        gone = asyncio.Event()

        async def up() -> None:  # client -> Redis; data for a Redis that went away closes it
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    if gone.is_set():
                        break
                    uw.write(data)
                    await uw.drain()
            writer.close()
            uw.close()

        async def down() -> None:  # Redis -> client; Redis closing is not passed on
            with contextlib.suppress(OSError):
                while data := await ur.read(65536):
                    writer.write(data)
                    await writer.drain()
            gone.set()

        await asyncio.gather(up(), down())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    r = RedisServer(tmp_path)
    r.start()
    try:
        yield r
    finally:
        if r.proc is not None and r.proc.poll() is None:
            r.kill()


@contextmanager
def server_with_log(env: dict[str, str]) -> Iterator[tuple[LiveServer, Path]]:
    """A server process whose stderr (its log) the test reads."""
    with spawned_server(env) as spawned:
        yield spawned.server, spawned.log_path


def env_for(database_url: str, redis_url: str, tmp: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "VITRINE_SECRET_KEY": SECRET,
        "VITRINE_ADMIN_TOKEN": ADMIN_TOKEN,
        "VITRINE_REDIS_PREFIX": "vt" + secrets.token_hex(4),
        "VITRINE_DATA_DIR": str(tmp / "data"),
        "VITRINE_ROOM_TICK_MS": "20",
        "VITRINE_LOG_LEVEL": "INFO",
        "VITRINE_LOG_FORMAT": "text",
    }


async def test_the_first_requests_after_a_redis_restart_succeed(
    database_url: str, own_redis: RedisServer, tmp_path: Path
) -> None:
    proxy = StaleProxy(own_redis.port)
    with (
        contextlib.closing(proxy),
        server_with_log(env_for(database_url, proxy.url, tmp_path)) as (srv, _log),
    ):
        world = build_world(srv, ADMIN_TOKEN)
        sid = world["public"]["id"]
        ana = await viewer(srv, sid, "Ana")
        host = await open_room(srv, sid, host_token(world))
        try:
            await ana.send("chat", text="before")
            await host.wait_type("chat", text="before")
            async with srv.aclient() as c:  # many pooled connections, then all go stale
                burst = await asyncio.gather(*(c.get("/healthz") for _ in range(20)))
                assert {r.status_code for r in burst} == {200}
                own_redis.restart()
                burst = await asyncio.gather(*(c.get("/healthz") for _ in range(10)))
                assert [r.status_code for r in burst] == [200] * 10, [r.text for r in burst]
            await ana.send("chat", text="after the restart")
            # the reader may sit on a connection Redis left until its socket timeout
            said = await host.wait(
                lambda e: e.get("type") == "chat" and e.get("text") != "before",
                "the chat sent after the restart",
                timeout=30,
            )
            assert said.get("text") == "after the restart", said
            assert ana.of("error") == []
            bo = await viewer(srv, sid, "Bo")  # a new room socket: hello, not 1011
            try:
                assert bo.close_code is None and bo.hello["type"] == "hello"
                await ana.send("chat", text="to Bo")
                await bo.wait_type("chat", text="to Bo", timeout=30)
            finally:
                await bo.close()
        finally:
            await close_all(ana, host)


async def test_an_idle_bus_reader_neither_times_out_nor_warns(
    sqlite_url: str, own_redis: RedisServer, tmp_path: Path
) -> None:
    with server_with_log(env_for(sqlite_url, own_redis.url, tmp_path)) as (srv, log_path):
        world = build_world(srv, ADMIN_TOKEN)
        ana = await viewer(srv, world["public"]["id"], "Ana")  # the reader now XREADs a stream
        try:
            # the reader's connection survives several idle XREAD BLOCK cycles: a socket timeout
            # equal to the block would drop it (and log) every cycle
            cycles = 2
            age = cycles * BLOCK_MS // 1000 + 1

            def reader_kept() -> bool:
                return any(
                    c.get("cmd") == "xread" and int(c.get("age", 0)) >= age
                    for c in own_redis.clients()
                )

            wait_for(reader_kept, age + 15, interval=0.2, what="a long-lived xread connection")
            log = log_path.read_text(errors="replace")
            assert "room bus read failed" not in log, log[-2000:]
            assert "Timeout" not in log, log[-2000:]
        finally:
            await ana.close()


async def test_orders_succeed_while_redis_is_down_and_their_events_arrive_after(
    database_url: str, own_redis: RedisServer, tmp_path: Path
) -> None:
    with server_with_log(env_for(database_url, own_redis.url, tmp_path)) as (srv, _log):
        world = build_world(srv, ADMIN_TOKEN)
        sid, product = world["public"]["id"], world["products"][0]
        set_stock(srv, world["admin"], product, world["store"]["id"], 5)
        buyer = join_buyer(srv, sid)
        host = await open_room(srv, sid, host_token(world))
        ana = await viewer(srv, sid, "Ana")
        try:
            own_redis.kill()
            order = await abuy(srv, buyer, sid, product["id"])  # paid with Redis down
            assert order["status"] == "paid", order
            with srv.client() as c:
                assert c.get("/healthz").status_code == 503  # honest about the bus meanwhile
            own_redis.start()
            bought = await ana.wait_type("purchase", timeout=30)
            assert bought["product_id"] == product["id"]
            counters = await host.wait_type("counters", timeout=30, orders=1)
            assert counters["revenue"] == product["price"]
            assert ana.of("counters") == []
            # and the purchase is in the room's log: a resume from before it replays it
            late = await open_room(srv, sid, host_token(world), after=0)
            try:
                await late.wait_type("purchase", product_id=product["id"])
            finally:
                await late.close()
        finally:
            await close_all(host, ana)
