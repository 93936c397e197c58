"""The Redis event bus: one sequence counter and one capped stream per session.

Keys (``P`` = ``settings.redis_prefix``; the braces keep a session's keys in one cluster slot):

* ``P:room:{sid}:seq`` — the last id assigned (when missing, seeded with ``SET NX`` from the
  database max plus a gap, see :func:`live.room.store.seed_id`: the script answers -1 and the
  caller retries with the seed);
* ``P:room:{sid}:events`` — a stream whose entry ids are ``<event id>-0``, trimmed to about
  ``replay_buffer`` entries; fields ``t`` type, ``ts``, ``d`` JSON data, ``a`` audience;
* ``P:room:{sid}:epoch`` — the seed the counter last started from (set with it);
* all three expire 14 days after the session's last event;
* ``P:room:wake:<process>`` — wakes this process's blocking reader when it starts watching a
  new session.

A Lua script increments the counter and appends to the stream atomically, so stream order is
id order. Each process runs one reader task that ``XREAD BLOCK``s the streams of the sessions
it has local connections for and hands entries to the hub in order.

Redis may restart under us. :func:`redis_client` retries a command once more on a fresh
connection when a pooled one turns out dead (``ConnectionError``/``TimeoutError``), so the first
request after a restart succeeds. The reader has its own small pool whose socket timeout is
longer than its ``XREAD BLOCK``, so an idle read returns empty instead of timing out. While
Redis is down :meth:`RedisBus.publish` raises :class:`live.room.bus.BusUnavailable`; the room
service queues what other components emit (orders' ``purchase`` and ``counters``) and
publishes it when Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from live.db import Database, now_ms
from live.room import store
from live.room.bus import BusUnavailable, Deliver
from live.room.events import Event

log = logging.getLogger("vitrine.room.bus")

PUBLISH = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[1] == '' then return -1 end
  redis.call('SET', KEYS[1], ARGV[1], 'NX')
  redis.call('SET', KEYS[3], ARGV[1])
end
local id = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], id .. '-0',
           't', ARGV[3], 'ts', ARGV[4], 'd', ARGV[5], 'a', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('PEXPIRE', KEYS[3], ARGV[7])
return id
"""
BLOCK_MS = 5000
SOCKET_TIMEOUT = 5.0  # commands other than the reader's blocking XREAD
READ_TIMEOUT = BLOCK_MS / 1000 + 2.0  # the reader's socket: longer than its XREAD BLOCK (a
# reader stuck on a connection whose server silently went away retries after this long)
KEY_TTL_MS = 14 * 24 * 3600 * 1000  # a session idle this long resumes from the database
DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


