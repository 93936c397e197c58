"""Presence: concurrent viewers per session, summed over every process, emitted when it changes.

Each process counts its local viewers per session and, once a second, calls
:meth:`changes` with those counts; the result is the totals this process must emit as
``presence`` events (only the ones that changed). Locally the single process is the leader.
With Redis each process writes ``count:expiry_ms`` into the hash ``P:presence:{sid}`` under its
process id (a heartbeat: entries not refreshed for :data:`TTL_MS` are dropped), and one leader,
elected with ``SET P:presence:leader <process> NX PX``, sums the hashes and emits.
"""

from __future__ import annotations

from typing import Any, Protocol

from redis.asyncio import Redis

from live.db import now_ms

TTL_MS = 3000
LEADER_MS = 3000


class Presence(Protocol):
    async def changes(self, counts: dict[str, int]) -> dict[str, int]: ...

    async def leave(self, sessions: list[str]) -> None: ...


class LocalPresence:
    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    async def changes(self, counts: dict[str, int]) -> dict[str, int]:
        out = {sid: n for sid, n in counts.items() if self._last.get(sid, 0) != n}
        out.update({sid: 0 for sid in self._last if sid not in counts})
        self._last = {sid: n for sid, n in counts.items() if n}
        return out

    async def leave(self, sessions: list[str]) -> None:
        return None


class RedisPresence:
    def __init__(self, redis: Redis, *, prefix: str, process_id: str) -> None:
        self.redis, self.prefix, self.pid = redis, prefix, process_id
        self._sessions_key = f"{prefix}:presence:sessions"
        self._last_key = f"{prefix}:presence:last"
        self._leader_key = f"{prefix}:presence:leader"

    def _key(self, sid: str) -> str:
        return f"{self.prefix}:presence:{{{sid}}}"

    async def changes(self, counts: dict[str, int]) -> dict[str, int]:
        now = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid, n in counts.items():
                if n:
                    pipe.hset(self._key(sid), self.pid, f"{n}:{now + TTL_MS}")
                    pipe.sadd(self._sessions_key, sid)
                else:
                    pipe.hdel(self._key(sid), self.pid)
            pipe.set(self._leader_key, self.pid, nx=True, px=LEADER_MS)
            pipe.get(self._leader_key)
            results = await pipe.execute()
        if results[-1] != self.pid.encode():
            return {}
        await self.redis.pexpire(self._leader_key, LEADER_MS)
        return await self._sum(now)

    async def _sum(self, now: int) -> dict[str, int]:
        members: Any = await self.redis.smembers(self._sessions_key)
        sids = sorted(s.decode() for s in members)
        if not sids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.hgetall(self._key(sid))
            pipe.hgetall(self._last_key)
            results: list[Any] = await pipe.execute()
        *hashes, last_raw = results
        last = {k.decode(): int(v) for k, v in last_raw.items()}
        out: dict[str, int] = {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid, fields in zip(sids, hashes, strict=True):
                total = 0
                for proc, raw in fields.items():
                    n, _, exp = raw.decode().partition(":")
                    if int(exp or 0) < now:
                        pipe.hdel(self._key(sid), proc)
                    else:
                        total += int(n)
                if total != last.get(sid, 0):
                    out[sid] = total
                if total:
                    pipe.hset(self._last_key, sid, total)
                else:
                    pipe.hdel(self._last_key, sid)
                    pipe.srem(self._sessions_key, sid)
            await pipe.execute()
        return out

    async def leave(self, sessions: list[str]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sessions:
                pipe.hdel(self._key(sid), self.pid)
            await pipe.execute()
