"""The event bus: assigns each session's event ids and carries events to every process's hub.

Chosen once at start-up (like LiveKit's local vs Redis routing): :class:`LocalBus` when
``REDIS_URL`` is empty, :class:`live.room.redis_bus.RedisBus` otherwise. Both keep the
``replay_buffer`` most recent events of a session so a reconnecting client resumes without a
database read; ids are seeded past the largest stored id (:func:`live.room.store.seed_id`) so
they keep increasing across restarts.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from itertools import islice
from typing import Any, Protocol

from live.db import Database, now_ms
from live.errors import Unavailable
from live.room import store
from live.room.events import Event

Deliver = Callable[[Event], None]
MAX_BUFFERED_SESSIONS = 1000


class BusUnavailable(Unavailable):
    """The bus cannot take an event now (Redis is down); nothing was published."""

    code = "bus_unavailable"


class EventBus(Protocol):
    name: str

    async def start(self, deliver: Deliver) -> None:
        """Begin delivering the events of watched sessions to ``deliver`` (in id order)."""

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    async def publish(
        self, session_id: str, type: str, data: dict[str, Any], audience: str = "all"
    ) -> Event:
        """Assign the next id and a timestamp, buffer the event and fan it out to every process."""

    async def last_id(self, session_id: str) -> int:
        """The last id assigned in this session (0 if none)."""

    async def epoch(self, session_id: str) -> int:
        """Where the session's current id sequence began (the seed of its counter; 0 when not
        known): a position before it may have missed events that were never stored."""

    async def recent(self, session_id: str, after: int) -> list[Event]:
        """The buffered events with ``id > after``, in order (older ones may have been trimmed)."""

    async def watch(self, session_id: str) -> int:
        """This process has local connections for the session: deliver its events after the
        returned id from now on."""

    def unwatch(self, session_id: str) -> None: ...


class LocalBus:
    """One process: an in-memory counter and ring buffer per session."""

    name = "local"

    def __init__(self, db: Database, buffer_size: int) -> None:
        self.db, self.buffer_size = db, buffer_size
        self._seq: dict[str, int] = {}
        self._epoch: dict[str, int] = {}
        self._ring: OrderedDict[str, deque[Event]] = OrderedDict()  # most recently used last
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def close(self) -> None:
        self._deliver = None

    async def ping(self) -> bool:
        return True

    async def _seed(self, session_id: str) -> None:
        if session_id not in self._seq:
            seed = await store.seed_id(self.db, session_id)
            self._seq.setdefault(session_id, seed)
            self._epoch.setdefault(session_id, seed)

    async def publish(
        self, session_id: str, type: str, data: dict[str, Any], audience: str = "all"
    ) -> Event:
        await self._seed(session_id)
        self._seq[session_id] += 1
        ev = Event(session_id, self._seq[session_id], type, now_ms(), data, audience)
        ring = self._ring.get(session_id)
        if ring is None:
            ring = self._ring[session_id] = deque(maxlen=self.buffer_size)
            while (
                len(self._ring) > MAX_BUFFERED_SESSIONS
            ):  # long-idle sessions resume from the database
                self._ring.popitem(last=False)
        else:
            self._ring.move_to_end(session_id)
        ring.append(ev)
        if self._deliver is not None:
            self._deliver(ev)
        return ev

    async def last_id(self, session_id: str) -> int:
        await self._seed(session_id)
        return self._seq[session_id]

    async def epoch(self, session_id: str) -> int:
        await self._seed(session_id)
        return self._epoch[session_id]

    async def recent(self, session_id: str, after: int) -> list[Event]:
        ring = self._ring.get(session_id)
        if not ring or ring[-1].id <= after:
            return []
        start = max(0, len(ring) - (ring[-1].id - after))  # ids in the ring are consecutive
        return list(islice(ring, start, None))

    async def watch(self, session_id: str) -> int:
        return await self.last_id(session_id)

    def unwatch(self, session_id: str) -> None:
        return None