def redis_client(url: str, *, max_connections: int = 200) -> Redis:
    """The process's Redis client. A command that fails on a dead pooled connection (Redis
    restarted, a proxy dropped it) is retried on a new connection, up to three times with a
    short backoff; a connection idle for 10 s is checked with a PING before use."""
    return Redis.from_url(
        url,
        decode_responses=False,
        health_check_interval=10,
        max_connections=max_connections,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


def reader_client(redis: Redis) -> Redis:
    """A client on the same server for the blocking reader: its own two connections, with a
    socket timeout longer than ``XREAD BLOCK``."""
    pool = redis.connection_pool
    kwargs = {**pool.connection_kwargs, "socket_timeout": READ_TIMEOUT}
    return Redis.from_pool(
        ConnectionPool(connection_class=pool.connection_class, max_connections=2, **kwargs)
    )


class RedisBus:
    name = "redis"

    def __init__(
        self, redis: Redis, db: Database, *, prefix: str, buffer_size: int, process_id: str
    ) -> None:
        self.redis, self.db, self.prefix, self.buffer_size = redis, db, prefix, buffer_size
        self._script = redis.register_script(PUBLISH)
        self._reader = reader_client(redis)
        self._watched: dict[str, bytes] = {}  # session id -> last stream id read
        self._wake_key = f"{prefix}:room:wake:{process_id}"
        self._deliver: Deliver | None = None
        self._task: asyncio.Task[None] | None = None

    def _seq_key(self, sid: str) -> str:
        return f"{self.prefix}:room:{{{sid}}}:seq"

    def _stream_key(self, sid: str) -> str:
        return f"{self.prefix}:room:{{{sid}}}:events"

    def _epoch_key(self, sid: str) -> str:
        return f"{self.prefix}:room:{{{sid}}}:epoch"

    def _sid(self, key: bytes) -> str:
        text = key.decode()
        return text[text.index("{") + 1 : text.rindex("}")]

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        await self.redis.delete(self._wake_key)
        self._task = asyncio.create_task(self._read_loop(), name="room-bus-reader")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self._wake_key)
        with contextlib.suppress(RedisError, OSError):
            await self._reader.aclose()

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def publish(
        self, session_id: str, type: str, data: dict[str, Any], audience: str = "all"
    ) -> Event:
        ts = now_ms()
        keys = [
            self._seq_key(session_id),
            self._stream_key(session_id),
            self._epoch_key(session_id),
        ]
        args: list[Any] = ["", self.buffer_size, type, ts, orjson.dumps(data), audience, KEY_TTL_MS]
        try:
            eid = int(await self._script(keys=keys, args=args))
            if eid < 0:  # no counter yet (new session, or expired): seed it from the stored log
                args[0] = await store.seed_id(self.db, session_id)
                eid = int(await self._script(keys=keys, args=args))
        except DOWN as exc:
            raise BusUnavailable("the room bus (Redis) is unreachable; try again") from exc
        return Event(session_id, eid, type, ts, data, audience)

    async def last_id(self, session_id: str) -> int:
        raw = await self.redis.get(self._seq_key(session_id))
        return int(raw) if raw is not None else await store.seed_id(self.db, session_id)

    async def epoch(self, session_id: str) -> int:
        raw = await self.redis.get(self._epoch_key(session_id))
        return int(raw) if raw is not None else 0

    async def recent(self, session_id: str, after: int) -> list[Event]:
        entries: Any = await self.redis.xrange(
            self._stream_key(session_id), min=f"{after + 1}-0", max="+", count=self.buffer_size
        )
        return [self._event(session_id, eid, fields) for eid, fields in entries]

    async def watch(self, session_id: str) -> int:
        pos = self._watched.get(session_id)
        if pos is None:
            raw = await self.redis.get(self._seq_key(session_id))
            pos = self._watched.setdefault(session_id, f"{int(raw or 0)}-0".encode())
            await self.redis.xadd(self._wake_key, {"w": "1"}, maxlen=16, approximate=True)
        return int(pos.split(b"-", 1)[0])

    def unwatch(self, session_id: str) -> None:
        self._watched.pop(session_id, None)

    @staticmethod
    def _event(sid: str, eid: bytes, fields: dict[bytes, bytes]) -> Event:
        return Event(
            sid,
            int(eid.split(b"-", 1)[0]),
            fields[b"t"].decode(),
            int(fields[b"ts"]),
            orjson.loads(fields[b"d"]),
            fields[b"a"].decode(),
        )

    async def _read_loop(self) -> None:
        wake_pos = b"0-0"
        failing = False
        while True:
            streams: dict[Any, Any] = {self._wake_key: wake_pos}
            streams.update({self._stream_key(sid): pos for sid, pos in self._watched.items()})
            try:
                resp: Any = await self._reader.xread(streams, block=BLOCK_MS, count=1000)
            except (RedisError, OSError) as exc:
                if not failing:  # once per outage, not once per retry
                    log.warning("room bus read failed; retrying", extra={"error": repr(exc)})
                failing = True
                await asyncio.sleep(0.5)
                continue
            if failing:
                log.info("room bus read works again")
                failing = False
            for key, entries in resp or []:
                if not entries:
                    continue
                if key.decode() == self._wake_key:
                    wake_pos = entries[-1][0]
                    continue
                sid = self._sid(key)
                if sid not in self._watched:
                    continue
                self._watched[sid] = entries[-1][0]
                for eid, fields in entries:
                    try:
                        ev = self._event(sid, eid, fields)
                    except (KeyError, ValueError) as exc:
                        log.error(
                            "bad room stream entry", extra={"session": sid, "error": repr(exc)}
                        )
                        continue
                    if self._deliver is not None:
                        self._deliver(ev)
